/*
 * cli (tier: driver) — `lemur <command> <params.yml> [key.path=value ...]`: the command table, help
 * texts and the common start-up of every command (parameters, verbosity, the effective
 * configuration).
 */
#ifndef LEMUR_CLI_H
#define LEMUR_CLI_H

#include <mpi.h>

/** Run the command line. Returns the process exit status. Collective on world. */
int cli_main(int argc, char **argv, MPI_Comm world);

#endif
