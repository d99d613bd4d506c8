#define _DEFAULT_SOURCE /* madvise's MADV_HUGEPAGE (Linux) */
#include "alloc.h"

#include "error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

enum { ALLOC_ALIGN = 64, ALLOC_MAX_LABELS = 256 };

/** Blocks of at least this many bytes are advised to transparent huge pages. */
#define ALLOC_HUGE_BYTES ((size_t)16 << 20)

/* Header stored in the 64 bytes before every block. */
struct alloc_head {
    size_t bytes;
    int label;
    uint32_t magic;
};

#define ALLOC_MAGIC 0x6c656d75u

/* One row of the per-label table. */
struct alloc_label_stat {
    const char *label;
    size_t current;
    size_t peak;
    size_t n_calls;
};
static struct alloc_label_stat g_labels[ALLOC_MAX_LABELS];
static int g_n_labels = 0;
static size_t g_current = 0, g_peak = 0;

static int label_slot(const char *label)
{
    for (int i = 0; i < g_n_labels; i++)
        if (strcmp(g_labels[i].label, label) == 0)
            return i;
    if (g_n_labels == ALLOC_MAX_LABELS)
        return ALLOC_MAX_LABELS - 1; /* the last slot collects the overflow */
    g_labels[g_n_labels].label = label;
    return g_n_labels++;
}

static void account(int slot, size_t bytes, int sign)
{
    struct alloc_label_stat *s = &g_labels[slot];
    if (sign > 0) {
        s->current += bytes;
        s->n_calls++;
        g_current += bytes;
        if (s->current > s->peak)
            s->peak = s->current;
        if (g_current > g_peak)
            g_peak = g_current;
    } else {
        s->current -= bytes;
        g_current -= bytes;
    }
}

/** Ask the kernel to back the 2 MiB pages inside [p, p + bytes) with huge pages where it can
 *  (Linux, transparent huge pages in "madvise" mode): first touch of hundreds of MB in 4 KiB pages
 *  costs a fault per page, more than the passes that fill them. Advice only: failure changes
 *  nothing. */
static void advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), b = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (b > a)
        (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

void *lm_malloc(const char *label, size_t bytes)
{
    ASSERT(label != NULL);
    void *raw = NULL;
    if (posix_memalign(&raw, ALLOC_ALIGN, ALLOC_ALIGN + (bytes ? bytes : 1)) != 0)
        lm_fatal("out of memory: cannot allocate %.3f MiB for '%s' (this process holds %.3f MiB)",
                 (double)bytes / 1048576.0, label, (double)g_current / 1048576.0);
    if (bytes >= ALLOC_HUGE_BYTES)
        advise_huge(raw, ALLOC_ALIGN + bytes);
    struct alloc_head *h = raw;
    h->bytes = bytes;
    h->label = label_slot(label);
    h->magic = ALLOC_MAGIC;
    account(h->label, bytes, +1);
    return (char *)raw + ALLOC_ALIGN;
}

void *lm_calloc(const char *label, size_t n, size_t size)
{
    CHECK(size == 0 || n <= SIZE_MAX / size, "allocation size overflow for '%s'", label);
    void *p = lm_malloc(label, n * size);
    memset(p, 0, n * size);
    return p;
}

static struct alloc_head *head_of(void *ptr)
{
    struct alloc_head *h = (struct alloc_head *)((char *)ptr - ALLOC_ALIGN);
    ASSERT(h->magic == ALLOC_MAGIC);
    return h;
}

void *lm_realloc(void *ptr, size_t bytes)
{
    ASSERT(ptr != NULL);
    struct alloc_head *h = head_of(ptr);
    void *q = lm_malloc(g_labels[h->label].label, bytes);
    memcpy(q, ptr, h->bytes < bytes ? h->bytes : bytes);
    lm_free(ptr);
    return q;
}

void lm_free(void *ptr)
{
    if (!ptr)
        return;
    struct alloc_head *h = head_of(ptr);
    account(h->label, h->bytes, -1);
    h->magic = 0;
    free(h);
}

char *lm_strdup(const char *label, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = lm_malloc(label, n);
    memcpy(d, s, n);
    return d;
}

size_t alloc_current(void) { return g_current; }
size_t alloc_peak(void) { return g_peak; }
void alloc_peak_reset(void) { g_peak = g_current; }

size_t alloc_label_peak(const char *label)
{
    for (int i = 0; i < g_n_labels; i++)
        if (strcmp(g_labels[i].label, label) == 0)
            return g_labels[i].peak;
    return 0;
}

void alloc_report(FILE *f)
{
    fprintf(f, "%-32s %12s %12s %8s\n", "memory label", "peak MiB", "now MiB", "allocs");
    for (int i = 0; i < g_n_labels; i++)
        if (g_labels[i].peak)
            fprintf(f, "%-32s %12.3f %12.3f %8zu\n", g_labels[i].label,
                    (double)g_labels[i].peak / 1048576.0, (double)g_labels[i].current / 1048576.0,
                    g_labels[i].n_calls);
    fprintf(f, "%-32s %12.3f %12.3f\n", "total", (double)g_peak / 1048576.0,
            (double)g_current / 1048576.0);
}
