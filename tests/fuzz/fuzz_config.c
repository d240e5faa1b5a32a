// fuzz-sources: common/config.c common/addr.c common/log.c
// fuzz-libs:
/* tests/fuzz/fuzz_config.c — the config parser (common/config.c) and its
 * value parsers, which the CLIs also apply to command-line arguments.
 *
 * Input: the config text, handed over in an exact-size heap copy without a
 * terminating NUL (cfg_parse takes a length).  Oracle:
 *   - failure: a NUL-terminated "f.conf:LINE: ..." reason in an exact-size
 *     error buffer (its size comes from the input length), *out left empty;
 *   - success: every VM name is non-empty and found by cfg_find_vm() as
 *     that VM (names unique); every backend prints with cfg_backend_str()
 *     and parses back to the same backend; user/group/allow lists hold
 *     non-NULL strings; cfg_processes() is 1..CFG_PROCESSES_MAX;
 *     cfg_print() runs; cfg_free() leaves nothing behind (LeakSanitizer);
 *   - the first three lines also go, NUL-terminated, through
 *     cfg_parse_duration_ms, cfg_parse_size and cfg_parse_backend (whose
 *     accepted results must print and parse back the same). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"

#define FUZZ_CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, \
                                                       __FILE__, __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void backend_round_trip(const struct cfg_backend *b)
{
    if (b->kind == CFG_BE_NONE)
        return;
    char s[CFG_PATH_MAX + CFG_HOST_MAX + 16], why[128];
    cfg_backend_str(b, s, sizeof s);
    struct cfg_backend back;
    if (cfg_parse_backend(s, &back, why, sizeof why) != 0)
        fprintf(stderr, "backend \"%s\" does not parse back: %s\n", s, why);
    FUZZ_CHECK(cfg_parse_backend(s, &back, why, sizeof why) == 0);
    FUZZ_CHECK(back.kind == b->kind && back.port == b->port);
    FUZZ_CHECK(strcmp(back.path, b->path) == 0 && strcmp(back.host, b->host) == 0);
}

static void check_list(char **v, size_t n)
{
    FUZZ_CHECK(n == 0 || v != NULL);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(v[i] != NULL && v[i][0] != '\0');
}

static void value_parsers(const char *line, size_t n)
{
    char *s = malloc(n + 1);
    FUZZ_CHECK(s != NULL);
    memcpy(s, line, n);
    s[n] = '\0';
    uint64_t v;
    (void)cfg_parse_duration_ms(s, &v);
    (void)cfg_parse_size(s, &v);
    struct cfg_backend b;
    char why[64];
    if (cfg_parse_backend(s, &b, why, sizeof why) == 0)
        backend_round_trip(&b);
    else
        FUZZ_CHECK(memchr(why, '\0', sizeof why) != NULL);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    size_t errlen = size % 200;
    char *err = malloc(errlen ? errlen : 1);
    FUZZ_CHECK(err != NULL);
    struct cfg c;
    if (cfg_parse("f.conf", text, size, &c, errlen ? err : NULL, errlen) != 0) {
        if (errlen) {
            FUZZ_CHECK(memchr(err, '\0', errlen) != NULL);
            FUZZ_CHECK(strncmp(err, "f.conf:", errlen - 1 < 7 ? errlen - 1 : 7) == 0);
        }
    } else {
        for (size_t i = 0; i < c.n_vms; i++) {
            const struct cfg_vm *vm = &c.vms[i];
            FUZZ_CHECK(memchr(vm->name, '\0', sizeof vm->name) != NULL && vm->name[0] != '\0');
            FUZZ_CHECK(cfg_find_vm(&c, vm->name) == vm);
            backend_round_trip(&vm->vnc);
            backend_round_trip(&vm->spice);
            check_list(vm->users, vm->n_users);
            check_list(vm->groups, vm->n_groups);
        }
        check_list(c.fw.allow, c.fw.n_allow);
        unsigned p = cfg_processes(&c);
        FUZZ_CHECK(p >= 1 && p <= CFG_PROCESSES_MAX);
        FILE *f = fopen("/dev/null", "w");
        FUZZ_CHECK(f != NULL);
        cfg_print(&c, f);
        fclose(f);
        cfg_free(&c);
    }
    size_t off = 0;
    for (int i = 0; i < 3 && off < size; i++) {
        const char *nl = memchr(text + off, '\n', size - off);
        size_t n = nl ? (size_t)(nl - (text + off)) : size - off;
        value_parsers(text + off, n);
        off += n + 1;
    }
    free(err);
    free(text);
    return 0;
}
