#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *test_shared_data(void) {
    static const char *path = "../shared/data";
    if (hone_dir_exists(path)) return path;
    fprintf(stderr, "skipping: %s is absent (real third-party files live there)\n", path);
    return NULL;
}

char *test_tmpdir(void) {
    char tmpl[] = "/tmp/hone-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    if (!d) fail_msg("mkdtemp failed");
    return strdup(d);
}

void test_tmpdir_remove(const char *dir) {
    char cmd[1024];
    if (strncmp(dir, "/tmp/hone-test-", 15) != 0) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

char *test_write_file(const char *dir, const char *name, const void *data, size_t n) {
    char *path = hone_path_join(dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s", path);
    if (n && fwrite(data, 1, n, f) != n) fail_msg("short write %s", path);
    fclose(f);
    return path;
}

void test_assert_close(const float *got, const float *want, size_t n, float atol, float rtol, const char *what) {
    size_t worst = 0;
    double worst_excess = -1;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - (double)want[i]);
        double allowed = atol + rtol * fabs((double)want[i]);
        double excess = isnan(diff) ? INFINITY : diff - allowed;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    if (n && worst_excess > 0)
        fail_msg("%s: element %zu of %zu: got %.9g, want %.9g (atol %g, rtol %g)", what, worst, n, got[worst],
                 want[worst], atol, rtol);
}
