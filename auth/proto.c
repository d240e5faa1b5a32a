/* auth/proto.c — encoder/decoder of the network <-> auth helper protocol.
 *
 * Layout (all integers big-endian, see proto.h for the header):
 *
 *   AUTHP_REQ_LOGIN   header, str vm, str user, str password, str rhost
 *   AUTHP_RESP_LOGIN  header, u8 result, str detail
 *   AUTHP_REQ_VMS     header, str vm (empty), str user, str password, str rhost
 *   AUTHP_RESP_VMS    header, u8 result (OK), str detail, u8 truncated,
 *                     u16 count, count x str name
 *   AUTHP_REQ_IDLE    header, str rhost
 *   AUTHP_REQ_QMP     header, u8 op, u32 conn high, u32 conn low, str vm, str arg
 *   AUTHP_REQ_CERT    header
 *   AUTHP_REQ_POWER   header, u8 action, u32 conn high, u32 conn low, str vm (+ 1 fd)
 *   AUTHP_REQ_SESSIONS header, u32 count, str vm
 *   AUTHP_NOTE_IDLE   header, u8 state, u8 event, u8 audit, u32 since high, u32 since low,
 *                     str vm, str status, str why
 *   AUTHP_RESP_CERT   header, u8 format (AUTHP_CERT_FORMAT), u8 result,
 *                     str detail, u32 chain length + chain, u32 key length + key
 *   AUTHP_REQ_RELOAD  header, u8 reread
 *   AUTHP_RESP_RELOAD header, u8 result, u32 gen, str err, u32 text length + text,
 *                     u8 n, n * (u8 kind, u16 port, str vm)   (+ n fds, SCM_RIGHTS;
 *                     kind: enum cfg_lkind, 0..5, port 0 iff a socket_dir kind)
 *
 * where str is a u16 length followed by that many bytes (no NUL).  Nothing
 * here does I/O; buffers that held a password are wiped by whoever owns them,
 * and by us on every failure path. */
#include "auth/proto.h"
#include "common/cfgdiff.h"

#include <stdbool.h>
#include <string.h>

#define HDR_LEN 8

/* ---- writer ---- */

struct wbuf {
    uint8_t *p;
    size_t cap, off;
    bool bad;
};

static void w_u8(struct wbuf *w, uint8_t v)
{
    if (w->bad || w->cap - w->off < 1) {
        w->bad = true;
        return;
    }
    w->p[w->off++] = v;
}

static void w_u16(struct wbuf *w, uint16_t v)
{
    w_u8(w, (uint8_t)(v >> 8));
    w_u8(w, (uint8_t)v);
}

static void w_u32(struct wbuf *w, uint32_t v)
{
    w_u16(w, (uint16_t)(v >> 16));
    w_u16(w, (uint16_t)v);
}

/* Append a string field.  s is a char array of field_size bytes that must
 * hold a NUL within its first limit+1 bytes; an unterminated or over-long
 * field marks the whole message bad (the encoder then returns -1). */
static void w_str(struct wbuf *w, const char *s, size_t field_size, size_t limit)
{
    size_t n = strnlen(s, field_size);
    if (n >= field_size || n > limit || n > UINT16_MAX) {
        w->bad = true;
        return;
    }
    w_u16(w, (uint16_t)n);
    if (w->bad || w->cap - w->off < n) {
        w->bad = true;
        return;
    }
    memcpy(w->p + w->off, s, n);
    w->off += n;
}

/* Append a u32 length and that many bytes (limit checked). */
static void w_blob(struct wbuf *w, const uint8_t *p, size_t n, size_t limit)
{
    if (n > limit || (n && !p)) {
        w->bad = true;
        return;
    }
    w_u32(w, (uint32_t)n);
    if (w->bad || w->cap - w->off < n) {
        w->bad = true;
        return;
    }
    if (n)
        memcpy(w->p + w->off, p, n);
    w->off += n;
}

static void w_hdr(struct wbuf *w, enum authp_type type, uint32_t id)
{
    w_u8(w, AUTHP_VERSION);
    w_u8(w, (uint8_t)type);
    w_u16(w, 0);
    w_u32(w, id);
}

