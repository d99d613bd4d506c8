/* pipeline — `lemur run`: the stages of run.stages in order, each with a banner and a timing. */
#include "pipeline.h"

#include "mpi/comm.h"
#include "stages.h"
#include "timer.h"

#include <string.h>

/* The stages `lemur run` can chain; a NULL function is a stage this build does not have. */
static const struct pipeline_stage stages[] = {
    {"ic", NULL}, {"emulate", NULL}, {"power", NULL}, {"jerald", NULL}, {"bias", NULL},
};
static const int n_stages = (int)(sizeof stages / sizeof stages[0]);

const struct pipeline_stage *pipeline_find(const char *name)
{
    for (int i = 0; i < n_stages; i++)
        if (strcmp(stages[i].name, name) == 0)
            return &stages[i];
    return NULL;
}

int pipeline_run(const struct params *p, MPI_Comm comm)
{
    struct lm_err err = {0};
    for (int i = 0; i < p->run.stages.n; i++) {
        const struct pipeline_stage *s = pipeline_find(p->run.stages.v[i]);
        if (!s || !s->run)
            lm_err_set(&err, "run.stages: the stage '%s' is not available in this build",
                       p->run.stages.v[i]);
    }
    comm_agree(comm, &err);
    stage_cosmology_summary(p, comm);
    for (int i = 0; i < p->run.stages.n; i++) {
        const struct pipeline_stage *s = pipeline_find(p->run.stages.v[i]);
        msg_info("== stage %d/%d: %s ==", i + 1, p->run.stages.n, s->name);
        double t0 = timer_now();
        int rc = s->run(p, comm);
        if (rc != 0)
            return rc;
        msg_info("== stage %s done in %.2f s ==", s->name, timer_now() - t0);
    }
    msg_info("outputs are in %s/", p->output.dir);
    return 0;
}
