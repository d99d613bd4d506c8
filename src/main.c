/* lemur — the program. Everything is in cli.c and the stages; this only brackets MPI. */
#include "cli.h"
#include "mpi/comm.h"

int main(int argc, char **argv)
{
    MPI_Comm world = comm_init(&argc, &argv);
    int rc = cli_main(argc, argv, world);
    comm_finalize(&world);
    return rc;
}