/* Finish an encoding: the length, or -1 after wiping what was written (it
 * may hold part of a password). */
static int w_finish_max(struct wbuf *w, size_t max)
{
    if (w->bad || w->off > max) {
        if (w->p && w->off)
            explicit_bzero(w->p, w->off);
        return -1;
    }
    return (int)w->off;
}

static int w_finish(struct wbuf *w)
{
    return w_finish_max(w, AUTHP_MAX_MSG);
}

/* ---- reader ---- */

struct rbuf {
    const uint8_t *p;
    size_t len, off;
    bool bad;
};

static uint8_t r_u8(struct rbuf *r)
{
    if (r->bad || r->len - r->off < 1) {
        r->bad = true;
        return 0;
    }
    return r->p[r->off++];
}

static uint16_t r_u16(struct rbuf *r)
{
    uint16_t hi = r_u8(r);
    uint16_t lo = r_u8(r);
    return (uint16_t)(hi << 8 | lo);
}

static uint32_t r_u32(struct rbuf *r)
{
    uint32_t hi = r_u16(r);
    uint32_t lo = r_u16(r);
    return hi << 16 | lo;
}

/* Read a string field into out (limit+1 bytes).  The length is checked
 * against limit and against the bytes left before anything is copied; a NUL
 * byte inside the string is malformed. */
static void r_str(struct rbuf *r, char *out, size_t limit)
{
    size_t n = r_u16(r);
    if (r->bad || n > limit || n > r->len - r->off || memchr(r->p + r->off, 0, n)) {
        r->bad = true;
        return;
    }
    memcpy(out, r->p + r->off, n);
    out[n] = '\0';
    r->off += n;
}

/* A u32 length and that many bytes, left in place: *p points into the
 * message.  The length is checked against limit and the bytes left. */
static void r_blob(struct rbuf *r, const uint8_t **p, size_t *n, size_t limit)
{
    size_t len = r_u32(r);
    if (r->bad || len > limit || len > r->len - r->off) {
        r->bad = true;
        return;
    }
    *p = r->p + r->off;
    *n = len;
    r->off += len;
}

/* Check the fixed header (size bounds up to max, version, type, reserved)
 * and return the id through *id. */
static void r_hdr_max(struct rbuf *r, enum authp_type want, uint32_t *id, size_t max)
{
    if (r->len < HDR_LEN || r->len > max) {
        r->bad = true;
        return;
    }
    uint8_t ver = r_u8(r);
    uint8_t type = r_u8(r);
    uint16_t reserved = r_u16(r);
    *id = r_u32(r);
    if (ver != AUTHP_VERSION || type != (uint8_t)want || reserved != 0)
        r->bad = true;
}

static void r_hdr(struct rbuf *r, enum authp_type want, uint32_t *id)
{
    r_hdr_max(r, want, id, AUTHP_MAX_MSG);
}

/* ---- messages ---- */

static int encode_cred_req(enum authp_type type, const struct authp_login_req *q, uint8_t *buf,
                           size_t cap)
{
    if (!q || !buf)
        return -1;
    struct wbuf w = { .p = buf, .cap = cap };
    w_hdr(&w, type, q->id);
    w_str(&w, q->vm, sizeof q->vm, AUTHP_VM_MAX);
    w_str(&w, q->user, sizeof q->user, AUTHP_USER_MAX);
    w_str(&w, q->password, sizeof q->password, AUTHP_PASS_MAX);
    w_str(&w, q->rhost, sizeof q->rhost, AUTHP_RHOST_MAX);
    return w_finish(&w);
}

static int decode_cred_req(enum authp_type type, const uint8_t *buf, size_t len,
                           struct authp_login_req *q)
{
    if (!q)
        return -1;
    memset(q, 0, sizeof *q);
    if (!buf)
        return -1;
    struct rbuf r = { .p = buf, .len = len };
    r_hdr(&r, type, &q->id);
    r_str(&r, q->vm, AUTHP_VM_MAX);
    r_str(&r, q->user, AUTHP_USER_MAX);
    r_str(&r, q->password, AUTHP_PASS_MAX);
    r_str(&r, q->rhost, AUTHP_RHOST_MAX);
    if (r.bad || r.off != r.len) {
        explicit_bzero(q, sizeof *q);
        return -1;
    }
    return 0;
}

