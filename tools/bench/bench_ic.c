/*
 * bench_ic — time the phases of `lemur ic` and report the memory peak.
 *
 *   mpirun -n <P> build/bench/bench_ic [n [lpt_order [out_dir]]]      (defaults 256 1 $LEMUR_TMP)
 *
 * An n^3 field in a box of n·1000/512 Mpc/h (the emulator's spacing) is generated (seed table,
 * white noise and δ_k, c2r FFTs of δ and Ψ, 2LPT with lpt_order 2), written as the IC field file
 * (psi_x, psi_y, psi_z, delta: 16 B per cell), turned into particles and written as a snapshot
 * (32 B per particle: float positions and velocities, uint64 IDs). Each phase is shown as the max
 * over ranks next to a floor on this machine, the larger of its compute and memory bounds, or their
 * sum where the phase runs a compute-bound and a memory-bound part one after the other. The bytes
 * counted are those the memory moves: an array that is only read costs its bytes once, an array
 * that is written costs them twice (the write-allocate read for ownership, then the write back;
 * an array updated in place likewise: read, then written back), as in bench_power and the
 * bandwidth measurement itself (bench_triad_bandwidth). Per cell, with float meshes:
 *   noise      max(n^3 ranlxd1 draws (2 per mode) / (draw rate x threads),
 *                  δ_k written: 4 B (one complex float per 2 cells) x 2 / bandwidth)
 *   fft        4 c2r transforms (δ, Ψ): 2.5 N log2 N flops each / (FMA rate x threads)
 *              + the k-space kernels before them / bandwidth: δ_k copied for δ (4 B read + 4 B
 *              written x 2) and 3 gradients Ψ_k = i k / k² δ_k (4 B read + 4 B written x 2 each):
 *              48 B
 *   2lpt       11 more transforms (δ, 6 Hessian terms, S forward, 3 components) likewise
 *              + / bandwidth: the δ_k copy and the 6 Hessian terms (12 B each), the 7 squares
 *              accumulated into S (4 B read + S written x 2: 12 B each), S_k scaled in place
 *              (4 B read + 4 B written back) and the 3 gradients of S_k (12 B each): 212 B
 *   particles  (12 B of Ψ read, 24 B with 2LPT, + 32 B written x 2) per particle / bandwidth
 *   write      bytes / sequential write bandwidth of out_dir through the page cache (what HDF5
 *              sees without fsync), measured with the same kind of writes
 * Rates: the bandwidth is measured by all ranks at once, each on its OpenMP threads (each rank's
 * share of the node); the draw and FMA rates per core, times the OpenMP threads of a rank. Floors
 * divide the work evenly over the ranks.
 * Memory: the labelled allocator's peak per rank (max over ranks) and its largest labels.
 */
#include <gsl/gsl_rng.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "cosmology.h"
#include "ic_plan.h"
#include "mpi/fft.h"
#include "linear_power.h"
#include "mpi/comm.h"
#include "mpi/field_file.h"
#include "mpi/snapshot.h"
#include "timer.h"
#include "bench_common.h"

/** ranlxd1 uniforms per second on one core. */
static double measure_draw_rate(void)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_ranlxd1);
    gsl_rng_set(r, 12345);
    int n = 2000000;
    double t0 = timer_now(), s = 0;
    for (int i = 0; i < n; i++)
        s += gsl_rng_uniform(r);
    double t = timer_now() - t0;
    bench_sink = s;
    gsl_rng_free(r);
    return n / t;
}

/** Sequential write bandwidth into dir through the page cache (bytes/s; rank 0 writes 256 MiB). */
static double measure_write_bandwidth(const char *dir, MPI_Comm comm)
{
    double bw = 0;
    if (comm_rank(comm) == 0) {
        char path[1100];
        snprintf(path, sizeof path, "%s/bench_ic_probe.bin", dir);
        size_t chunk = (size_t)16 << 20;
        char *buf = lm_calloc("bench.probe", chunk, 1);
        FILE *f = fopen(path, "wb");
        double t0 = timer_now();
        for (int i = 0; f && i < 16; i++)
            fwrite(buf, 1, chunk, f);
        if (f)
            fclose(f);
        bw = 16.0 * chunk / (timer_now() - t0);
        unlink(path);
        lm_free(buf);
    }
    comm_max_double(comm, &bw, 1);
    return bw;
}

static double phase_max(const char *name, MPI_Comm comm)
{
    double t = timer_total(name);
    comm_max_double(comm, &t, 1);
    return t;
}

/* Write the field file as `lemur ic` does (four float datasets). */
static void write_field(const char *path, const struct ic_fields *f, MPI_Comm comm)
{
    const struct fft_layout *l = &f->layout;
    struct box3 b = {{l->rx0, 0, 0}, {l->rx0 + l->rnx, l->n[1], l->n[2]}};
    int64_t dims[3] = {l->rnx, l->n[1], l->row};
    struct field_file_block blk = field_file_block_make(l->n, &b, dims);
    struct lm_err err = {0};
    const char *names[4] = {"psi_x", "psi_y", "psi_z", FIELD_FILE_DELTA};
    const float *data[4] = {f->psi[0], f->psi[1], f->psi[2], f->delta};
    struct field_file_meta m = {.box_size = l->box[0], .n_mesh = l->n[0], .amplitude = "rayleigh"};
    struct field_file *file = field_file_create(path, FIELD_FILE_IC, &m, comm, &err);
    bool ok = file != NULL;
    for (int i = 0; i < 4 && ok; i++)
        ok = field_file_write(file, names[i], &blk, data[i], &err);
    if (file)
        field_file_close(&file, ok, &err);
    comm_agree(comm, &err);
}

