// fuzz-sources: auth/proto.c
// fuzz-libs:
/* tests/fuzz/fuzz_authp.c — the network <-> auth helper protocol decoders
 * (auth/proto.c).  The helper is privileged and decodes what the
 * network-facing process sends, so a malformed request must never reach
 * past the datagram.
 *
 * Input: the whole input is one datagram, handed over in an exact-size
 * heap copy.  Oracle:
 *   - decoding as a request and as a response never reads past it;
 *   - an accepted message re-encodes to exactly the same bytes (the encoding
 *     is canonical), into a buffer of exactly its length, and a buffer one
 *     byte shorter is refused;
 *   - every decoded string is NUL-terminated within its limit and holds no
 *     NUL before it (strlen agrees with the wire length);
 *   - authp_peek_id agrees with the decoder on the id whenever the decoder
 *     accepted;
 *   - the config reload's request and answer (the answer's text points into
 *     the datagram, its listener entries are consistent) re-encode the same;
 *   - the VM list request (AUTHP_REQ_VMS) and answer (AUTHP_RESP_VMS) the
 *     same way: an accepted request names no VM, an accepted answer is OK
 *     with at most AUTHP_VMS_MAX non-empty names. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/proto.h"
#include "common/cfgdiff.h"

#define FUZZ_CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, \
                                                       __FILE__, __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reencode(const uint8_t *in, size_t n, int (*enc)(const void *, uint8_t *, size_t),
                           const void *msg)
{
    uint8_t *out = malloc(n ? n : 1);
    FUZZ_CHECK(out != NULL);
    int r = enc(msg, out, n);
    FUZZ_CHECK(r >= 0 && (size_t)r == n);
    FUZZ_CHECK(memcmp(out, in, n) == 0);
    if (n > 0) {
        uint8_t *shorter = malloc(n - 1 ? n - 1 : 1);
        FUZZ_CHECK(shorter != NULL);
        FUZZ_CHECK(enc(msg, shorter, n - 1) == -1);
        free(shorter);
    }
    free(out);
}

static int enc_req(const void *m, uint8_t *b, size_t cap)
{
    return authp_encode_login_req(m, b, cap);
}

static int enc_resp(const void *m, uint8_t *b, size_t cap)
{
    return authp_encode_login_resp(m, b, cap);
}

static int enc_reload_resp(const void *m, uint8_t *b, size_t cap)
{
    return authp_encode_reload_resp(m, b, cap);
}

static int enc_vreq(const void *m, uint8_t *b, size_t cap)
{
    return authp_encode_vms_req(m, b, cap);
}

static int enc_vresp(const void *m, uint8_t *b, size_t cap)
{
    return authp_encode_vms_resp(m, b, cap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *in = malloc(size ? size : 1);
    FUZZ_CHECK(in != NULL);
    memcpy(in, data, size);

    uint32_t pid = 0;
    int peek = authp_peek_id(in, size, &pid);
    FUZZ_CHECK(peek == 0 || peek == -1);
    if (peek == 0)
        FUZZ_CHECK(size >= 8 && in[0] == AUTHP_VERSION);

    struct authp_login_req q;
    if (authp_decode_login_req(in, size, &q) == 0) {
        FUZZ_CHECK(peek == 0 && pid == q.id);
        FUZZ_CHECK(strnlen(q.vm, sizeof q.vm) <= AUTHP_VM_MAX);
        FUZZ_CHECK(strnlen(q.user, sizeof q.user) <= AUTHP_USER_MAX);
        FUZZ_CHECK(strnlen(q.password, sizeof q.password) <= AUTHP_PASS_MAX);
        FUZZ_CHECK(strnlen(q.rhost, sizeof q.rhost) <= AUTHP_RHOST_MAX);
        FUZZ_CHECK(size == 8 + 8 + strlen(q.vm) + strlen(q.user) + strlen(q.password) +
                               strlen(q.rhost));
        check_reencode(in, size, enc_req, &q);
    }

    struct authp_login_resp s;
    if (authp_decode_login_resp(in, size, &s) == 0) {
        FUZZ_CHECK(peek == 0 && pid == s.id);
        FUZZ_CHECK(strnlen(s.detail, sizeof s.detail) <= AUTHP_DETAIL_MAX);
        FUZZ_CHECK(size == 8 + 1 + 2 + strlen(s.detail) && size <= AUTHP_RESP_MAX);
        FUZZ_CHECK(s.result <= AUTHP_QMP_REFUSED);   /* the last result */
        FUZZ_CHECK(strcmp(authp_result_name((enum authp_result)s.result), "invalid result") != 0);
        check_reencode(in, size, enc_resp, &s);
    }

    /* the config reload (what the helper sends after re-reading) */
    uint32_t rid;
    int reread;
    if (authp_decode_reload_req(in, size, &rid, &reread) == 0) {
        FUZZ_CHECK(peek == 0 && pid == rid && (reread == 0 || reread == 1) && size == 9);
        uint8_t out[9];
        FUZZ_CHECK(authp_encode_reload_req(rid, reread, out, sizeof out) == 9);
        FUZZ_CHECK(memcmp(out, in, 9) == 0);
    }
    static struct authp_reload_resp rr;
    if (authp_decode_reload_resp(in, size, &rr) == 0) {
        FUZZ_CHECK(peek == 0 && pid == rr.id && size <= AUTHP_RELOAD_RESP_MAX);
        FUZZ_CHECK(rr.n_ls <= AUTHP_RELOAD_FDS_MAX && rr.text_len <= AUTHP_RELOAD_TEXT_MAX);
        FUZZ_CHECK(strnlen(rr.err, sizeof rr.err) <= AUTHP_RELOAD_ERR_MAX);
        FUZZ_CHECK(rr.text_len == 0 || (rr.text >= in && rr.text + rr.text_len <= in + size));
        for (unsigned i = 0; i < rr.n_ls; i++)
            FUZZ_CHECK(cfg_lkind_local(rr.ls[i].kind) == (rr.ls[i].port == 0) &&
                       rr.ls[i].kind < CFG_L_KINDS);
        check_reencode(in, size, enc_reload_resp, &rr);
}

    if (authp_decode_vms_req(in, size, &q) == 0) {
        FUZZ_CHECK(peek == 0 && pid == q.id && q.vm[0] == '\0');
        FUZZ_CHECK(size == 8 + 8 + strlen(q.user) + strlen(q.password) + strlen(q.rhost));
        check_reencode(in, size, enc_vreq, &q);
    }

    static struct authp_vms_resp v;
    if (authp_decode_vms_resp(in, size, &v) == 0) {
        FUZZ_CHECK(peek == 0 && pid == v.id && v.result == AUTHP_OK);
        FUZZ_CHECK(v.n <= AUTHP_VMS_MAX && v.truncated <= 1 && size <= AUTHP_VMS_RESP_MAX);
        size_t want = 8 + 1 + 2 + strlen(v.detail) + 1 + 2;
        for (unsigned i = 0; i < v.n; i++) {
            FUZZ_CHECK(v.names[i][0] && strnlen(v.names[i], sizeof v.names[i]) <= AUTHP_VM_MAX);
            want += 2 + strlen(v.names[i]);
        }
        FUZZ_CHECK(size == want);
        check_reencode(in, size, enc_vresp, &v);
    }
    free(in);
    return 0;
}
