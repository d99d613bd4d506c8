#include "mpi/comm.h"
int main(int argc, char **argv)
{
    MPI_Comm world = comm_init(&argc, &argv);
    comm_finalize(&world);
    return 0;
}
