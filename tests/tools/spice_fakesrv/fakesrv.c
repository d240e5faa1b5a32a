/* tests/tools/spice_fakesrv/fakesrv.c — a SPICE test backend on
 * libspice-server with a fake guest agent (QEMU cannot produce agent
 * traffic without a guest OS).  Built by tests/integration/t61-spice-clipboard.sh
 * with gcc and pkg-config spice-server (it is not part of `make tools`).
 *
 *   fakesrv SOCKET [GUEST_TEXT_FILE]
 *
 * Listens on the unix socket SOCKET with ticketing disabled (the backend
 * mode "disable-ticketing on a private socket"); exposes main + inputs and
 * a vdagent.  The fake agent:
 *   - answers the viewer's capability announcement with CLIPBOARD,
 *     CLIPBOARD_BY_DEMAND and CLIPBOARD_SELECTION, then, if GUEST_TEXT_FILE
 *     is given, grabs the clipboard (UTF8_TEXT) and serves that file's bytes
 *     when the viewer requests them;
 *   - requests the viewer's clipboard whenever the viewer grabs it.
 * One line on stdout per event (line-buffered), e.g.
 *   READY
 *   AGENT announce from viewer caps=0x...
 *   AGENT sent grab
 *   AGENT viewer requested type 1
 *   AGENT sent clipboard bytes=N
 *   AGENT viewer grab
 *   CLIENT CLIPBOARD type=1 bytes=N sha256=HEX
 *   AGENT viewer clipboard none        (an empty CLIPBOARD of type NONE)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <spice.h>

/* ------------------------------------------------------------ event loop */

struct SpiceTimer { SpiceTimerFunc func; void *opaque; int64_t due; int active; struct SpiceTimer *next; };
struct SpiceWatch { int fd, mask; SpiceWatchFunc func; void *opaque; int removed; struct SpiceWatch *next; };
static struct SpiceTimer *timers;
static struct SpiceWatch *watches;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static SpiceTimer *timer_add(SpiceTimerFunc func, void *opaque)
{
    SpiceTimer *t = calloc(1, sizeof *t);
    t->func = func; t->opaque = opaque; t->next = timers; timers = t;
    return t;
}
static void timer_start(SpiceTimer *t, uint32_t ms) { t->due = now_ms() + ms; t->active = 1; }
static void timer_cancel(SpiceTimer *t) { t->active = 0; }
static void timer_remove(SpiceTimer *t)
{
    for (SpiceTimer **pp = &timers; *pp; pp = &(*pp)->next)
        if (*pp == t) { *pp = t->next; free(t); return; }
}
static SpiceWatch *watch_add(int fd, int mask, SpiceWatchFunc func, void *opaque)
{
    SpiceWatch *w = calloc(1, sizeof *w);
    w->fd = fd; w->mask = mask; w->func = func; w->opaque = opaque; w->next = watches; watches = w;
    return w;
}
static void watch_update_mask(SpiceWatch *w, int mask) { w->mask = mask; }
static void watch_remove(SpiceWatch *w) { w->removed = 1; }
static void channel_event(int event, SpiceChannelEventInfo *info) { (void)event; (void)info; }

static SpiceCoreInterface core = {
    .base = { .type = SPICE_INTERFACE_CORE, .description = "fakesrv core",
              .major_version = SPICE_INTERFACE_CORE_MAJOR, .minor_version = SPICE_INTERFACE_CORE_MINOR },
    .timer_add = timer_add, .timer_start = timer_start, .timer_cancel = timer_cancel,
    .timer_remove = timer_remove, .watch_add = watch_add, .watch_update_mask = watch_update_mask,
    .watch_remove = watch_remove, .channel_event = channel_event,
};

/* ------------------------------------------------------------ fake agent */

#define PORT_CLIENT 1
#define MAX_CHUNK 2048
enum { T_CLIPBOARD = 4, T_ANNOUNCE = 6, T_GRAB = 7, T_REQUEST = 8, T_RELEASE = 9 };

static SpiceCharDeviceInstance agent_sin;
static uint8_t *outq; static size_t outq_len, outq_off;
static uint8_t inbuf[4 << 20]; static size_t in_len;      /* chunk stream from the server */
static uint8_t *msgbuf; static size_t msg_have, msg_need; /* reassembled agent message */
static uint8_t *guest_text; static size_t guest_len;
static uint32_t client_caps0;

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static void queue(const void *p, size_t n)
{
    outq = realloc(outq, outq_len + n);
    memcpy(outq + outq_len, p, n);
    outq_len += n;
}

