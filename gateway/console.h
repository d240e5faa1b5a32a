/* gateway/console.h — `vmgate console`: a local user's stdin/stdout joined
 * to socket_dir/VM.vnc (so `ssh host vmgate console dev0` is an RFB
 * transport), and the watcher that turns vmgate's refusal into one line on
 * stderr and exit status 1. */
#ifndef VMGATE_GATEWAY_CONSOLE_H
#define VMGATE_GATEWAY_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

/* Watches the start of an RFB session from both sides, without changing a
 * byte: the server's version, the client's version, then the server's
 * security message — "0 security types + reason" (3.7/3.8) or "type 0 +
 * reason" (3.3) is a refusal.  Pure: bytes in, state out. */
enum console_watch_state {
    CW_WATCHING,      /* still before the server's security message */
    CW_PASSED,        /* the server offered security types: stop watching */
    CW_REFUSED,       /* refused; reason holds the server's text */
    CW_BAD,           /* not RFB as vmgate speaks it: stop watching */
};

#define CONSOLE_REASON_MAX 255

struct console_watch {
    enum console_watch_state state;
    uint8_t sbuf[12 + 1 + 4 + CONSOLE_REASON_MAX];   /* the server's first bytes */
    size_t slen;
    size_t sneed;                 /* bytes of the server's part that matter */
    uint8_t cbuf[12];             /* the client's version */
    size_t clen;
    int minor;                    /* client's minor version, 0 = not yet known */
    char reason[CONSOLE_REASON_MAX + 1];
};

void console_watch_init(struct console_watch *w);
/* Feed bytes the client sent (to the server) / the server sent.  Returns
 * the state after them. */
enum console_watch_state console_watch_c2s(struct console_watch *w, const uint8_t *p, size_t n);
enum console_watch_state console_watch_s2c(struct console_watch *w, const uint8_t *p, size_t n);

/* The serial console's first line (`--serial`): vmgate's first line on
 * socket_dir/VM.serial is either a refusal "vmgate: REASON\r\n" (then it
 * closes) or the session's greeting "[vmgate: ...]".  Pure: feed the
 * server's bytes until the state is not SW_WATCHING; the bytes fed stay in
 * line[0..len) for the caller to pass on (PASSED) or drop (REFUSED). */
enum serial_watch_state { SW_WATCHING, SW_PASSED, SW_REFUSED };
struct serial_watch {
    enum serial_watch_state state;
    char line[CONSOLE_REASON_MAX + 1];    /* the first line so far (bounded) */
    size_t len;
    char reason[CONSOLE_REASON_MAX + 1];  /* REFUSED: the text after "vmgate: ", printable */
};
void serial_watch_init(struct serial_watch *w);
/* Feed server bytes; returns how many of p were taken into w->line (the
 * rest, after the first line, is the caller's to pass on) and sets state. */
size_t serial_watch_feed(struct serial_watch *w, const uint8_t *p, size_t n);

/* `vmgate console [-c FILE | --socket-dir DIR] [--serial] VM` */
int console_cmd(int argc, char **argv);

#endif
