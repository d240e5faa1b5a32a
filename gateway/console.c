/* gateway/console.c — `vmgate console`; see console.h.
 *
 * Needs no privileges: it only connects to socket_dir/VM.vnc, where vmgate
 * authorizes the caller's uid.  The relay is non-blocking in both
 * directions with a bounded buffer each way (a consumer that stops reading
 * one side never blocks the other), and passes every byte unchanged; the
 * watcher only looks at the first ones. */
#include "gateway/console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "common/config.h"

#define RELAY_BUF (64 * 1024)

/* ---- the watcher (pure) ---- */

void console_watch_init(struct console_watch *w)
{
    memset(w, 0, sizeof *w);
    w->sneed = 12 + 1;            /* version, then the count (3.3: first byte of the type) */
}

/* Decide once the client's version and enough of the server's bytes are
 * known. */
static enum console_watch_state watch_step(struct console_watch *w)
{
    if (w->state != CW_WATCHING || w->minor == 0)
        return w->state;
    size_t head = w->minor == 3 ? 4 : 1;   /* 3.3: U32 type; else U8 count */
    if (w->slen < 12 + head)
        return w->state;
    const uint8_t *m = w->sbuf + 12;
    bool refused = w->minor == 3 ? (m[0] | m[1] | m[2] | m[3]) == 0 : m[0] == 0;
    if (!refused)
        return w->state = CW_PASSED;
    if (w->slen < 12 + head + 4)
        return w->state;
    const uint8_t *l = m + head;
    uint32_t len = (uint32_t)l[0] << 24 | (uint32_t)l[1] << 16 | (uint32_t)l[2] << 8 | l[3];
    size_t want = len > CONSOLE_REASON_MAX ? CONSOLE_REASON_MAX : len;
    if (w->slen < 12 + head + 4 + want)
        return w->state;
    size_t k = 0;
    for (size_t i = 0; i < want; i++) {
        unsigned char ch = l[4 + i];
        w->reason[k++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    w->reason[k] = '\0';
    return w->state = CW_REFUSED;
}

enum console_watch_state console_watch_c2s(struct console_watch *w, const uint8_t *p, size_t n)
{
    if (w->state != CW_WATCHING || w->minor)
        return w->state;
    size_t take = sizeof w->cbuf - w->clen < n ? sizeof w->cbuf - w->clen : n;
    memcpy(w->cbuf + w->clen, p, take);
    w->clen += take;
    if (w->clen < sizeof w->cbuf)
        return w->state;
    if (memcmp(w->cbuf, "RFB 003.", 8) != 0 || w->cbuf[11] != '\n')
        return w->state = CW_BAD;
    int minor = 0;
    for (int i = 8; i < 11; i++) {
        if (w->cbuf[i] < '0' || w->cbuf[i] > '9')
            return w->state = CW_BAD;
        minor = minor * 10 + (w->cbuf[i] - '0');
    }
    /* as vmgate reads it: 3.7 and 3.8 are themselves, above 3.8 is 3.8,
     * the rest (3.3-3.6, Apple's 3.889) is 3.3 */
    w->minor = minor == 7 ? 7 : (minor >= 8 && minor != 889) ? 8 : 3;
    return watch_step(w);
}

enum console_watch_state console_watch_s2c(struct console_watch *w, const uint8_t *p, size_t n)
{
    if (w->state != CW_WATCHING)
        return w->state;
    size_t take = sizeof w->sbuf - w->slen < n ? sizeof w->sbuf - w->slen : n;
    memcpy(w->sbuf + w->slen, p, take);
    w->slen += take;
    if (w->slen >= 12 && memcmp(w->sbuf, "RFB ", 4) != 0)
        return w->state = CW_BAD;
    return watch_step(w);
}

/* ---- the serial console's first line (pure) ---- */

void serial_watch_init(struct serial_watch *w)
{
    memset(w, 0, sizeof *w);
}

/* Decide once the line is complete, or as soon as it cannot be a refusal. */
size_t serial_watch_feed(struct serial_watch *w, const uint8_t *p, size_t n)
{
    static const char pfx[] = "vmgate: ";
    size_t i = 0;
    while (w->state == SW_WATCHING && i < n) {
        char ch = (char)p[i++];
        w->line[w->len++] = ch;
        if (w->len <= sizeof pfx - 1 && ch != pfx[w->len - 1]) {
            w->state = SW_PASSED;
            break;
        }
        if (ch != '\n' && w->len < sizeof w->line - 1)
            continue;
        /* "vmgate: REASON\r\n" (or a line that filled the buffer) */
        size_t k = 0;
        for (size_t j = sizeof pfx - 1; j < w->len; j++) {
            unsigned char c = (unsigned char)w->line[j];
            if (c == '\r' || c == '\n')
                continue;
            w->reason[k++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
        }
        w->reason[k] = '\0';
        w->state = SW_REFUSED;
    }
    w->line[w->len] = '\0';
    return i;
}

/* ---- the command ---- */

static const char console_help[] =
    "usage: vmgate console [-c FILE | --socket-dir DIR] [--serial] VM\n"
    "\n"
    "Join stdin/stdout to VM's console socket in socket_dir (read from the config\n"
    "file, default " CFG_DEFAULT_FILE ", which must be readable by you; or given\n"
    "with --socket-dir, default /run/vmgate).  The stream is RFB with security\n"
    "type None; vmgate allows it when your user (or one of your groups) is in the\n"
    "VM's users/groups.  So an RFB client can use ssh as its transport:\n"
    "    ssh host vmgate console dev0\n"
    "A refusal is one line on stderr naming the user and the VM, exit status 1.\n"
    "\n"
    "--serial: VM's serial console (socket_dir/VM.serial) instead: the terminal is\n"
    "put in raw mode (restored on exit), what the VM printed recently is shown\n"
    "first, the latest session attached holds the keyboard, and Ctrl-] detaches:\n"
    "    ssh -t host vmgate console --serial dev0\n";

/* A VM name as the config allows it (so it cannot leave socket_dir). */
static bool vm_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CFG_NAME_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* One direction's buffer. */
struct pipe_buf {
    uint8_t b[RELAY_BUF];
    size_t len;
    bool eof;          /* the reading side is done */
};

/* Move bytes: read from in (when there is room), write to out.  -1 on an
 * error of out (the peer went away). */
static int pump_read(int in, struct pipe_buf *pb)
{
    ssize_t r = read(in, pb->b + pb->len, sizeof pb->b - pb->len);
    if (r > 0) {
        pb->len += (size_t)r;
        return (int)r;
    }
    if (r == 0 || (errno != EAGAIN && errno != EINTR && errno != EWOULDBLOCK))
        pb->eof = true;
    return 0;
}

static int pump_write(int out, struct pipe_buf *pb)
{
    ssize_t w = write(out, pb->b, pb->len);
    if (w > 0) {
        memmove(pb->b, pb->b + w, pb->len - (size_t)w);
        pb->len -= (size_t)w;
        return 0;
    }
    return w < 0 && (errno == EAGAIN || errno == EINTR || errno == EWOULDBLOCK) ? 0 : -1;
}

static void set_nonblock(int fd, int *saved)
{
    *saved = fcntl(fd, F_GETFL);
    if (*saved >= 0)
        (void)fcntl(fd, F_SETFL, *saved | O_NONBLOCK);
}

/* What a relay does with the bytes it moves, beside moving them. */
struct relay_hooks {
    /* New bytes from stdin at up->b[before..up->len]; may cut up->len.
     * true: send what is left and stop (the serial console's Ctrl-]). */
    bool (*up)(void *ctx, struct pipe_buf *up, size_t before);
    /* New bytes from the socket at down->b[before..down->len] (none at its
     * end).  -1: stop now, exit status 1 (a refusal already said). */
    int (*down)(void *ctx, struct pipe_buf *down, size_t before);
    /* Checked before each wait: true stops with exit status 1 (a signal). */
    bool (*stop)(void *ctx);
    void *ctx;
};

static struct pipe_buf up, down;            /* up: stdin -> sock; down: sock -> stdout */

/* The loop of both relays: stdin -> sock, sock -> stdout, both non-blocking
 * with bounded buffers (a full one stops reading its side), the socket's
 * write side shut at stdin's end, done at the socket's end once stdout has
 * it all (or when stdout is gone).  *detached: the up hook stopped it.
 * Returns 1 on a poll error, a hook's -1 or stop, else 0. */
static int relay_loop(int sock, const struct relay_hooks *h, bool *detached)
{
    bool up_shut = false;
    *detached = false;
    for (;;) {
        if (h->stop && h->stop(h->ctx))
            return 1;
        if (up.eof && up.len == 0 && !up_shut) {
            shutdown(sock, SHUT_WR);
            up_shut = true;
        }
        if ((down.eof && down.len == 0) || *detached)
            return 0;
        struct pollfd p[3] = {
            { .fd = !up.eof && up.len < sizeof up.b ? 0 : -1, .events = POLLIN },
            { .fd = sock, .events = (short)((!down.eof && down.len < sizeof down.b ? POLLIN : 0) |
                                            (up.len ? POLLOUT : 0)) },
            { .fd = down.len ? 1 : -1, .events = POLLOUT },
        };
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (p[0].revents) {
            size_t before = up.len;
            pump_read(0, &up);
            if (h->up && h->up(h->ctx, &up, before))
                *detached = true;
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            size_t before = down.len;
            if (!down.eof)
                pump_read(sock, &down);
            if (h->down && h->down(h->ctx, &down, before) < 0)
                return 1;
        }
        if ((p[1].revents & POLLOUT) && up.len && pump_write(sock, &up) < 0)
            up.len = 0, up.eof = true;
        if ((p[2].revents & (POLLOUT | POLLERR | POLLHUP)) && down.len && pump_write(1, &down) < 0)
            return 0;                             /* nobody reads stdout any more */
    }
}

/* RFB: both directions watched for vmgate's refusal (said once, status 1;
 * the stream still goes to the client, which reads the reason too). */
struct rfb_ctx {
    struct console_watch w;
    int rc;
};

static bool rfb_up(void *ctx, struct pipe_buf *pb, size_t before)
{
    struct rfb_ctx *r = ctx;
    console_watch_c2s(&r->w, pb->b + before, pb->len - before);
    return false;
}

static int rfb_down(void *ctx, struct pipe_buf *pb, size_t before)
{
    struct rfb_ctx *r = ctx;
    console_watch_s2c(&r->w, pb->b + before, pb->len - before);
    if (r->w.state == CW_REFUSED && r->rc == 0) {
        fprintf(stderr, "vmgate console: %s\n", r->w.reason);
        r->rc = 1;
    }
    return 0;
}

/* The relay between stdin/stdout and the socket; returns the exit status. */
static int relay(int sock)
{
    struct rfb_ctx r = { .rc = 0 };
    console_watch_init(&r.w);
    struct relay_hooks h = { .up = rfb_up, .down = rfb_down, .ctx = &r };
    int fl_in, fl_out;
    bool detached;
    set_nonblock(0, &fl_in);
    set_nonblock(1, &fl_out);
    int rc = relay_loop(sock, &h, &detached);
    if (fl_in >= 0)
        (void)fcntl(0, F_SETFL, fl_in);
    if (fl_out >= 0)
        (void)fcntl(1, F_SETFL, fl_out);
    return rc || r.rc;
}

/* --serial: the terminal, raw while we run; restored on every way out. */
static struct termios saved_tio;
static bool tio_saved;
static volatile sig_atomic_t got_signal;

static void restore_tty(void)
{
    if (tio_saved)
        (void)tcsetattr(0, TCSAFLUSH, &saved_tio);
    tio_saved = false;
}

static void on_signal(int sig)
{
    got_signal = sig;
}

#define DETACH_KEY 0x1d               /* Ctrl-] */

/* Serial: stdin up to Ctrl-] (what came before it still goes). */
static bool serial_up(void *ctx, struct pipe_buf *pb, size_t before)
{
    (void)ctx;
    uint8_t *k = memchr(pb->b + before, DETACH_KEY, pb->len - before);
    if (!k)
        return false;
    pb->len = (size_t)(k - pb->b);
    return true;
}

/* Serial: the first line watched for vmgate's refusal (said, status 1). */
static int serial_down(void *ctx, struct pipe_buf *pb, size_t before)
{
    struct serial_watch *w = ctx;
    if (w->state == SW_WATCHING && pb->len > before) {
        (void)serial_watch_feed(w, pb->b + before, pb->len - before);
        if (w->state == SW_REFUSED) {         /* PASSED or still watching: the bytes go out */
            restore_tty();
            fprintf(stderr, "vmgate console: %s\n", w->reason);
            return -1;
        }
    }
    if (pb->eof && w->state == SW_WATCHING && w->len > 0)
        w->state = SW_PASSED;
    return 0;
}

static bool serial_stop(void *ctx)
{
    (void)ctx;
    return got_signal != 0;
}

/* The serial relay: stdin -> sock (up to Ctrl-]), sock -> stdout, with the
 * first line watched for a refusal.  Returns the exit status. */
static int serial_relay(int sock, const char *vm)
{
    struct serial_watch w;
    serial_watch_init(&w);
    bool tty = isatty(0);
    if (tty && tcgetattr(0, &saved_tio) == 0) {
        struct termios raw = saved_tio;
        cfmakeraw(&raw);
        tio_saved = tcsetattr(0, TCSAFLUSH, &raw) == 0;
        atexit(restore_tty);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;            /* no SA_RESTART: poll returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    int fl_in, fl_out;
    set_nonblock(0, &fl_in);
    set_nonblock(1, &fl_out);
    bool detached;
    struct relay_hooks h = { .up = serial_up, .down = serial_down, .stop = serial_stop,
                             .ctx = &w };
    int rc = relay_loop(sock, &h, &detached);
    if (detached && up.len)
        (void)pump_write(sock, &up);        /* best effort: the bytes before Ctrl-] */
    if (fl_out >= 0)
        (void)fcntl(1, F_SETFL, fl_out);
    while (down.len && rc == 0 && !detached && pump_write(1, &down) == 0 && down.len)
        ;
    restore_tty();
    if (fl_in >= 0)
        (void)fcntl(0, F_SETFL, fl_in);
    if (detached) {
        fprintf(stderr, "\r\n[vmgate console: detached from VM %s]\r\n", vm);
    } else if (got_signal) {
        fprintf(stderr, "\r\n[vmgate console: %s, detached from VM %s]\r\n",
                strsignal(got_signal), vm);
    } else if (rc == 0 && down.eof) {
        fprintf(stderr, "\r\n[vmgate console: the serial console of VM %s closed]\r\n", vm);
        rc = w.state == SW_WATCHING && w.len == 0 ? 1 : 0;
    }
    return rc;
}

int console_cmd(int argc, char **argv)
{
    bool serial = false;
    const char *file = NULL, *dir = NULL, *vm = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
            file = argv[++i];
        } else if (strcmp(a, "--socket-dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(console_help, stdout);
            return 0;
        } else if (strcmp(a, "--serial") == 0) {
            serial = true;
        } else if (a[0] != '-' && !vm) {
            vm = a;
        } else {
            fprintf(stderr, "vmgate console: unknown argument '%s'\n\n%s", a, console_help);
            return 2;
        }
    }
    if (!vm || (file && dir)) {
        fputs(console_help, stderr);
        return 2;
    }
    if (!vm_name_ok(vm)) {
        fprintf(stderr, "vmgate console: bad VM name \"%s\"\n", vm);
        return 2;
    }
    char path[CFG_PATH_MAX + 1];
    if (dir) {
        if (snprintf(path, sizeof path, "%s/%s.%s", dir, vm, serial ? "serial" : "vnc") >=
            (int)sizeof path) {
            fprintf(stderr, "vmgate console: --socket-dir %s: path too long\n", dir);
            return 2;
        }
    } else {
        struct cfg cfg;
        char err[1024];
        if (cfg_load(file ? file : CFG_DEFAULT_FILE, &cfg, err, sizeof err) != 0) {
            fprintf(stderr, "vmgate console: %s (or give --socket-dir DIR)\n", err);
            return 1;
        }
        int r = cfg_socket_path(&cfg, vm, serial ? "serial" : "vnc", path, sizeof path);
        const struct cfg_vm *v = cfg_find_vm(&cfg, vm);
        bool known = v != NULL;
        bool has_serial = v && v->serial.kind != CFG_BE_NONE;
        cfg_free(&cfg);
        if (r != 0) {
            fprintf(stderr, "vmgate console: %s has no socket_dir\n", file ? file : CFG_DEFAULT_FILE);
            return 1;
        }
        if (!known) {
            fprintf(stderr, "vmgate console: no VM %s\n", vm);
            return 1;
        }
        if (serial && !has_serial) {
            fprintf(stderr, "vmgate console: VM %s has no serial console (no serial = in %s)\n",
                    vm, file ? file : CFG_DEFAULT_FILE);
            return 1;
        }
    }
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&sun, sizeof sun) != 0) {
        if (serial && (errno == ENOENT || errno == ECONNREFUSED))
            fprintf(stderr, "vmgate console: the serial console of VM %s is not running "
                    "(%s: %s)\n", vm, path, strerror(errno));
        else
            fprintf(stderr, "vmgate console: cannot connect to %s: %s\n", path, strerror(errno));
        if (s >= 0)
            close(s);
        return 1;
    }
    (void)fcntl(s, F_SETFL, O_NONBLOCK);
    signal(SIGPIPE, SIG_IGN);
    int rc = serial ? serial_relay(s, vm) : relay(s);
    close(s);
    return rc;
}