int authp_encode_login_req(const struct authp_login_req *q, uint8_t *buf, size_t cap)
{
    return encode_cred_req(AUTHP_REQ_LOGIN, q, buf, cap);
}

int authp_decode_login_req(const uint8_t *buf, size_t len, struct authp_login_req *q)
{
    return decode_cred_req(AUTHP_REQ_LOGIN, buf, len, q);
}

/* The same fields; the VM must be empty (the answer lists them). */
int authp_encode_vms_req(const struct authp_login_req *q, uint8_t *buf, size_t cap)
{
    if (!q || q->vm[0])
        return -1;
    return encode_cred_req(AUTHP_REQ_VMS, q, buf, cap);
}

int authp_decode_vms_req(const uint8_t *buf, size_t len, struct authp_login_req *q)
{
    if (decode_cred_req(AUTHP_REQ_VMS, buf, len, q) != 0)
        return -1;
    if (q->vm[0]) {
        explicit_bzero(q, sizeof *q);
        return -1;
    }
    return 0;
}

/* Only a success carries a list; each name non-empty and within its limit. */
int authp_encode_vms_resp(const struct authp_vms_resp *s, uint8_t *buf, size_t cap)
{
    if (!s || !buf || s->result != AUTHP_OK || s->n > AUTHP_VMS_MAX || s->truncated > 1)
        return -1;
    struct wbuf w = { .p = buf, .cap = cap };
    w_hdr(&w, AUTHP_RESP_VMS, s->id);
    w_u8(&w, s->result);
    w_str(&w, s->detail, sizeof s->detail, AUTHP_DETAIL_MAX);
    w_u8(&w, s->truncated);
    w_u16(&w, (uint16_t)s->n);
    for (unsigned i = 0; i < s->n; i++) {
        if (!s->names[i][0])
            w.bad = true;
        w_str(&w, s->names[i], sizeof s->names[i], AUTHP_VM_MAX);
    }
    return w_finish_max(&w, AUTHP_VMS_RESP_MAX);
}

int authp_decode_vms_resp(const uint8_t *buf, size_t len, struct authp_vms_resp *s)
{
    if (!s)
        return -1;
    memset(s, 0, sizeof *s);
    if (!buf)
        return -1;
    struct rbuf r = { .p = buf, .len = len };
    r_hdr_max(&r, AUTHP_RESP_VMS, &s->id, AUTHP_VMS_RESP_MAX);
    s->result = r_u8(&r);
    if (s->result != AUTHP_OK)
        r.bad = true;
    r_str(&r, s->detail, AUTHP_DETAIL_MAX);
    s->truncated = r_u8(&r);
    if (s->truncated > 1)
        r.bad = true;
    unsigned n = r_u16(&r);
    if (n > AUTHP_VMS_MAX)
        r.bad = true;
    for (unsigned i = 0; i < n && !r.bad; i++) {
        r_str(&r, s->names[i], AUTHP_VM_MAX);
        if (!s->names[i][0])
            r.bad = true;
    }
    s->n = n;
    if (r.bad || r.off != r.len) {
        memset(s, 0, sizeof *s);
        return -1;
    }
    return 0;
}

int authp_encode_login_resp(const struct authp_login_resp *s, uint8_t *buf, size_t cap)
{
    if (!s || !buf || s->result > AUTHP_QMP_REFUSED)
        return -1;
    struct wbuf w = { .p = buf, .cap = cap };
    w_hdr(&w, AUTHP_RESP_LOGIN, s->id);
    w_u8(&w, s->result);
    w_str(&w, s->detail, sizeof s->detail, AUTHP_DETAIL_MAX);
    return w_finish(&w);
}

int authp_decode_login_resp(const uint8_t *buf, size_t len, struct authp_login_resp *s)
{
    if (!s)
        return -1;
    memset(s, 0, sizeof *s);
    if (!buf)
        return -1;
    struct rbuf r = { .p = buf, .len = len };
    r_hdr(&r, AUTHP_RESP_LOGIN, &s->id);
    s->result = r_u8(&r);
    if (s->result > AUTHP_QMP_REFUSED)
        r.bad = true;
    r_str(&r, s->detail, AUTHP_DETAIL_MAX);
    if (r.bad || r.off != r.len) {
        memset(s, 0, sizeof *s);
        return -1;
    }
    return 0;
}