static void write_snapshot(const char *path, const struct ic_fields *f, const struct cosmology *c,
                           double box, MPI_Comm comm)
{
    timer_start("ic.particles");
    struct particles *p = ic_particles_create(f, c, box, 0.0);
    timer_stop("ic.particles");
    struct snapshot_header h = {.time = 1,
                                .box_size = box,
                                .omega0 = c->Omega_m,
                                .omega_lambda = 1 - c->Omega_m,
                                .hubble_param = c->h};
    struct lm_err err = {0};
    timer_start("ic.write_snapshot");
    snapshot_write(path, &h, p, NULL, comm, &err);
    timer_stop("ic.write_snapshot");
    comm_agree(comm, &err);
    particles_destroy(&p);
}

struct machine {
    double draw_rate, flops, bandwidth, write_bw;
};

static void report(int n, int lpt, int size, const struct machine *m, MPI_Comm comm)
{
    double cells = (double)n * n * n, threads = omp_get_max_threads();
    double fft = 2.5 * cells * log2(cells) / (m->flops * threads) / size;
    double bw = m->bandwidth * size; /* bytes/s of all ranks together */
    const char *name[7] = {"ic.setup",       "ic.noise",     "ic.fft",           "ic.2lpt",
                           "ic.write_field", "ic.particles", "ic.write_snapshot"};
    const double floor[7] = {0,
                             fmax(cells / (m->draw_rate * threads) / size, 2 * 4 * cells / bw),
                             4 * fft + 48 * cells / bw,
                             lpt == 2 ? 11 * fft + 212 * cells / bw : 0,
                             16 * cells / m->write_bw,
                             (12.0 * lpt + 2 * 32) * cells / bw,
                             32 * cells / m->write_bw};
    double t[7], total = 0, peak = (double)alloc_peak();
    for (int i = 0; i < 7; i++)
        total += t[i] = phase_max(name[i], comm);
    comm_max_double(comm, &peak, 1);
    if (comm_rank(comm) != 0)
        return;
    printf("bench_ic: n = %d^3, LPT order %d, %d rank(s) x %d OpenMP thread(s)\n", n, lpt, size,
           (int)threads);
    printf("machine: ranlxd1 %.1f M draws/s per core, %.1f GFlop/s float FMA per core, memory "
           "%.1f GB/s per rank (bytes moved, write-allocate included), write %.0f MB/s\n",
           m->draw_rate / 1e6, m->flops / 1e9, m->bandwidth / 1e9, m->write_bw / 1e6);
    printf("%-20s %10s %10s\n", "phase", "max s", "floor s");
    for (int i = 0; i < 7; i++)
        if (t[i] > 0)
            printf("%-20s %10.3f %10.3f\n", name[i], t[i], floor[i]);
    printf("%-20s %10.3f\n", "total", total);
    printf("memory peak per rank (labelled allocator, max over ranks): %.1f MiB = %.1f B per "
           "cell of the rank's slab\n",
           peak / 1048576.0, peak / (cells / size));
}

int main(int argc, char **argv)
{
    MPI_Comm comm = comm_init(&argc, &argv);
    int n = argc > 1 ? atoi(argv[1]) : 256, lpt = argc > 2 ? atoi(argv[2]) : 1;
    const char *tmp = getenv("LEMUR_TMP");
    const char *dir = argc > 3 ? argv[3] : (tmp ? tmp : "/tmp");
    double box = n * 1000.0 / 512.0;
    struct machine m = {.draw_rate = measure_draw_rate(), .flops = bench_fma_rate()};
    comm_barrier(comm);
    m.bandwidth = bench_triad_bandwidth();
    m.write_bw = measure_write_bandwidth(dir, comm);
    comm_min_double(comm, &m.draw_rate, 1);
    comm_min_double(comm, &m.flops, 1);
    comm_min_double(comm, &m.bandwidth, 1);
    struct cosmology c = cosmo_quijote_fiducial();
    struct lm_err err = {0};
    timer_start("ic.setup");
    struct linear_power_params lp = {.source = LINEAR_POWER_EH};
    struct linear_power *power = linear_power_create(&c, &lp, &err);
    struct ic_setup s = {
        .n = n, .box_size = box, .seed = 42, .lpt_order = lpt, .keep_delta = true, .power = power};
    struct ic_plan *plan = power ? ic_plan_create(&s, comm, &err) : NULL;
    comm_agree(comm, &err);
    timer_stop("ic.setup");
    comm_barrier(comm);
    ic_plan_execute(plan);
    comm_barrier(comm);
    char path[1100];
    snprintf(path, sizeof path, "%s/bench_ic_field.hdf5", dir);
    timer_start("ic.write_field");
    write_field(path, ic_plan_fields(plan), comm);
    timer_stop("ic.write_field");
    if (comm_rank(comm) == 0)
        unlink(path);
    snprintf(path, sizeof path, "%s/bench_ic_snapshot.hdf5", dir);
    write_snapshot(path, ic_plan_fields(plan), &c, box, comm);
    if (comm_rank(comm) == 0)
        unlink(path);
    report(n, lpt, comm_size(comm), &m, comm);
    comm_report(comm, stdout);
    ic_plan_destroy(&plan);
    linear_power_destroy(&power);
    comm_finalize(&comm);
    return 0;
}
