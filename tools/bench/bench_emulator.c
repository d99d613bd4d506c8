/* bench_emulator — the field-level emulator on one full-width tile on the CPU backend:
 * seconds for the forward pass and for forward + velocities (the exact D-derivative), the
 * multiply-add rate against the machine's peak, and the memory peak.
 *
 *   bench_emulator [--width W] [M ...]      (default: width 64, output tiles 32 and 64)
 *
 * Threads: OMP_NUM_THREADS (oneDNN and lemur's kernels share the OpenMP pool).
 * Peak, two ways:
 *   nominal   cores x FMA units x SIMD lanes x clock, from /proc/cpuinfo: online CPUs, "cpu MHz",
 *             the widest of avx512f (16 fp32 lanes) / avx2 (8) / sse (4) in "flags", 2 FMA units;
 *             an AMD family-25 core (Zen 3/4) has two 256-bit FMA pipes and runs AVX-512 on them,
 *             so 8 lanes there. "cpu MHz" is the base clock a VM reports, not the boost clock;
 *   measured  a register-resident FMA loop on every thread (12 independent accumulators), which
 *             includes whatever boost the cores run at.
 * Rates are given per wall second and per CPU second of this process (the latter is robust to
 * other load on the machine); the derivative's cost is the extra time over the forward pass.
 * Memory: the engine's workspace (known before running) and plan, and the process's peak RSS. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "alloc.h"
#include "emunet.h"
#include "timer.h"

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Nominal peak in multiply-adds per second from /proc/cpuinfo (see the header comment). */
static double peak_nominal(char *desc, size_t n)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[4096], model[256] = "?";
    double mhz = 0;
    int lanes = 4, family = 0;
    bool amd = false;
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10) && strchr(line, ':'))
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
        if (!strncmp(line, "cpu MHz", 7) && mhz == 0)
            mhz = atof(strchr(line, ':') + 1);
        if (!strncmp(line, "cpu family", 10))
            family = atoi(strchr(line, ':') + 1);
        if (!strncmp(line, "vendor_id", 9))
            amd = strstr(line, "AMD") != NULL;
        if (!strncmp(line, "flags", 5))
            lanes = strstr(line, " avx512f") ? 16 : strstr(line, " avx2") ? 8 : 4;
    }
    if (f)
        fclose(f);
    model[strcspn(model, "\n")] = 0;
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN), units = 2;
    if (amd && family == 25 && lanes == 16)
        lanes = 8;
    snprintf(desc, n, "%s, %d cores x %d FMA units x %d fp32 lanes x %.0f MHz", model, cores, units,
             lanes, mhz);
    return (double)cores * units * lanes * mhz * 1e6;
}

/* Sustained multiply-adds per second of a register-resident FMA loop on every thread. */
static double peak_measured(void)
{
    long iters = 50000000;
    double t0 = timer_now(), sink = 0;
#pragma omp parallel reduction(+ : sink)
    {
#if defined(__AVX512F__)
        __m512 a[12], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
        for (int k = 0; k < 12; k++)
            a[k] = _mm512_set1_ps((float)k);
        for (long i = 0; i < iters; i++)
            for (int k = 0; k < 12; k++)
                a[k] = _mm512_fmadd_ps(a[k], m, c);
        for (int k = 0; k < 12; k++)
            sink += _mm512_reduce_add_ps(a[k]);
#elif defined(__AVX2__)
        __m256 a[12], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
        for (int k = 0; k < 12; k++)
            a[k] = _mm256_set1_ps((float)k);
        for (long i = 0; i < iters; i++)
            for (int k = 0; k < 12; k++)
                a[k] = _mm256_fmadd_ps(a[k], m, c);
        float v[8];
        for (int k = 0; k < 12; k++) {
            _mm256_storeu_ps(v, a[k]);
            sink += v[0];
        }
#else
        float a[12];
        for (int k = 0; k < 12; k++)
            a[k] = (float)k;
        for (long i = 0; i < iters; i++)
            for (int k = 0; k < 12; k++)
                a[k] = a[k] * 0.999999f + 1e-7f;
        for (int k = 0; k < 12; k++)
            sink += a[k];
#endif
    }
    double t = timer_now() - t0;
#if defined(__AVX512F__)
    int lanes = 16;
#elif defined(__AVX2__)
    int lanes = 8;
#else
    int lanes = 1;
#endif
    if (sink == 12345.678)
        printf(" ");
    return (double)omp_get_max_threads() * iters * 12 * lanes / t;
}

struct run {
    double wall, cpu;
};

static struct run time_tile(struct emulator_tile_plan *p, const float *in, float *out, float *d,
                            void *ws)
{
    double w0 = timer_now(), c0 = cpu_seconds();
    emulator_tile_run(p, in, out, d, ws);
    return (struct run){timer_now() - w0, cpu_seconds() - c0};
}