int authp_encode_idle_req(const struct authp_idle_req *q, uint8_t *buf, size_t cap)
{
    if (!q || !buf)
        return -1;
    struct wbuf w = { .p = buf, .cap = cap };
    w_hdr(&w, AUTHP_REQ_IDLE, q->id);
    w_str(&w, q->rhost, sizeof q->rhost, AUTHP_RHOST_MAX);
    return w_finish(&w);
}

int authp_decode_idle_req(const uint8_t *buf, size_t len, struct authp_idle_req *q)
{
    if (!q)
        return -1;
    memset(q, 0, sizeof *q);
    if (!buf)
        return -1;
    struct rbuf r = { .p = buf, .len = len };
    r_hdr(&r, AUTHP_REQ_IDLE, &q->id);
    r_str(&r, q->rhost, AUTHP_RHOST_MAX);
    if (r.bad || r.off != r.len) {
        memset(q, 0, sizeof *q);
        return -1;
    }
    return 0;
}

int authp_encode_qmp_req(const struct authp_qmp_req *q, uint8_t *buf, size_t cap)
{
    if (!q || !buf)
        return -1;
    struct wbuf w = { .p = buf, .cap = cap };
    w_hdr(&w, AUTHP_REQ_QMP, q->id);
    w_u8(&w, q->op);
    w_u32(&w, (uint32_t)(q->conn >> 32));
    w_u32(&w, (uint32_t)q->conn);
    w_str(&w, q->vm, sizeof q->vm, AUTHP_VM_MAX);
    w_str(&w, q->arg, sizeof q->arg, AUTHP_QMP_ARG_MAX);
    return w_finish(&w);
}

int authp_decode_qmp_req(const uint8_t *buf, size_t len, struct authp_qmp_req *q)
{
    if (!q)
        return -1;
    memset(q, 0, sizeof *q);
    if (!buf)
        return -1;
    struct rbuf r = { .p = buf, .len = len };
    r_hdr(&r, AUTHP_REQ_QMP, &q->id);
    q->op = r_u8(&r);
    uint64_t hi = r_u32(&r);
    q->conn = hi << 32 | r_u32(&r);
    r_str(&r, q->vm, AUTHP_VM_MAX);
    r_str(&r, q->arg, AUTHP_QMP_ARG_MAX);
    if (r.bad || r.off != r.len) {
        explicit_bzero(q, sizeof *q);
        return -1;
    }
    return 0;
}

int authp_encode_sessions_req(const struct authp_sessions_req *q, uint8_t *buf, size_t cap)
{
    if (!q || !buf)
        return -1;
    struct wbuf w = { .p = buf, .cap = cap };
    w_hdr(&w, AUTHP_REQ_SESSIONS, q->id);
    w_u32(&w, q->count);
    w_str(&w, q->vm, sizeof q->vm, AUTHP_VM_MAX);
    return w_finish(&w);
}

int authp_decode_sessions_req(const uint8_t *buf, size_t len, struct authp_sessions_req *q)
{
    if (!q)
        return -1;
    memset(q, 0, sizeof *q);
    if (!buf)
        return -1;
    struct rbuf r = { .p = buf, .len = len };
    r_hdr(&r, AUTHP_REQ_SESSIONS, &q->id);
    q->count = r_u32(&r);
    r_str(&r, q->vm, AUTHP_VM_MAX);
    if (r.bad || r.off != r.len || !q->vm[0]) {
        memset(q, 0, sizeof *q);
        return -1;
    }
    return 0;
}

int authp_encode_idle_note(const struct authp_idle_note *q, uint8_t *buf, size_t cap)
{
    if (!q || !buf)
        return -1;
    struct wbuf w = { .p = buf, .cap = cap };
    w_hdr(&w, AUTHP_NOTE_IDLE, q->id);
    w_u8(&w, q->state);
    w_u8(&w, q->event);
    w_u8(&w, q->audit);
    w_u32(&w, (uint32_t)(q->since >> 32));
    w_u32(&w, (uint32_t)q->since);
    w_str(&w, q->vm, sizeof q->vm, AUTHP_VM_MAX);
    w_str(&w, q->status, sizeof q->status, sizeof q->status - 1);
    w_str(&w, q->why, sizeof q->why, AUTHP_DETAIL_MAX);
    return w_finish(&w);
}

