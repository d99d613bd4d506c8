#include "timer.h"

#include "error.h"

#include <string.h>
#include <time.h>

enum { TIMER_MAX = 256 };

static struct {
    const char *name;
    double total, started;
    int running;
} g_phase[TIMER_MAX];
static int g_n = 0;

double timer_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int slot(const char *name, int create)
{
    for (int i = 0; i < g_n; i++)
        if (strcmp(g_phase[i].name, name) == 0)
            return i;
    if (!create)
        return -1;
    CHECK(g_n < TIMER_MAX, "too many timer phases (more than %d)", TIMER_MAX);
    g_phase[g_n].name = name;
    g_phase[g_n].total = 0;
    g_phase[g_n].running = 0;
    return g_n++;
}

void timer_start(const char *name)
{
    int i = slot(name, 1);
    ASSERT(!g_phase[i].running);
    g_phase[i].running = 1;
    g_phase[i].started = timer_now();
}

double timer_stop(const char *name)
{
    int i = slot(name, 0);
    ASSERT(i >= 0 && g_phase[i].running);
    double dt = timer_now() - g_phase[i].started;
    g_phase[i].total += dt;
    g_phase[i].running = 0;
    return dt;
}

double timer_total(const char *name)
{
    int i = slot(name, 0);
    return i < 0 ? 0.0 : g_phase[i].total;
}

int timer_n_phases(void) { return g_n; }
const char *timer_name(int i) { return g_phase[i].name; }
static struct {
    const char *name;
    double bytes;
} g_counter[TIMER_MAX];
static int g_n_counters = 0;

void timer_add_bytes(const char *name, double bytes)
{
    for (int i = 0; i < g_n_counters; i++)
        if (strcmp(g_counter[i].name, name) == 0) {
            g_counter[i].bytes += bytes;
            return;
        }
    CHECK(g_n_counters < TIMER_MAX, "too many byte counters (more than %d)", TIMER_MAX);
    g_counter[g_n_counters].name = name;
    g_counter[g_n_counters++].bytes = bytes;
}

int timer_n_counters(void) { return g_n_counters; }
const char *timer_counter_name(int i) { return g_counter[i].name; }
double timer_counter_bytes(int i) { return g_counter[i].bytes; }

void timer_reset(void)
{
    g_n = 0;
    g_n_counters = 0;
}
