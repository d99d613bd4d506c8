/* The run manifest: stage records, file detection, checksums, read-back, failed stages with
 * their reason, and invalidation. */
#include "alloc.h"
#include "harness.h"
#include "manifest.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[4096];

static void put(const char *name, const char *text)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_stage_cycle(void)
{
    struct manifest m = {0};
    struct lm_err err = {0};
    snprintf(m.dir, sizeof m.dir, "%s", dir);
    m.config_hash = 42;
    put("old.txt", "from before");
    manifest_begin(&m, "ic", 7);
    struct manifest_file *before;
    int n_before = manifest_scan(&m, &before);
    mkdir(strcat(strcpy((char[8192]){0}, dir), "/sub"), 0755);
    put("sub/field.h5", "field data");
    put("used_parameters.yml", "ignored");
    T_CHECK(manifest_complete(&m, "ic", 1.5, before, n_before, &err), "%s", err.msg);
    manifest_files_free(before, n_before);
    struct manifest_stage *s = manifest_stage(&m, "ic");
    T_CHECK(s && s->n_files == 1 && strcmp(s->files[0].path, "sub/field.h5") == 0,
            "stage files: %d", s ? s->n_files : -1);
    T_CHECK(manifest_write(&m, &err), "%s", err.msg);

    struct manifest r;
    T_CHECK(manifest_read(&r, dir, &err), "read back: %s", err.msg);
    struct manifest_stage *t = manifest_stage(&r, "ic");
    T_CHECK(t && t->complete && t->config_hash == 7 && r.config_hash == 42, "fields");
    T_CHECK(t && t->n_files == 1 && t->files[0].checksum == s->files[0].checksum, "checksum");
    char why[256];
    T_CHECK(manifest_stage_valid(&r, "ic", 7, why, sizeof why), "valid: %s", why);
    T_CHECK(!manifest_stage_valid(&r, "ic", 8, why, sizeof why), "other hash accepted");
    put("sub/field.h5", "field dat4"); /* same size, other content */
    T_CHECK(!manifest_stage_valid(&r, "ic", 7, why, sizeof why) && strstr(why, "field.h5"),
            "changed file accepted");
    T_CHECK(!manifest_stage_valid(&r, "power", 7, why, sizeof why), "absent stage accepted");
    manifest_free(&r);
    manifest_free(&m);
}

static void test_running_stage_is_not_done(void)
{
    struct manifest m = {0};
    struct lm_err err = {0};
    snprintf(m.dir, sizeof m.dir, "%s", dir);
    manifest_begin(&m, "emulate", 3);
    T_CHECK(manifest_write(&m, &err), "%s", err.msg);
    struct manifest r;
    T_CHECK(manifest_read(&r, dir, &err), "%s", err.msg);
    char why[256];
    T_CHECK(!manifest_stage_valid(&r, "emulate", 3, why, sizeof why), "running counted as done");
    manifest_free(&r);
    manifest_free(&m);
}

static void test_failed_stage(void)
{
    struct manifest m = {0};
    struct lm_err err = {0};
    snprintf(m.dir, sizeof m.dir, "%s", dir);
    manifest_begin(&m, "power", 5);
    manifest_fail(&m, "power", 0.25, "cannot open \"a.hdf5\"\nnext line", false);
    T_CHECK(manifest_write(&m, &err), "%s", err.msg);
    struct manifest r;
    T_CHECK(manifest_read(&r, dir, &err), "%s", err.msg);
    struct manifest_stage *t = manifest_stage(&r, "power");
    T_CHECK(t && t->failed && !t->complete, "a failed stage reads back as failed");
    T_CHECK(t && strcmp(t->reason, "cannot open 'a.hdf5''next line") == 0, "reason: '%s'",
            t ? t->reason : "");
    char why[256];
    T_CHECK(!manifest_stage_valid(&r, "power", 5, why, sizeof why) && strstr(why, "failed"),
            "failed counted as done (%s)", why);
    manifest_begin(&r, "power", 5);
    T_CHECK(!t->failed && !*t->reason, "a new attempt clears the failure");
    manifest_free(&r);
    manifest_begin(&m, "jerald", 5);
    manifest_fail(&m, "jerald", 1.5, "interrupted by SIGTERM between jerald maps", true);
    T_CHECK(manifest_write(&m, &err), "%s", err.msg);
    T_CHECK(manifest_read(&r, dir, &err), "%s", err.msg);
    t = manifest_stage(&r, "jerald");
    T_CHECK(t && t->interrupted && t->failed && !t->complete,
            "an interrupted stage reads back as interrupted");
    T_CHECK(!manifest_stage_valid(&r, "jerald", 5, why, sizeof why) && strstr(why, "interrupted"),
            "interrupted counted as done (%s)", why);
    manifest_begin(&r, "jerald", 5);
    T_CHECK(!t->interrupted, "a new attempt clears the interruption");
    manifest_free(&r);
    manifest_free(&m);
}

static void test_config_hash(void)
{
    uint64_t a = manifest_config_hash("box:\n  n: 8\nrun:\n  resume: true\n");
    uint64_t b = manifest_config_hash("box:\n  n: 8\nrun:\n  resume: false\n");
    uint64_t c = manifest_config_hash("box:\n  n: 9\nrun:\n  resume: true\n");
    T_CHECK(a == b, "run.* must not change the hash");
    T_CHECK(a != c, "box.n must change the hash");
}

static void test_corrupt_manifest(void)
{
    put("manifest.yml", "stages: [1, 2\n");
    struct manifest r;
    struct lm_err err = {0};
    T_CHECK(!manifest_read(&r, dir, &err) && strstr(err.msg, "not a lemur manifest"), "%s",
            err.msg);
}

int main(void)
{
    const char *tmp = getenv("LEMUR_TMP");
    snprintf(dir, sizeof dir, "%s/manifest-test", tmp ? tmp : "/tmp");
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0)
        return 1;
    T_RUN(test_stage_cycle);
    T_RUN(test_running_stage_is_not_done);
    T_RUN(test_failed_stage);
    T_RUN(test_config_hash);
    T_RUN(test_corrupt_manifest);
    return t_finish();
}