int authp_decode_idle_note(const uint8_t *buf, size_t len, struct authp_idle_note *q)
{
    if (!q)
        return -1;
    memset(q, 0, sizeof *q);
    if (!buf)
        return -1;
    struct rbuf r = { .p = buf, .len = len };
    r_hdr(&r, AUTHP_NOTE_IDLE, &q->id);
    q->state = r_u8(&r);
    q->event = r_u8(&r);
    q->audit = r_u8(&r);
    uint64_t hi = r_u32(&r);
    q->since = hi << 32 | r_u32(&r);
    r_str(&r, q->vm, AUTHP_VM_MAX);
    r_str(&r, q->status, sizeof q->status - 1);
    r_str(&r, q->why, AUTHP_DETAIL_MAX);
    if (r.bad || r.off != r.len) {
        memset(q, 0, sizeof *q);
        return -1;
    }
    return 0;
}

int authp_encode_cert_req(uint32_t id, uint8_t *buf, size_t cap)
{
    if (!buf)
        return -1;
    struct wbuf w = { .p = buf, .cap = cap };
    w_hdr(&w, AUTHP_REQ_CERT, id);
    return w_finish(&w);
}

int authp_decode_cert_req(const uint8_t *buf, size_t len, uint32_t *id)
{
    if (!buf || !id)
        return -1;
    struct rbuf r = { .p = buf, .len = len };
    r_hdr(&r, AUTHP_REQ_CERT, id);
    return r.bad || r.off != r.len ? -1 : 0;
}

/* Accepts only the two shapes of struct authp_cert_resp (OK with both
 * texts, ERROR with neither), so a receiver never sees a half answer. */
int authp_encode_cert_resp(const struct authp_cert_resp *s, uint8_t *buf, size_t cap)
{
    if (!s || !buf)
        return -1;
    bool ok = s->result == AUTHP_OK;
    if (ok ? (s->chain_len == 0 || s->key_len == 0)
           : (s->result != AUTHP_ERROR || s->chain_len || s->key_len))
        return -1;
    struct wbuf w = { .p = buf, .cap = cap };
    w_hdr(&w, AUTHP_RESP_CERT, s->id);
    w_u8(&w, AUTHP_CERT_FORMAT);
    w_u8(&w, s->result);
    w_str(&w, s->detail, sizeof s->detail, AUTHP_DETAIL_MAX);
    w_blob(&w, s->chain, s->chain_len, AUTHP_CERT_CHAIN_MAX);
    w_blob(&w, s->key, s->key_len, AUTHP_CERT_KEY_MAX);
    return w_finish_max(&w, AUTHP_CERT_RESP_MAX);
}

int authp_decode_cert_resp(const uint8_t *buf, size_t len, struct authp_cert_resp *s)
{
    if (!s)
        return -1;
    memset(s, 0, sizeof *s);
    if (!buf)
        return -1;
    struct rbuf r = { .p = buf, .len = len };
    r_hdr_max(&r, AUTHP_RESP_CERT, &s->id, AUTHP_CERT_RESP_MAX);
    if (r_u8(&r) != AUTHP_CERT_FORMAT)
        r.bad = true;
    s->result = r_u8(&r);
    r_str(&r, s->detail, AUTHP_DETAIL_MAX);
    r_blob(&r, &s->chain, &s->chain_len, AUTHP_CERT_CHAIN_MAX);
    r_blob(&r, &s->key, &s->key_len, AUTHP_CERT_KEY_MAX);
    if (!r.bad && (s->result == AUTHP_OK ? (s->chain_len == 0 || s->key_len == 0)
                                         : (s->result != AUTHP_ERROR || s->chain_len ||
                                            s->key_len)))
        r.bad = true;
    if (r.bad || r.off != r.len) {
        memset(s, 0, sizeof *s);
        return -1;
    }
    return 0;
}