/* Send one agent message, in chunks of at most MAX_CHUNK bytes. */
static void agent_send(uint32_t type, const uint8_t *data, size_t len)
{
    size_t total = 20 + len;
    uint8_t *m = malloc(total);
    put32(m, 1); put32(m + 4, type); memset(m + 8, 0, 8); put32(m + 16, (uint32_t)len);
    if (len) memcpy(m + 20, data, len);
    for (size_t off = 0; off < total; off += MAX_CHUNK) {
        size_t n = total - off < MAX_CHUNK ? total - off : MAX_CHUNK;
        uint8_t ch[8];
        put32(ch, PORT_CLIENT); put32(ch + 4, (uint32_t)n);
        queue(ch, 8);
        queue(m + off, n);
    }
    free(m);
    spice_server_char_device_wakeup(&agent_sin);
}

static int sel_prefix(void) { return (client_caps0 >> 6) & 1; }

static void handle_msg(uint32_t type, const uint8_t *d, size_t n)
{
    size_t p = sel_prefix() ? 4 : 0;
    switch (type) {
    case T_ANNOUNCE: {
        client_caps0 = n >= 8 ? get32(d + 4) : 0;
        printf("AGENT announce from viewer caps=0x%x\n", client_caps0);
        uint8_t a[8];
        put32(a, 0);
        put32(a + 4, (1u << 3) | (1u << 5) | (1u << 6));
        agent_send(T_ANNOUNCE, a, 8);
        if (guest_text) {
            uint8_t g[8] = { 0 };
            put32(g + p, 1);            /* UTF8_TEXT */
            agent_send(T_GRAB, g, p + 4);
            printf("AGENT sent grab\n");
        }
        break;
    }
    case T_REQUEST: {
        uint32_t t = n >= p + 4 ? get32(d + p) : 0;
        printf("AGENT viewer requested type %u\n", t);
        if (guest_text) {
            uint8_t *c = calloc(1, p + 4 + guest_len);
            put32(c + p, 1);
            memcpy(c + p + 4, guest_text, guest_len);
            agent_send(T_CLIPBOARD, c, p + 4 + guest_len);
            free(c);
            printf("AGENT sent clipboard bytes=%zu\n", guest_len);
        }
        break;
    }
    case T_GRAB: {
        printf("AGENT viewer grab\n");
        uint8_t r[8] = { 0 };
        put32(r + p, 1);
        agent_send(T_REQUEST, r, p + 4);
        break;
    }
    case T_CLIPBOARD: {
        if (n < p + 4) { printf("AGENT short clipboard\n"); break; }
        uint32_t t = get32(d + p);
        if (t == 0) { printf("AGENT viewer clipboard none\n"); break; }
        unsigned char md[32]; unsigned l = 32;
        EVP_Digest(d + p + 4, n - p - 4, md, &l, EVP_sha256(), NULL);
        char hex[65];
        for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", md[i]);
        printf("CLIENT CLIPBOARD type=%u bytes=%zu sha256=%s\n", t, n - p - 4, hex);
        break;
    }
    case T_RELEASE:
        printf("AGENT viewer release\n");
        break;
    default:
        break;
    }
}

/* Bytes from the server: VDIChunkHeader {port, size} + data, a stream of
 * agent messages inside. */
static void feed_chunks(void)
{
    size_t off = 0;
    while (in_len - off >= 8) {
        uint32_t sz = get32(inbuf + off + 4);
        if (in_len - off < 8 + (size_t)sz) break;
        const uint8_t *d = inbuf + off + 8;
        size_t i = 0;
        while (i < sz) {
            if (msg_need == 0) {            /* header */
                if (!msgbuf) msgbuf = malloc(20 + (8 << 20));
                size_t take = 20 - msg_have < sz - i ? 20 - msg_have : sz - i;
                memcpy(msgbuf + msg_have, d + i, take);
                msg_have += take; i += take;
                if (msg_have == 20) {
                    msg_need = 20 + get32(msgbuf + 16);
                    if (msg_need > 20 + (8u << 20)) { fprintf(stderr, "agent msg too big\n"); exit(1); }
                    if (msg_need == 20) { handle_msg(get32(msgbuf + 4), msgbuf + 20, 0); msg_have = msg_need = 0; }
                }
                continue;
            }
            size_t take = msg_need - msg_have < sz - i ? msg_need - msg_have : sz - i;
            memcpy(msgbuf + msg_have, d + i, take);
            msg_have += take; i += take;
            if (msg_have == msg_need) {
                handle_msg(get32(msgbuf + 4), msgbuf + 20, msg_need - 20);
                msg_have = msg_need = 0;
            }
        }
        off += 8 + sz;
    }
    memmove(inbuf, inbuf + off, in_len - off);
    in_len -= off;
}

