#include "mpi/linear_power_load.h"

#include "alloc.h"
#include "mpi/comm.h"
#include "stages.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static struct linear_power_params source_of(const struct params *p)
{
    const struct cosmology_params *c = &p->cosmology;
    struct linear_power_params lp = {.source =
                                         c->wiggles ? LINEAR_POWER_EH : LINEAR_POWER_EH_NOWIGGLE,
                                     .table = c->power_table,
                                     .column = (int)c->power_table_column,
                                     .normalise = c->normalise};
    if (*c->power_table)
        lp.source = strcmp(c->power_table_kind, "transfer") == 0 ? LINEAR_POWER_TABLE_TRANSFER
                                                                 : LINEAR_POWER_TABLE_POWER;
    return lp;
}

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
    struct cosmology c = stage_cosmology(p);
    struct linear_power_params lp = source_of(p);
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