int authp_encode_ban_evt(const struct authp_ban_evt *e, uint8_t *buf, size_t cap)
{
    if (!e || !buf || !e->key[0])
        return -1;
    struct wbuf w = { .p = buf, .cap = cap };
    w_hdr(&w, AUTHP_EVT_BAN, 0);
    w_u8(&w, e->banned ? 1 : 0);
    w_str(&w, e->key, sizeof e->key, AUTHP_RHOST_MAX);
    w_u32(&w, (uint32_t)(e->until_ms >> 32));
    w_u32(&w, (uint32_t)e->until_ms);
    return w_finish(&w);
}

int authp_decode_ban_evt(const uint8_t *buf, size_t len, struct authp_ban_evt *e)
{
    if (!e)
        return -1;
    memset(e, 0, sizeof *e);
    if (!buf)
        return -1;
    struct rbuf r = { .p = buf, .len = len };
    uint32_t id = 0;
    r_hdr(&r, AUTHP_EVT_BAN, &id);
    uint8_t b = r_u8(&r);
    r_str(&r, e->key, AUTHP_RHOST_MAX);
    uint64_t hi = r_u32(&r), lo = r_u32(&r);
    e->until_ms = hi << 32 | lo;
    e->banned = b == 1;
    if (r.bad || r.off != r.len || id != 0 || b > 1 || !e->key[0]) {
        memset(e, 0, sizeof *e);
        return -1;
    }
    return 0;
}

int authp_encode_reload_req(uint32_t id, int reread, uint8_t *buf, size_t cap)
{
    if (!buf || (reread != 0 && reread != 1))
        return -1;
    struct wbuf w = { .p = buf, .cap = cap };
    w_hdr(&w, AUTHP_REQ_RELOAD, id);
    w_u8(&w, (uint8_t)reread);
    return w_finish(&w);
}

int authp_decode_reload_req(const uint8_t *buf, size_t len, uint32_t *id, int *reread)
{
    if (!buf || !id || !reread)
        return -1;
    struct rbuf r = { .p = buf, .len = len };
    r_hdr(&r, AUTHP_REQ_RELOAD, id);
    uint8_t v = r_u8(&r);
    if (r.bad || r.off != r.len || v > 1)
        return -1;
    *reread = v;
    return 0;
}

int authp_encode_reload_resp(const struct authp_reload_resp *s, uint8_t *buf, size_t cap)
{
    if (!s || !buf || s->n_ls > AUTHP_RELOAD_FDS_MAX ||
        (s->result != AUTHP_OK && s->result != AUTHP_ERROR))
        return -1;
    struct wbuf w = { .p = buf, .cap = cap };
    w_hdr(&w, AUTHP_RESP_RELOAD, s->id);
    w_u8(&w, s->result);
    w_u32(&w, s->gen);
    w_str(&w, s->err, sizeof s->err, AUTHP_RELOAD_ERR_MAX);
    w_blob(&w, s->text, s->text_len, AUTHP_RELOAD_TEXT_MAX);
    w_u8(&w, (uint8_t)s->n_ls);
    for (unsigned i = 0; i < s->n_ls; i++) {
        w_u8(&w, s->ls[i].kind);
        w_u16(&w, s->ls[i].port);
        w_str(&w, s->ls[i].vm, sizeof s->ls[i].vm, AUTHP_VM_MAX);
    }
    return w_finish_max(&w, AUTHP_RELOAD_RESP_MAX);
}

