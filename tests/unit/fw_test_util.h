/* tests/unit/fw_test_util.h — what the firewall's unit tests share.
 *
 * tests/firewall holds the golden rulesets and the listings captured from
 * nft.  It is found through $VMGATE_FW_GOLDEN_DIR, else tests/firewall under
 * the current directory or above the test binary (build/tests/test_fw_*).
 * fw_test_cfg() fills a struct cfg by hand with only what the firewall
 * reads.  Include after <cmocka.h>. */
#ifndef VMGATE_FW_TEST_UTIL_H
#define VMGATE_FW_TEST_UTIL_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"

static inline int fw_test_dir(char *out, size_t cap)
{
    const char *env = getenv("VMGATE_FW_GOLDEN_DIR");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return 0;
    }
    if (access("tests/firewall", F_OK) == 0) {
        snprintf(out, cap, "tests/firewall");
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    /* walk up from the binary (build/tests/test_fw_render) to the tree */
    for (int up = 0; up < 5; up++) {
        char *slash = strrchr(exe, '/');
        if (!slash)
            break;
        *slash = '\0';
        if (strlen(exe) + sizeof "/tests/firewall" > cap)
            return -1;
        snprintf(out, cap, "%s/tests/firewall", exe);
        if (access(out, F_OK) == 0)
            return 0;
    }
    return -1;
}

/* The path of tests/firewall/NAME into path (a failed test when the
 * directory cannot be found). */
#define FW_TEST_PATH_MAX (PATH_MAX + 128)
static inline void fw_test_path(const char *name, char *path, size_t cap)
{
    char dir[PATH_MAX + 64];
    assert_int_equal(fw_test_dir(dir, sizeof dir), 0);
    snprintf(path, cap, "%s/%s", dir, name);
}

/* A whole file, NUL-terminated (malloc'd), or NULL. */
static inline char *fw_test_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0, n;
    char *s = malloc(cap);
    while (s && (n = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *t = realloc(s, cap * 2);
            if (!t) {
                free(s);
                s = NULL;
                break;
            }
            s = t;
            cap *= 2;
        }
    }
    fclose(f);
    if (s)
        s[len] = '\0';
    return s;
}

/* tests/firewall/NAME, which must exist (malloc'd). */
static inline char *fw_test_fixture(const char *name)
{
    char path[FW_TEST_PATH_MAX];
    fw_test_path(name, path, sizeof path);
    char *s = fw_test_slurp(path);
    if (!s)
        fail_msg("cannot open %s", path);
    return s;
}

/* ---- configs by hand ---- */

struct fw_test_vm {
    const char *name;
    uint16_t vnc_port, spice_port;
};

/* A cfg with the given [gateway] address, protect range, allow list and
 * VMs.  Only what the firewall reads is filled; free with fw_test_cfg_free. */
static inline struct cfg *fw_test_cfg(const char *address, uint16_t lo, uint16_t hi,
                                      const char *const *allow, size_t n_allow,
                                      const struct fw_test_vm *vms, size_t n_vms)
{
    struct cfg *c = calloc(1, sizeof *c);
    assert_non_null(c);
    snprintf(c->address, sizeof c->address, "%s", address);
    c->fw.present = true;
    c->fw.protect_lo = lo;
    c->fw.protect_hi = hi;
    c->fw.ban_after = 5;
    c->fw.ban_window_ms = 10 * 60 * 1000;
    c->fw.ban_time_ms = 15 * 60 * 1000;
    c->fw.allow = (char **)allow;
    c->fw.n_allow = n_allow;
    if (n_vms) {
        c->vms = calloc(n_vms, sizeof *c->vms);
        assert_non_null(c->vms);
    }
    for (size_t i = 0; i < n_vms; i++) {
        snprintf(c->vms[i].name, sizeof c->vms[i].name, "%s", vms[i].name);
        c->vms[i].vnc_port = vms[i].vnc_port;
        c->vms[i].spice_port = vms[i].spice_port;
    }
    c->n_vms = n_vms;
    return c;
}

static inline void fw_test_cfg_free(struct cfg *c)
{
    free(c->vms);
    free(c);
}

#endif