static int agent_write(SpiceCharDeviceInstance *sin, const uint8_t *buf, int len)
{
    (void)sin;
    size_t n = (size_t)len;
    if (n > sizeof inbuf - in_len) n = sizeof inbuf - in_len;
    memcpy(inbuf + in_len, buf, n);
    in_len += n;
    feed_chunks();
    return (int)n;
}

static int agent_read(SpiceCharDeviceInstance *sin, uint8_t *buf, int len)
{
    (void)sin;
    size_t avail = outq_len - outq_off;
    size_t n = avail < (size_t)len ? avail : (size_t)len;
    memcpy(buf, outq + outq_off, n);
    outq_off += n;
    if (outq_off == outq_len) { outq_off = outq_len = 0; }
    return (int)n;
}

static void agent_state(SpiceCharDeviceInstance *sin, int connected) { (void)sin; (void)connected; }

static SpiceCharDeviceInterface agent_sif = {
    .base = { .type = SPICE_INTERFACE_CHAR_DEVICE, .description = "fake vdagent",
              .major_version = SPICE_INTERFACE_CHAR_DEVICE_MAJOR,
              .minor_version = SPICE_INTERFACE_CHAR_DEVICE_MINOR },
    .state = agent_state, .write = agent_write, .read = agent_read,
};

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: fakesrv SOCKET [GUEST_TEXT_FILE]\n"); return 2; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGTERM, on_sig); signal(SIGINT, on_sig); signal(SIGPIPE, SIG_IGN);
    if (argc > 2) {
        FILE *f = fopen(argv[2], "rb");
        if (!f) { perror(argv[2]); return 1; }
        guest_text = malloc(8 << 20);
        guest_len = fread(guest_text, 1, 8 << 20, f);
        fclose(f);
    }
    unlink(argv[1]);
    SpiceServer *s = spice_server_new();
    spice_server_set_addr(s, argv[1], SPICE_ADDR_FLAG_UNIX_ONLY);
    spice_server_set_noauth(s);
    spice_server_set_agent_copypaste(s, 1);
    if (spice_server_init(s, &core) != 0) { fprintf(stderr, "spice_server_init failed\n"); return 1; }
    agent_sin.base.sif = &agent_sif.base;
    agent_sin.subtype = "vdagent";
    spice_server_add_interface(s, &agent_sin.base);
    spice_server_vm_start(s);
    printf("READY\n");
    while (!stop) {
        struct pollfd pf[64]; SpiceWatch *ws[64]; int n = 0;
        for (SpiceWatch **pp = &watches; *pp;) {
            SpiceWatch *w = *pp;
            if (w->removed) { *pp = w->next; free(w); continue; }
            if (n < 64 && w->mask) {
                pf[n].fd = w->fd; pf[n].revents = 0;
                pf[n].events = (w->mask & SPICE_WATCH_EVENT_READ ? POLLIN : 0) |
                               (w->mask & SPICE_WATCH_EVENT_WRITE ? POLLOUT : 0);
                ws[n++] = w;
            }
            pp = &w->next;
        }
        int64_t t = now_ms(), timeout = 100;
        for (SpiceTimer *tm = timers; tm; tm = tm->next)
            if (tm->active && tm->due - t < timeout) timeout = tm->due - t < 0 ? 0 : tm->due - t;
        int r = poll(pf, (nfds_t)n, (int)timeout);
        if (r < 0 && errno != EINTR) break;
        for (int i = 0; i < n && r > 0; i++) {
            if (!pf[i].revents || ws[i]->removed) continue;
            int ev = 0;
            if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) ev |= SPICE_WATCH_EVENT_READ;
            if (pf[i].revents & POLLOUT) ev |= SPICE_WATCH_EVENT_WRITE;
            ev &= ws[i]->mask ? ws[i]->mask | SPICE_WATCH_EVENT_READ : 0;
            if (ev) ws[i]->func(ws[i]->fd, ev, ws[i]->opaque);
        }
        t = now_ms();
        for (SpiceTimer *tm = timers; tm; tm = tm->next)
            if (tm->active && tm->due <= t) { tm->active = 0; tm->func(tm->opaque); break; }
        if (outq_len > outq_off) spice_server_char_device_wakeup(&agent_sin);
    }
    return 0;
}
