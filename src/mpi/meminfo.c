/* meminfo — available memory per node and per rank (see meminfo.h). */
#include "mpi/meminfo.h"

#include "mpi/comm.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* MemAvailable of /proc/meminfo in bytes, or 0 when it cannot be read. */
static size_t proc_mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long kib = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
            break;
    fclose(f);
    return (size_t)kib * 1024;
}

size_t meminfo_node_available(void)
{
    size_t bytes = proc_mem_available();
    if (bytes > 0)
        return bytes;
    long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
}

int meminfo_node_ranks(MPI_Comm comm)
{
    MPI_Comm node;
    MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
    int n = 1;
    MPI_CHECK(MPI_Comm_size(node, &n));
    MPI_CHECK(MPI_Comm_free(&node));
    return n;
}

size_t meminfo_rank_share(MPI_Comm comm)
{
    int n = meminfo_node_ranks(comm);
    unsigned long long share = meminfo_node_available() / (size_t)n;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &share, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, comm));
    return (size_t)share;
}
