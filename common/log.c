/* common/log.c — see log.h. */
#include "common/log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level g_level = LOG_LVL_INFO;
static char g_tag[16] = "main";
static int g_tty = -1;

void log_set_level(enum log_level lvl) { g_level = lvl; }
enum log_level log_get_level(void) { return g_level; }

void log_set_tag(const char *tag)
{
    snprintf(g_tag, sizeof g_tag, "%s", tag);
}

static const char *const level_name[] = { "error", "warning", "info", "debug" };

void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
    if (lvl > g_level)
        return;
    if (g_tty < 0)
        g_tty = isatty(STDERR_FILENO);
    /* Build the whole line first so concurrent processes never interleave. */
    char line[2048];
    size_t off = 0;
    if (g_tty) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        off += strftime(line, sizeof line, "%H:%M:%S ", &tm);
    }
    int n = snprintf(line + off, sizeof line - off, "vmgate[%ld] %s: %s: ",
                     (long)getpid(), g_tag, level_name[lvl]);
    if (n > 0)
        off += (size_t)n < sizeof line - off ? (size_t)n : sizeof line - off - 1;
    n = vsnprintf(line + off, sizeof line - off, fmt, ap);
    if (n > 0)
        off += (size_t)n < sizeof line - off ? (size_t)n : sizeof line - off - 1;
    if (off >= sizeof line - 1)
        off = sizeof line - 2;
    line[off++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, off);
    (void)w;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(lvl, fmt, ap);
    va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_LVL_ERR, fmt, ap);
    va_end(ap);
    exit(1);
}

/* Copy with escapes; space too when esc_space.  An escape that does not
 * fit whole is left out, so the output never ends inside one. */
static char *safe_copy(char *out, size_t outsz, const char *s, size_t n, bool esc_space)
{
    if (!out || outsz == 0)
        return out;
    size_t o = 0;
    for (size_t i = 0; s && i < n && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[5];
        size_t el;
        if (c == '"' || c == '\\') {
            e[0] = '\\';
            e[1] = (char)c;
            el = 2;
        } else if (c < 0x20 || c >= 0x7f || (esc_space && c == ' ')) {
            snprintf(e, sizeof e, "\\x%02x", c);
            el = 4;
        } else {
            e[0] = (char)c;
            el = 1;
        }
        if (o + el + 1 > outsz)
            break;
        memcpy(out + o, e, el);
        o += el;
    }
    out[o] = '\0';
    return out;
}

const char *log_shown(const char *s, char *buf, size_t cap)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    if (cap > 68)
        cap = 68;       /* quote at most 64 bytes and "..." */
    if (n + 1 > cap && cap >= 4) {
        log_safe(buf, cap - 3, s, n);
        strcat(buf, "...");
        return buf;
    }
    return log_safe(buf, cap, s, n);
}

char *log_safe(char *out, size_t outsz, const char *s, size_t n)
{
    return safe_copy(out, outsz, s, n, false);
}

char *log_safe_word(char *out, size_t outsz, const char *s, size_t n)
{
    return safe_copy(out, outsz, s, n, true);
}
