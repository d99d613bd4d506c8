#include "cli.h"

#include "mpi/comm.h"
#include "mpi/params_load.h"
#include "run.h"
#include "stage_bias.h"
#include "stages.h"
#include "timer.h"
#include "version.h"

#include <stdio.h>
#include <string.h>

/** A command that is not a stage: its name, a one-line summary, a longer help and its function.
 *  The stages' commands come from the stage table (run.h). */
struct command {
    const char *name;
    const char *summary;
    const char *help;
    bool (*run)(const struct params *p, MPI_Comm comm, struct lm_err *err);
    int writes_outputs; /**< 0: none; 1: yes (used_parameters.yml once it succeeded); 2: yes, and
                         *   it writes used_parameters.yml itself */
};

static const struct command run_command_entry = {
    "run", "run the stages listed in run.stages (default ic, emulate, power, jerald)",
    "Chains the stages of run.stages, handing the linear field and the particles from stage to\n"
    "stage in memory, and writes every stage's outputs under output.dir.",
    run_pipeline, 2};

static const struct command other_commands[] = {
    {"bias-fit", "train the Lagrangian-bias network on a halo catalogue",
     "Fits the network of lemur bias (Wu, Munoz & Eisenstein 2023) to the mass-weighted halo\n"
     "field of bias.fit.catalogue on a bias.fit.n_mesh^3 mesh, from the linear field (bias.field)\n"
     "and the final particles (bias.input), with Adam over fixed random batches of cells, and\n"
     "writes the model file (bias.fit.output) with its loss per epoch.",
     stage_bias_fit, 1},
    {"compare", "compare two snapshots: r(k), 1 - r^2, T(k)",
     "Measures the auto and cross spectra of power.input (A) and power.reference (B).",
     stage_compare, 1},
    {"info", "validate a parameter file and print the effective configuration and cosmology",
     "Prints the configuration with every default filled in, then D(z), f(z), H(z) at the\n"
     "output redshifts and sigma8 of the normalised linear spectrum, and runs every check the\n"
     "stages of run.stages make before they work (sizes, maps, backend) and the BoxSize of\n"
     "every named input file. Writes nothing.\n"
     "`lemur info --schema` prints the documented list of every key.",
     stage_info, 0},
};
static const int n_other = (int)(sizeof other_commands / sizeof other_commands[0]);

static void usage(FILE *f)
{
    fprintf(f,
            "lemur %s — field-level emulator runner for cosmological mocks\n\n"
            "usage: lemur <command> <params.yml> [key.path=value ...]\n"
            "       lemur <command> --help | lemur info --schema | lemur --version\n\n"
            "commands:\n"
            "  %-10s %s\n",
            LEMUR_VERSION, run_command_entry.name, run_command_entry.summary);
    for (int i = 0; i < run_n_stages; i++)
        fprintf(f, "  %-10s %s\n", run_stages[i].name, run_stages[i].summary);
    for (int i = 0; i < n_other; i++)
        fprintf(f, "  %-10s %s\n", other_commands[i].name, other_commands[i].summary);
    fprintf(f,
            "\nThe stages (%s ... %s) run alone, reading their inputs from files, or chained\n"
            "in this order by `lemur run` (run.stages).\n",
            run_stages[0].name, run_stages[run_n_stages - 1].name);
    fprintf(f, "Overrides replace values of the file, e.g.\n"
               "  lemur run config/default.yml ic.seed=7 output.dir=out7\n"
               "Run in parallel with: mpirun -n <ranks> lemur run params.yml\n");
}

/* The command called name: a stage (*stage set) or another command. */
static const struct command *find_command(const char *name, const struct stage **stage)
{
    static struct command as_stage;
    *stage = run_stage_find(name);
    if (*stage) {
        as_stage = (struct command){(*stage)->name, (*stage)->summary, (*stage)->help, NULL, 1};
        return &as_stage;
    }
    if (strcmp(name, run_command_entry.name) == 0)
        return &run_command_entry;
    for (int i = 0; i < n_other; i++)
        if (strcmp(other_commands[i].name, name) == 0)
            return &other_commands[i];
    return NULL;
}

static int run_command(const struct command *cmd, const struct stage *stage, const char *file,
                       int n_over, char **over, MPI_Comm world)
{
    struct params p;
    params_load(world, file, n_over, over, &p);
    struct lm_err err = {0};
    if (!run_stages_check(&p, &err)) { /* the parameters are the same on every rank */
        if (comm_rank(world) == 0)
            fprintf(stderr, "lemur: error: %s\n", err.msg);
        params_free(&p);
        return 1;
    }
    if (cmd->writes_outputs)
        msg_info("lemur %s: %s %s on %d rank(s)\n# effective configuration\n%s", LEMUR_VERSION,
                 cmd->name, file, comm_size(world), p.effective);
    if (cmd->writes_outputs == 1)
        params_make_dir(world, p.output.dir);
    timer_start("total");
    bool ok = stage ? run_stage_alone(stage, &p, world, &err) : cmd->run(&p, world, &err);
    timer_stop("total");
    if (ok && cmd->writes_outputs == 1) /* only beside the outputs it describes */
        params_write_used(world, &p);
    if (!ok && comm_rank(world) == 0) {
        fprintf(stderr, "lemur: error: %s\n", err.msg);
        fflush(stderr);
    }
    if (cmd->writes_outputs && msg_verbosity() >= 1)
        comm_report(world, stdout);
    if (cmd->writes_outputs && ok) {
        char path[4200];
        snprintf(path, sizeof path, "%s/timings.json", p.output.dir);
        comm_report_json(world, cmd->name, path);
    }
    params_free(&p);
    return ok ? 0 : 1;
}

int cli_main(int argc, char **argv, MPI_Comm world)
{
    bool root = comm_rank(world) == 0;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (root)
            usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        if (root)
            printf("lemur %s\n", LEMUR_VERSION);
        return 0;
    }
    const struct stage *stage;
    const struct command *cmd = find_command(argv[1], &stage);
    if (!cmd) {
        if (root)
            fprintf(stderr, "lemur: error: unknown command '%s' (see lemur --help)\n", argv[1]);
        return 2;
    }
    if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
        if (root)
            printf("usage: lemur %s <params.yml> [key.path=value ...]\n\n%s\n%s\n", cmd->name,
                   cmd->summary, cmd->help);
        return 0;
    }
    if (argc >= 3 && strcmp(cmd->name, "info") == 0 && strcmp(argv[2], "--schema") == 0) {
        if (root)
            config_schema_markdown(params_schema, params_n_schema, stdout);
        return 0;
    }
    if (argc < 3 || strchr(argv[2], '=')) {
        if (root)
            fprintf(stderr,
                    "lemur: error: '%s' needs a parameter file: lemur %s <params.yml> "
                    "[key.path=value ...]\n",
                    cmd->name, cmd->name);
        return 2;
    }
    return run_command(cmd, stage, argv[2], argc - 3, argv + 3, world);
}