int authp_decode_reload_resp(const uint8_t *buf, size_t len, struct authp_reload_resp *s)
{
    if (!s)
        return -1;
    memset(s, 0, sizeof *s);
    if (!buf)
        return -1;
    struct rbuf r = { .p = buf, .len = len };
    r_hdr_max(&r, AUTHP_RESP_RELOAD, &s->id, AUTHP_RELOAD_RESP_MAX);
    s->result = r_u8(&r);
    s->gen = r_u32(&r);
    r_str(&r, s->err, AUTHP_RELOAD_ERR_MAX);
    r_blob(&r, &s->text, &s->text_len, AUTHP_RELOAD_TEXT_MAX);
    s->n_ls = r_u8(&r);
    if (s->n_ls > AUTHP_RELOAD_FDS_MAX || (s->result != AUTHP_OK && s->result != AUTHP_ERROR))
        r.bad = true;
    for (unsigned i = 0; i < s->n_ls && !r.bad; i++) {
        s->ls[i].kind = r_u8(&r);
        s->ls[i].port = r_u16(&r);
        r_str(&r, s->ls[i].vm, AUTHP_VM_MAX);
        /* a socket_dir kind (NAME.vnc, .serial, .spice) has no port, a TCP one has one */
        if (s->ls[i].kind >= CFG_L_KINDS || cfg_lkind_local(s->ls[i].kind) != (s->ls[i].port == 0))
            r.bad = true;
    }
    if (r.bad || r.off != r.len) {
        memset(s, 0, sizeof *s);
        return -1;
    }
    return 0;
}

int authp_encode_power_req(const struct authp_power_req *q, uint8_t *buf, size_t cap)
{
    if (!q || !buf || !authp_power_name(q->action))
        return -1;
    struct wbuf w = { .p = buf, .cap = cap };
    w_hdr(&w, AUTHP_REQ_POWER, q->id);
    w_u8(&w, q->action);
    w_u32(&w, (uint32_t)(q->conn >> 32));
    w_u32(&w, (uint32_t)q->conn);
    w_str(&w, q->vm, sizeof q->vm, AUTHP_VM_MAX);
    return w_finish(&w);
}

int authp_decode_power_req(const uint8_t *buf, size_t len, struct authp_power_req *q)
{
    if (!q)
        return -1;
    memset(q, 0, sizeof *q);
    if (!buf)
        return -1;
    struct rbuf r = { .p = buf, .len = len };
    r_hdr(&r, AUTHP_REQ_POWER, &q->id);
    q->action = r_u8(&r);
    uint64_t hi = r_u32(&r);
    q->conn = hi << 32 | r_u32(&r);
    r_str(&r, q->vm, AUTHP_VM_MAX);
    if (r.bad || r.off != r.len || !authp_power_name(q->action)) {
        memset(q, 0, sizeof *q);
        return -1;
    }
    return 0;
}

static const char *const power_names[AUTHP_PWR_MAX_] = {
    [AUTHP_PWR_CHECK] = "check", [AUTHP_PWR_STATUS] = "status",
    [AUTHP_PWR_SHUTDOWN] = "shutdown", [AUTHP_PWR_RESET] = "reset",
    [AUTHP_PWR_REBOOT] = "reboot", [AUTHP_PWR_PAUSE] = "pause",
    [AUTHP_PWR_RESUME] = "resume", [AUTHP_PWR_FORGET] = "forget",
};

const char *authp_power_name(unsigned action)
{
    return action < AUTHP_PWR_MAX_ ? power_names[action] : NULL;
}

unsigned authp_power_parse(const char *s)
{
    for (unsigned a = AUTHP_PWR_STATUS; s && a <= AUTHP_PWR_RESUME; a++)
        if (strcmp(s, power_names[a]) == 0)
            return a;
    return 0;
}

int authp_peek_type(const uint8_t *buf, size_t len)
{
    if (!buf || len < HDR_LEN || buf[0] != AUTHP_VERSION)
        return -1;
    return buf[1];
}

int authp_peek_id(const uint8_t *buf, size_t len, uint32_t *id)
{
    if (!buf || !id || len < HDR_LEN || buf[0] != AUTHP_VERSION)
        return -1;
    struct rbuf r = { .p = buf + 4, .len = 4 };
    *id = r_u32(&r);
    return 0;
}

const char *authp_result_name(enum authp_result r)
{
    switch (r) {
    case AUTHP_OK:           return "ok";
    case AUTHP_BAD_PASSWORD: return "bad password";
    case AUTHP_UNKNOWN_USER: return "unknown user";
    case AUTHP_NOT_ALLOWED:  return "not allowed";
    case AUTHP_ACCOUNT:      return "account refused";
    case AUTHP_ERROR:        return "error";
    case AUTHP_QMP_REFUSED:  return "refused by QEMU";
    }
    return "invalid result";
}