/* One tile side: plans, workspace, forward and forward + velocities. */
static void bench_tile(const struct model *m, int M, double peak, double peak_meas)
{
    struct lm_err err = {{0}};
    struct emulator *e = emulator_create(m, &err);
    CHECK(e, "%s", err.msg);
    emulator_set_style(e, 0.3175, 0.605938);
    int out[3] = {M, M, M};
    double t0 = timer_now();
    struct emulator_tile_plan *pf =
        emulator_tile_plan_create(e, out, false, nn_backend_cpu(), &err);
    struct emulator_tile_plan *pv = emulator_tile_plan_create(e, out, true, nn_backend_cpu(), &err);
    CHECK(pf && pv, "%s", err.msg);
    double t_plan = timer_now() - t0;
    size_t wf = emulator_tile_plan_workspace(pf), wv = emulator_tile_plan_workspace(pv);
    size_t n = M + 2 * m->halo, nin = 3 * n * n * n, nout = 3 * (size_t)M * M * M;
    float *in = lm_malloc("bench.input", nin * sizeof(float));
    float *y = lm_malloc("bench.output", 2 * nout * sizeof(float)), *dy = y + nout;
    for (size_t i = 0; i < nin; i++)
        in[i] = (float)(5.0 * sin(0.37 * i) * cos(0.011 * i));
    void *ws = lm_malloc("nn.workspace", wv > wf ? wv : wf);
    memset(ws, 0, wv > wf ? wv : wf); /* first touch outside the timings */
    struct run f = time_tile(pf, in, y, NULL, ws), v = time_tile(pv, in, y, dy, ws);
    double macs = emulator_tile_plan_macs(pf);
    printf("%4d^3 %5zu^3 %8.3g %7.2f %7.2f %7.1f %6.1f%% %6.1f%% %7.2f %7.2f %5.2f %5.2f %6.1f "
           "%8.2f %8.2f %5.1f\n",
           M, n, macs, f.wall, v.wall, macs / f.wall * 1e-9, 100 * macs / f.wall / peak,
           100 * macs / f.wall / peak_meas, f.cpu, v.cpu, (v.wall - f.wall) / f.wall,
           (v.cpu - f.cpu) / f.cpu, macs / f.cpu * 1e-9, wf / 1e9, wv / 1e9, t_plan);
    fflush(stdout);
    lm_free(ws);
    lm_free(in);
    lm_free(y);
    emulator_tile_plan_destroy(&pf);
    emulator_tile_plan_destroy(&pv);
    emulator_destroy(&e);
}

int main(int argc, char **argv)
{
    int width = 64, sizes[16], n_sizes = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--width") && i + 1 < argc)
            width = atoi(argv[++i]);
        else if (n_sizes < 16 && atoi(argv[i]) > 0 && atoi(argv[i]) % 8 == 0)
            sizes[n_sizes++] = atoi(argv[i]);
        else
            lm_fatal("usage: bench_emulator [--width W] [M ...] (M a positive multiple of 8), "
                     "got '%s'",
                     argv[i]);
    }
    if (n_sizes == 0)
        sizes[n_sizes++] = 32, sizes[n_sizes++] = 64;
    char desc[512];
    double peak = peak_nominal(desc, sizeof desc), peak_meas = peak_measured();
    printf("bench_emulator: styled V-Net width %d, CPU backend (oneDNN), %d OpenMP threads\n",
           width, omp_get_max_threads());
    printf("peak: nominal %.1f G multiply-adds/s (%s); measured FMA loop %.1f G/s\n", peak * 1e-9,
           desc, peak_meas * 1e-9);
    FILE *la = fopen("/proc/loadavg", "r");
    double load = -1;
    if (la && fscanf(la, "%lf", &load) != 1)
        load = -1;
    if (la)
        fclose(la);
    printf(
        "load average at start %.2f on %ld CPUs (rates per CPU second are robust to other load)\n",
        load, sysconf(_SC_NPROCESSORS_ONLN));
    printf("%6s %7s %8s %7s %7s %7s %7s %7s %7s %7s %5s %5s %6s %8s %8s %5s\n", "tile", "input",
           "MACs", "fwd_s", "vel_s", "GMAC/s", "%nom", "%meas", "fwd_cpu", "vel_cpu", "extra",
           "x_cpu", "G/cpus", "ws_fw_GB", "ws_vel_GB", "plan");
    struct model *m = model_create_styled_vnet(width, 3, 3, 2);
    model_fill_random(m, 1);
    for (int i = 0; i < n_sizes; i++)
        bench_tile(m, sizes[i], peak, peak_meas);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("memory: process peak RSS %.2f GB, lemur allocator peak %.2f GB\n",
           ru.ru_maxrss / 1048576.0, alloc_peak() / 1e9);
    printf("columns: fwd_s / vel_s wall seconds of the forward pass / of forward + velocities; "
           "extra = (vel_s - fwd_s) / fwd_s, the derivative's cost on top of the forward pass, "
           "x_cpu the same in CPU seconds; G/cpus = forward multiply-adds per CPU second of the "
           "process; ws = workspace; plan = seconds to create both plans\n");
    model_destroy(&m);
    return 0;
}
