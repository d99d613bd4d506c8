/* linear_power_load — the run's linear P(k): rank 0 reads a table, every rank builds it (see
 * linear_power_load.h). */
#include "mpi/linear_power_load.h"

#include "alloc.h"
#include "cosmology.h"
#include "mpi/comm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Rank 0: the whole table file as text (lm_malloc'd), or NULL with err set. */
static char *read_text(const char *path, struct lm_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        lm_err_set(err, "cosmology.power_table: cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = lm_malloc("linear_power.text", (size_t)(n > 0 ? n : 0) + 1);
    size_t got = fread(text, 1, (size_t)(n > 0 ? n : 0), f);
    fclose(f);
    text[got] = 0;
    return text;
}

struct linear_power *linear_power_load(const struct params *p, MPI_Comm comm)
{
    struct cosmology c = cosmo_from_params(p);
    struct linear_power_params lp = linear_power_params_from(p);
    struct lm_err err = {0};
    cosmo_check(&c, &err);
    comm_agree(comm, &err);
    struct linear_power *power = NULL;
    if (lp.source == LINEAR_POWER_EH || lp.source == LINEAR_POWER_EH_NOWIGGLE) {
        power = linear_power_create(&c, &lp, &err);
    } else {
        char *text = NULL;
        if (comm_rank(comm) == 0)
            text = read_text(lp.table, &err);
        comm_agree(comm, &err);
        comm_bcast_string(comm, &text, 0);
        power = linear_power_create_from_text(&c, &lp, text, &err);
        lm_free(text);
    }
    comm_agree(comm, &err);
    return power;
}
