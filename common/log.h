/* common/log.h — one logging entry point for every process of vmgate.
 *
 * Lines go to stderr as "vmgate[PID]: LEVEL: message" (systemd adds the
 * timestamp; when stderr is a tty we add one).  Attacker-supplied strings
 * (user names, reasons) must pass through log_safe() first, which escapes
 * quotes, backslashes and control bytes, so one log line is always one line
 * and a quoted field always one field. */
#ifndef VMGATE_LOG_H
#define VMGATE_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* A short tag put before every message of this process ("auth", "main"). */
void log_set_tag(const char *tag);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level lvl, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define log_err(...)   log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_get_level() >= LOG_LVL_DEBUG) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

/* Copy at most n bytes of s (up to a NUL) into out (size outsz, always
 * NUL-terminated), escaped for a "quoted" log field: `"` and `\` become
 * `\"` and `\\`, every byte outside printable ASCII `\xNN`.  Output that
 * does not fit is cut before a whole escape.  Returns out. */
char *log_safe(char *out, size_t outsz, const char *s, size_t n);
/* Untrusted text for an error message: log_safe() of s (NULL is ""), cut
 * at 64 bytes with "..." appended when longer.  buf should hold 68 bytes;
 * a smaller cap cuts earlier.  Returns buf. */
const char *log_shown(const char *s, char *buf, size_t cap);
/* The same for an unquoted key=value field: a space becomes `\x20` too. */
char *log_safe_word(char *out, size_t outsz, const char *s, size_t n);

#endif
