// fuzz-sources: common/qmp.c
/* libFuzzer target: the QMP script runner (common/qmp.c), as QEMU's monitor
 * would drive it: a two-command script, the input split into reads at
 * points taken from its first byte, every line fed through qmp_run_feed()
 * until it fails or finishes.  Checks: consumed bytes never exceed what was
 * given, a SEND is always one of the script's commands (or capabilities),
 * commands go out in order and at most once each, and nothing is asked
 * after DONE or FAIL. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, __FILE__, \
                                          __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    struct qmp_cmd cmds[2];
    memset(cmds, 0, sizeof cmds);
    snprintf(cmds[0].json, sizeof cmds[0].json, "{\"execute\":\"getfd\"}\n");
    cmds[0].pass_fd = true;
    snprintf(cmds[1].json, sizeof cmds[1].json, "{\"execute\":\"add_client\"}\n");
    struct qmp_run r;
    CHECK(qmp_run_init(&r, cmds, 2) == 0);
    char *rx = malloc(size ? size : 1);
    CHECK(rx != NULL);
    size_t have = 0, given = 0;
    int sends = 0;
    bool over = false;
    while (!over) {
        size_t add = size - given < chunk ? size - given : chunk;
        memcpy(rx + have, data + given, add);
        have += add;
        given += add;
        for (;;) {
            size_t used;
            const struct qmp_cmd *send;
            enum qmp_step st = qmp_run_feed(&r, rx, have, &used, &send);
            CHECK(used <= have);
            memmove(rx, rx + used, have - used);
            have -= used;
            if (st == QMP_SEND) {
                CHECK(send != NULL);
                if (sends == 0)
                    CHECK(strstr(send->json, "qmp_capabilities") != NULL);
                else
                    CHECK(send == &r.cmd[sends - 1]);
                sends++;
                CHECK(sends <= 3);
                continue;
            }
            if (st == QMP_DONE) {
                CHECK(sends == 3);
                over = true;
            } else if (st == QMP_FAIL) {
                CHECK(r.err[0] != '\0');
                over = true;
            }
            break;
        }
        if (given == size)
            break;
    }
    free(rx);
    return 0;
}
