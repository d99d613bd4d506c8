#include "cli.h"

#include "mpi/comm.h"
#include "mpi/params_load.h"
#include "pipeline.h"
#include "run_store.h"
#include "stage_ic.h"
#include "stages.h"
#include "timer.h"
#include "version.h"

#include <stdio.h>
#include <string.h>

/** One command: its name, a one-line summary, a longer help and the stage that runs it
 *  (NULL: not available in this build, which is reported as an error). */
struct command {
    const char *name;
    const char *summary;
    const char *help;
    int (*run)(const struct params *p, MPI_Comm comm);
    int writes_outputs; /**< 0: none; 1: yes; 2: yes, and it writes used_parameters.yml itself */
};

static const struct command commands[] = {
    {"run", "run the stages listed in run.stages (default ic, emulate, power, jerald)",
     "Chains the stages of run.stages, keeping data in memory between them, and writes every\n"
     "stage's outputs under output.dir.",
     pipeline_run, 2},
    {"ic", "make the linear displacement field (and optionally LPT particles)",
     "Generates N-GenIC-compatible white noise, the linear density and the Zel'dovich\n"
     "displacement (box.n^3 on x-slabs) and writes them as HDF5 under output.dir.",
     ic_command, 1},
    {"emulate", "run the field-level emulator on the displacement field",
     "Reads the displacement field, runs the styled V-Net tile by tile (emulator.*) and writes\n"
     "the nonlinear particles (positions, velocities, IDs).",
     stage_emulate, 1},
    {"power", "measure power spectra of a snapshot",
     "Reads power.input (or the run's particles), paints them with CIC and writes P(k),\n"
     "multipoles and momentum spectra as HDF5 and text.",
     stage_power, 1},
    {"compare", "compare two snapshots: r(k), 1 - r^2, T(k)",
     "Measures the auto and cross spectra of power.input (A) and power.reference (B).",
     stage_compare, 1},
    {"jerald", "paint dark-matter, stellar and HI maps with displacement layers",
     "Applies the Green's-function displacement layers of jerald.maps.* to the particles and\n"
     "writes the maps and their spectra.",
     stage_jerald, 1},
    {"fof", "friends-of-friends haloes: catalogue, mass function, halo spectra",
     "Finds friends-of-friends groups of fof.input (or the run's particles), writes the\n"
     "Gadget-4 fof_tab catalogue, the mass function with the Sheth & Tormen curve and the\n"
     "halo auto, halo-matter cross spectra and bias.",
     stage_fof, 1},
    {"bias", "Lagrangian-bias halo field from the linear field",
     "Weights particles by a small network of linear-field features and paints the halo field.",
     NULL, 1},
    {"info", "validate a parameter file and print the effective configuration and cosmology",
     "Prints the configuration with every default filled in, then D(z), f(z), H(z) at the\n"
     "output redshifts and sigma8 of the normalised linear spectrum. Writes nothing.\n"
     "`lemur info --schema` prints the documented list of every key.",
     stage_info, 0},
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

static void usage(FILE *f)
{
    fprintf(f,
            "lemur %s — field-level emulator runner for cosmological mocks\n\n"
            "usage: lemur <command> <params.yml> [key.path=value ...]\n"
            "       lemur <command> --help | lemur info --schema | lemur --version\n\n"
            "commands:\n",
            LEMUR_VERSION);
    for (int i = 0; i < n_commands; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nOverrides replace values of the file, e.g.\n"
               "  lemur run config/default.yml ic.seed=7 output.dir=out7\n"
               "Run in parallel with: mpirun -n <ranks> lemur run params.yml\n");
}

static const struct command *find_command(const char *name)
{
    for (int i = 0; i < n_commands; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int run_command(const struct command *cmd, const char *file, int n_over, char **over,
                       MPI_Comm world)
{
    struct params p;
    params_load(world, file, n_over, over, &p);
    if (cmd->writes_outputs && !cmd->run) {
        if (comm_rank(world) == 0)
            fprintf(stderr,
                    "lemur: error: the '%s' command is not available in this build of "
                    "lemur %s\n",
                    cmd->name, LEMUR_VERSION);
        params_free(&p);
        return 2;
    }
    if (cmd->writes_outputs)
        msg_info("lemur %s: %s %s on %d rank(s)\n# effective configuration\n%s", LEMUR_VERSION,
                 cmd->name, file, comm_size(world), p.effective);
    if (cmd->writes_outputs == 1)
        params_write_used(world, &p);
    timer_start("total");
    int rc = cmd->run(&p, world);
    timer_stop("total");
    run_store_clear();
    if (cmd->writes_outputs && msg_verbosity() >= 1)
        comm_report(world, stdout);
    if (cmd->writes_outputs && rc == 0) {
        char path[4200];
        snprintf(path, sizeof path, "%s/timings.json", p.output.dir);
        comm_report_json(world, cmd->name, path);
    }
    params_free(&p);
    return rc;
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
    const struct command *cmd = find_command(argv[1]);
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
    return run_command(cmd, argv[2], argc - 3, argv + 3, world);
}
