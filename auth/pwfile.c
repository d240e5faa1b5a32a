/* auth/pwfile.c — the vmgate password file (auth = file) and `vmgate passwd`.
 *
 * Format: one "user:HASH" per line, HASH a crypt(3) string (we write
 * yescrypt, "$y$..."); blank lines and lines whose first non-blank byte is
 * '#' are kept as they are.  A line longer than AUTH_PWFILE_LINE_MAX, a
 * malformed line or a user listed twice makes the whole file an error: a
 * damaged file is never half-trusted.  User names are [A-Za-z0-9_.@-], at
 * most AUTHP_USER_MAX bytes.  A hash starting with '!' or '*' is a locked
 * account.  Passwords in the file are at most 511 bytes (libcrypt's limit;
 * PAM takes up to AUTHP_PASS_MAX). */
#include "auth/auth.h"
#include "auth/auth_int.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define PWFILE_SIZE_MAX (16u << 20)   /* refuse to slurp anything bigger */
/* libcrypt hashes at most CRYPT_MAX_PASSPHRASE_SIZE - 1 bytes */
#define AUTH_PWFILE_PASS_MAX (CRYPT_MAX_PASSPHRASE_SIZE - 1)

/* A yescrypt hash of a random throwaway password with the same cost as the
 * hashes we write ("j9T"): unknown users are checked against it so they
 * take as long as known ones. */
static const char dummy_hash[] =
    "$y$j9T$IV2rvRbC65M7ujN6ReSoY.$EpyG/yJui0AcR00ehzJAnBTACRAVgJ50RBHJmqVZNU0";

bool auth_ct_streq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return false;
    volatile unsigned char d = 0;
    for (size_t i = 0; i < la; i++)
        d = (unsigned char)(d | ((unsigned char)a[i] ^ (unsigned char)b[i]));
    return d == 0;
}

static bool user_char_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '@' || c == '-';
}

bool auth_pwfile_user_ok(const char *user)
{
    if (!user)
        return false;
    size_t n = strnlen(user, AUTHP_USER_MAX + 1);
    if (n == 0 || n > AUTHP_USER_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!user_char_ok((unsigned char)user[i]))
            return false;
    return true;
}

/* Read the whole file into a NUL-terminated heap buffer.  Only regular
 * files up to PWFILE_SIZE_MAX.  Returns 0, or -errno (-ENOENT when missing,
 * -EFBIG when too big, -EINVAL when not a regular file).  *st gets the
 * file's metadata. */
static int read_file(const char *file, char **out, size_t *outlen, struct stat *st)
{
    *out = NULL;
    *outlen = 0;
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    if (fstat(fd, st) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return -EINVAL;
    }
    if ((unsigned long long)st->st_size > PWFILE_SIZE_MAX) {
        close(fd);
        return -EFBIG;
    }
    size_t cap = (size_t)st->st_size + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        if (len + 1 >= cap) {
            /* the file grew while we read it: take what fits the limit */
            if (cap > PWFILE_SIZE_MAX) {
                explicit_bzero(buf, len);
                free(buf);
                close(fd);
                return -EFBIG;
            }
            char *nb = malloc(cap * 2);
            if (!nb) {
                explicit_bzero(buf, len);
                free(buf);
                close(fd);
                return -ENOMEM;
            }
            memcpy(nb, buf, len);
            explicit_bzero(buf, len);
            free(buf);
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            explicit_bzero(buf, len);
            free(buf);
            close(fd);
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;
}

static void free_text(char *text, size_t len)
{
    if (text) {
        explicit_bzero(text, len);
        free(text);
    }
}

/* Where a user's entry is in the file text. */
struct pw_entry {
    size_t off, len;         /* the whole line, without its newline */
    const char *hash;        /* inside the text, not NUL-terminated */
    size_t hashlen;
};

/* Validate every line of text (len bytes) and look for user.  Returns 1 and
 * fills *e when found, 0 when the file is valid but has no such user, -1
 * with "FILE:LINE: why" in err when any line is malformed. */
static int pw_scan(const char *file, const char *text, size_t len, const char *user,
                   struct pw_entry *e, char *err, size_t errlen)
{
    size_t ulen = user ? strlen(user) : 0;
    int found = 0;
    unsigned lineno = 0;
    for (size_t pos = 0; pos < len;) {
        lineno++;
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        size_t next = pos + ll + (nl ? 1 : 0);
        if (ll > AUTH_PWFILE_LINE_MAX) {
            snprintf(err, errlen, "%s:%u: line longer than %u bytes", file, lineno,
                     AUTH_PWFILE_LINE_MAX);
            return -1;
        }
        if (memchr(line, '\0', ll)) {
            snprintf(err, errlen, "%s:%u: NUL byte in line", file, lineno);
            return -1;
        }
        /* trim trailing blanks and a CR */
        size_t tl = ll;
        while (tl > 0 && (line[tl - 1] == ' ' || line[tl - 1] == '\t' || line[tl - 1] == '\r'))
            tl--;
        size_t lead = 0;
        while (lead < tl && (line[lead] == ' ' || line[lead] == '\t'))
            lead++;
        if (lead == tl || line[lead] == '#') {
            pos = next;
            continue;
        }
        const char *colon = memchr(line, ':', tl);
        if (!colon) {
            snprintf(err, errlen, "%s:%u: expected user:hash", file, lineno);
            return -1;
        }
        size_t nl_user = (size_t)(colon - line);
        if (nl_user == 0 || nl_user > AUTHP_USER_MAX) {
            snprintf(err, errlen, "%s:%u: bad user name", file, lineno);
            return -1;
        }
        for (size_t i = 0; i < nl_user; i++) {
            if (!user_char_ok((unsigned char)line[i])) {
                snprintf(err, errlen, "%s:%u: bad user name", file, lineno);
                return -1;
            }
        }
        const char *hash = colon + 1;
        size_t hl = tl - nl_user - 1;
        if (hl == 0) {
            snprintf(err, errlen, "%s:%u: empty hash", file, lineno);
            return -1;
        }
        for (size_t i = 0; i < hl; i++) {
            unsigned char c = (unsigned char)hash[i];
            if (c <= 0x20 || c >= 0x7f || c == ':') {
                snprintf(err, errlen, "%s:%u: bad character in hash", file, lineno);
                return -1;
            }
        }
        if (user && nl_user == ulen && memcmp(line, user, ulen) == 0) {
            if (found) {
                snprintf(err, errlen, "%s:%u: user listed twice", file, lineno);
                return -1;
            }
            found = 1;
            e->off = pos;
            e->len = ll;
            e->hash = hash;
            e->hashlen = hl;
        }
        pos = next;
    }
    return found;
}

/* A user name's place in the text, for the duplicate check. */
struct pw_name {
    const char *p;
    size_t len;
    unsigned line;
};

static int pw_name_cmp(const void *a, const void *b)
{
    const struct pw_name *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* After pw_scan accepted text: is any user listed twice?  (pw_scan only
 * notices duplicates of the user it looks for; before rewriting the file we
 * want to know about all of them.)  Returns 0, or -1 with err. */
static int pw_check_dups(const char *file, const char *text, size_t len, char *err,
                         size_t errlen)
{
    size_t cap = 64, n = 0;
    struct pw_name *names = malloc(cap * sizeof *names);
    if (!names) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    unsigned lineno = 0;
    for (size_t pos = 0; pos < len;) {
        lineno++;
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + (nl ? 1 : 0);
        const char *colon = memchr(line, ':', ll);
        if (!colon || colon == line || !user_char_ok((unsigned char)line[0]))
            continue;   /* blank or comment: pw_scan already vetted the rest */
        if (n == cap) {
            struct pw_name *nn = realloc(names, cap * 2 * sizeof *names);
            if (!nn) {
                free(names);
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            names = nn;
            cap *= 2;
        }
        names[n++] = (struct pw_name){ line, (size_t)(colon - line), lineno };
    }
    qsort(names, n, sizeof *names, pw_name_cmp);
    for (size_t i = 1; i < n; i++) {
        if (names[i].len == names[i - 1].len &&
            memcmp(names[i].p, names[i - 1].p, names[i].len) == 0) {
            snprintf(err, errlen, "%s:%u: user listed twice", file, names[i].line);
            free(names);
            return -1;
        }
    }
    free(names);
    return 0;
}

/* crypt_rn with heap scratch space (struct crypt_data is 32 KiB), wiped
 * afterwards.  Copies the result into out; returns 0, or -1 when libcrypt
 * refuses the setting (unknown or malformed hash). */
static int hash_password(const char *password, const char *setting, char *out, size_t outlen)
{
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return -1;
    int rc = -1;
    const char *h = crypt_rn(password, setting, cd, (int)sizeof *cd);
    if (h && h[0] != '*' && strlen(h) < outlen) {
        memcpy(out, h, strlen(h) + 1);
        rc = 0;
    }
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    return rc;
}

/* Value 0..63 of a crypt(3) base-64 character, or -1. */
static int itoa64(char c)
{
    static const char a[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const char *p = c ? strchr(a, c) : NULL;
    return p ? (int)(p - a) : -1;
}

/* Rough cost of checking a password against hash (n bytes), in
 * microseconds of this kind of machine: enough to rank a file's entries,
 * not a benchmark.  yescrypt ($y$, $gy$, $7$) is N x r (its params: a flags
 * character, then log2(N) - 1 and r - 1 in crypt base-64; "j9T" is N 4096,
 * r 32, about 50 ms); SHA-crypt ($5$, $6$) is its rounds (default 5000);
 * bcrypt ($2?$CC$) is 2^CC.  An unknown method ranks lowest (1). */
static double hash_cost(const char *h, size_t n)
{
    char buf[64];
    size_t m = n < sizeof buf - 1 ? n : sizeof buf - 1;
    memcpy(buf, h, m);
    buf[m] = '\0';
    const char *params = NULL;
    if (strncmp(buf, "$y$", 3) == 0 || strncmp(buf, "$7$", 3) == 0)
        params = buf + 3;
    else if (strncmp(buf, "$gy$", 4) == 0)
        params = buf + 4;
    if (params) {
        int nl = itoa64(params[1]), r = itoa64(params[2]);
        if (params[0] == '\0' || nl < 0 || nl > 30 || r < 0)
            return 50000.0;   /* unparsable: assume the default cost */
        return (double)(1ul << (nl + 1)) * (r + 1) * (50000.0 / (4096.0 * 32.0));
    }
    if (strncmp(buf, "$6$", 3) == 0 || strncmp(buf, "$5$", 3) == 0) {
        unsigned long rounds = 5000;
        if (strncmp(buf + 3, "rounds=", 7) == 0)
            rounds = strtoul(buf + 10, NULL, 10);
        return (double)rounds * (buf[1] == '6' ? 1.0 : 0.8);
    }
    if (buf[0] == '$' && buf[1] == '2' && buf[2] && buf[3] == '$') {
        unsigned long c = strtoul(buf + 4, NULL, 10);
        return c <= 31 ? (double)(1ul << c) * 60.0 : 1.0;
    }
    if (strncmp(buf, "$1$", 3) == 0)
        return 300.0;
    return 1.0;
}

/* The setting burn_dummy hashes with, for this load of the file: the
 * costliest entry's hash (a full hash is a valid crypt setting), so an
 * unknown user costs what the most expensive real entry costs; the
 * built-in dummy_hash when that is costlier or the file has no usable
 * entry.  Lines are not validated here (pw_scan does that). */
static void pw_dummy_setting(const char *text, size_t len, char *out, size_t outlen)
{
    double best = hash_cost(dummy_hash, sizeof dummy_hash - 1);
    snprintf(out, outlen, "%s", dummy_hash);
    for (size_t pos = 0; pos < len;) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + (nl ? 1 : 0);
        while (ll > 0 && (line[ll - 1] == ' ' || line[ll - 1] == '\t' || line[ll - 1] == '\r'))
            ll--;
        const char *colon = memchr(line, ':', ll);
        if (!colon || line[0] == '#')
            continue;
        const char *h = colon + 1;
        size_t hl = ll - (size_t)(h - line);
        if (hl == 0 || hl >= outlen || h[0] != '$')
            continue;
        double c = hash_cost(h, hl);
        if (c > best) {
            best = c;
            memcpy(out, h, hl);
            out[hl] = '\0';
        }
    }
}

/* Spend the time of one real check with setting (pw_dummy_setting), so
 * unknown or locked users are not told apart by timing. */
static void burn_dummy(const char *password, const char *setting)
{
    char out[CRYPT_OUTPUT_SIZE], pw[AUTH_PWFILE_PASS_MAX + 1];
    snprintf(pw, sizeof pw, "%s", password);   /* libcrypt's length limit */
    if (hash_password(pw, setting, out, sizeof out) == 0)
        (void)auth_ct_streq(out, setting);
    else if (hash_password(pw, dummy_hash, out, sizeof out) == 0)
        (void)auth_ct_streq(out, dummy_hash);
    explicit_bzero(out, sizeof out);
    explicit_bzero(pw, sizeof pw);
}

enum authp_result auth_pwfile_check(const char *file, const char *user, const char *password,
                                    char *detail, size_t detaillen)
{
    char dummy[8];
    if (!detail || detaillen == 0) {
        detail = dummy;
        detaillen = sizeof dummy;
    }
    detail[0] = '\0';
    if (!file || !user || !password) {
        snprintf(detail, detaillen, "pwfile: missing argument");
        return AUTHP_ERROR;
    }

    char *text;
    size_t len;
    struct stat st;
    int rc = read_file(file, &text, &len, &st);
    if (rc < 0) {
        snprintf(detail, detaillen, "%s: %s", file,
                 rc == -EINVAL ? "not a regular file" : strerror(-rc));
        return AUTHP_ERROR;
    }

    enum authp_result res;
    char setting[CRYPT_OUTPUT_SIZE];
    pw_dummy_setting(text, len, setting, sizeof setting);
    if (!auth_pwfile_user_ok(user)) {
        burn_dummy(password, setting);
        snprintf(detail, detaillen, "invalid user name");
        res = AUTHP_UNKNOWN_USER;
        goto out;
    }
    struct pw_entry e;
    char err[256];
    rc = pw_scan(file, text, len, user, &e, err, sizeof err);
    if (rc < 0) {
        snprintf(detail, detaillen, "%s", err);
        res = AUTHP_ERROR;
        goto out;
    }
    if (rc == 0) {
        burn_dummy(password, setting);
        snprintf(detail, detaillen, "no such user in %s", file);
        res = AUTHP_UNKNOWN_USER;
        goto out;
    }
    if (e.hash[0] == '!' || e.hash[0] == '*') {
        burn_dummy(password, setting);
        snprintf(detail, detaillen, "account locked in %s", file);
        res = AUTHP_ACCOUNT;
        goto out;
    }

    if (strlen(password) > AUTH_PWFILE_PASS_MAX) {
        /* never settable, so never right; same time as a real check */
        burn_dummy(password, setting);
        snprintf(detail, detaillen, "password longer than %d bytes", AUTH_PWFILE_PASS_MAX);
        res = AUTHP_BAD_PASSWORD;
        goto out;
    }
    char want[CRYPT_OUTPUT_SIZE], got[CRYPT_OUTPUT_SIZE];
    if (e.hashlen >= sizeof want) {
        snprintf(detail, detaillen, "%s: hash of user too long", file);
        res = AUTHP_ERROR;
        goto out;
    }
    memcpy(want, e.hash, e.hashlen);
    want[e.hashlen] = '\0';
    if (hash_password(password, want, got, sizeof got) < 0) {
        snprintf(detail, detaillen, "%s: unsupported hash for user", file);
        res = AUTHP_ERROR;
    } else if (auth_ct_streq(got, want)) {
        res = AUTHP_OK;
    } else {
        snprintf(detail, detaillen, "wrong password");
        res = AUTHP_BAD_PASSWORD;
    }
    explicit_bzero(want, sizeof want);
    explicit_bzero(got, sizeof got);
out:
    free_text(text, len);
    return res;
}

/* write() all of buf, retrying on EINTR and short writes. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* fsync the directory holding path, so a rename in it is durable. */
static void sync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int auth_pwfile_set(const char *file, const char *user, const char *password,
                    char *err, size_t errlen)
{
    char dummy[8];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!file || !*file || !user || !password) {
        snprintf(err, errlen, "missing argument");
        return -1;
    }
    if (!auth_pwfile_user_ok(user)) {
        snprintf(err, errlen, "invalid user name (allowed: A-Z a-z 0-9 _ . @ -, at most %d bytes)",
                 AUTHP_USER_MAX);
        return -1;
    }
    size_t plen = strlen(password);
    if (plen == 0) {
        snprintf(err, errlen, "empty password refused");
        return -1;
    }
    if (plen > AUTH_PWFILE_PASS_MAX) {
        snprintf(err, errlen, "password too long (at most %d bytes in a password file)",
                 AUTH_PWFILE_PASS_MAX);
        return -1;
    }

    char *text = NULL, *out = NULL;
    size_t len = 0, outlen = 0;
    struct stat st;
    bool existed = true;
    int rc = read_file(file, &text, &len, &st);
    if (rc == -ENOENT) {
        existed = false;
        text = NULL;
        len = 0;
    } else if (rc < 0) {
        snprintf(err, errlen, "%s: %s", file,
                 rc == -EINVAL ? "not a regular file" : strerror(-rc));
        return -1;
    }

    struct pw_entry e = { 0 };
    int found = text ? pw_scan(file, text, len, user, &e, err, errlen) : 0;
    if (found < 0 || (text && pw_check_dups(file, text, len, err, errlen) < 0))
        goto fail;

    /* the new entry */
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    char hash[CRYPT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, (int)sizeof salt)) {
        snprintf(err, errlen, "crypt_gensalt: %s", strerror(errno));
        goto fail;
    }
    if (hash_password(password, salt, hash, sizeof hash) < 0 || strncmp(hash, "$y$", 3) != 0) {
        snprintf(err, errlen, "crypt: yescrypt hashing failed");
        goto fail;
    }
    char entry[AUTHP_USER_MAX + CRYPT_OUTPUT_SIZE + 4];
    int elen = snprintf(entry, sizeof entry, "%s:%s", user, hash);
    explicit_bzero(hash, sizeof hash);
    if (elen < 0 || (size_t)elen >= sizeof entry) {
        snprintf(err, errlen, "entry too long");
        goto fail;
    }

    /* new text = everything before the old line + entry + everything after
     * (or the old text, a newline if it lacked one, and the entry) */
    size_t before = found ? e.off : len;
    size_t after_off = found ? e.off + e.len : len;
    bool need_nl = !found && len > 0 && text[len - 1] != '\n';
    outlen = before + (need_nl ? 1 : 0) + (size_t)elen + (found ? 0 : 1) + (len - after_off);
    out = malloc(outlen + 1);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    size_t o = 0;
    if (before) {
        memcpy(out, text, before);
        o = before;
    }
    if (need_nl)
        out[o++] = '\n';
    memcpy(out + o, entry, (size_t)elen);
    o += (size_t)elen;
    if (!found)
        out[o++] = '\n';
    if (len > after_off) {
        memcpy(out + o, text + after_off, len - after_off);
        o += len - after_off;
    }
    explicit_bzero(entry, sizeof entry);

    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", file) >= sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", file);
        goto fail;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            snprintf(err, errlen, "%s exists (another vmgate passwd running? remove it if not)",
                     tmp);
        else
            snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto fail;
    }
    /* 0600 whatever the umask; keep the old file's owner when we can */
    if (fchmod(fd, 0600) < 0 ||
        (existed && (st.st_uid != geteuid() || st.st_gid != getegid()) &&
         fchown(fd, st.st_uid, st.st_gid) < 0 && errno != EPERM) ||
        write_all(fd, out, o) < 0 || fsync(fd) < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto fail;
    }
    if (close(fd) < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto fail;
    }
    if (rename(tmp, file) < 0) {
        snprintf(err, errlen, "rename %s to %s: %s", tmp, file, strerror(errno));
        unlink(tmp);
        goto fail;
    }
    sync_dir_of(file);
    free_text(text, len);
    free_text(out, outlen + 1);
    return 0;

fail:
    free_text(text, len);
    free_text(out, outlen + 1);
    return -1;
}

/* ---- vmgate passwd FILE USER ---- */

static void passwd_usage(FILE *f)
{
    fputs("usage: vmgate passwd FILE USER\n"
          "\n"
          "Set USER's password in the vmgate password file FILE (used with\n"
          "auth = file), hashed with yescrypt.  FILE is created (mode 0600) if\n"
          "missing; other users' lines and comments are kept.  The password is\n"
          "read from the terminal (asked twice, not echoed) or, when stdin is\n"
          "not a terminal, from the first line of stdin.\n"
          "\n"
          "User names: A-Z a-z 0-9 _ . @ -, at most 255 bytes.\n"
          "Passwords: 1 to 511 bytes.\n",
          f);
}

static struct termios g_tty_saved;
static volatile sig_atomic_t g_tty_fd = -1;

/* Restore the terminal's echo if we are killed while it is off, then die of
 * the same signal. */
static void passwd_sig(int sig)
{
    if (g_tty_fd >= 0)
        tcsetattr(g_tty_fd, TCSANOW, &g_tty_saved);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Read one line from fd into buf (size cap) without the newline (or
 * "\r\n").  Returns its length, -1 on a read error, -2 when the line does
 * not fit (over AUTHP_PASS_MAX), -3 on a NUL byte, -4 on EOF before any
 * byte. */
static ssize_t read_line_fd(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    bool any = false, toolong = false, nul = false;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        any = true;
        if (c == '\n')
            break;
        if (c == '\0')
            nul = true;
        if (n + 1 < cap)
            buf[n++] = c;
        else
            toolong = true;
        c = 0;
    }
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    if (!any)
        return -4;
    if (toolong) {
        explicit_bzero(buf, cap);
        return -2;
    }
    if (nul) {
        explicit_bzero(buf, cap);
        return -3;
    }
    return (ssize_t)n;
}

/* Prompt on /dev/tty with echo off and read one line. */
static ssize_t tty_prompt(int tty, const char *prompt, char *buf, size_t cap)
{
    if (write_all(tty, prompt, strlen(prompt)) < 0)
        return -1;
    struct termios t = g_tty_saved;
    t.c_lflag &= (tcflag_t) ~(ECHO | ECHOE | ECHOK);
    t.c_lflag |= ECHONL;
    g_tty_fd = tty;
    if (tcsetattr(tty, TCSAFLUSH, &t) < 0) {
        g_tty_fd = -1;
        return -1;
    }
    ssize_t n = read_line_fd(tty, buf, cap);
    tcsetattr(tty, TCSANOW, &g_tty_saved);
    g_tty_fd = -1;
    return n;
}

static const char *read_err(ssize_t n)
{
    switch (n) {
    case -2: return "password too long (at most 1024 bytes)";
    case -3: return "NUL byte in password";
    case -4: return "no password given";
    default: return strerror(errno);
    }
}

/* Get the new password into pw (cap bytes): twice from the terminal when
 * stdin is one, else the first line of stdin.  Returns 0 or -1 with a
 * message in err. */
static int passwd_read(const char *user, char *pw, size_t cap, char *err, size_t errlen)
{
    if (!isatty(STDIN_FILENO)) {
        ssize_t n = read_line_fd(STDIN_FILENO, pw, cap);
        if (n < 0) {
            snprintf(err, errlen, "reading stdin: %s", read_err(n));
            return -1;
        }
        return 0;
    }

    int tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (tty < 0) {
        snprintf(err, errlen, "/dev/tty: %s", strerror(errno));
        return -1;
    }
    if (tcgetattr(tty, &g_tty_saved) < 0) {
        snprintf(err, errlen, "/dev/tty: %s", strerror(errno));
        close(tty);
        return -1;
    }
    struct sigaction sa = { .sa_handler = passwd_sig }, old[4];
    sigemptyset(&sa.sa_mask);
    static const int sigs[4] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
    for (int i = 0; i < 4; i++)
        sigaction(sigs[i], &sa, &old[i]);

    char prompt[300], again[AUTHP_PASS_MAX + 2];
    snprintf(prompt, sizeof prompt, "New password for %s: ", user);
    int rc = -1;
    ssize_t n = tty_prompt(tty, prompt, pw, cap);
    if (n < 0) {
        snprintf(err, errlen, "reading password: %s", read_err(n));
        goto out;
    }
    if (n == 0) {   /* refuse before asking again */
        rc = 0;
        goto out;
    }
    n = tty_prompt(tty, "Retype new password: ", again, sizeof again);
    if (n < 0) {
        snprintf(err, errlen, "reading password: %s", read_err(n));
        goto out;
    }
    if (!auth_ct_streq(pw, again)) {
        snprintf(err, errlen, "passwords do not match");
        goto out;
    }
    rc = 0;
out:
    explicit_bzero(again, sizeof again);
    if (rc < 0)
        explicit_bzero(pw, cap);
    for (int i = 0; i < 4; i++)
        sigaction(sigs[i], &old[i], NULL);
    close(tty);
    return rc;
}

int auth_passwd_cmd(int argc, char **argv)
{
    const char *pos[2];
    int npos = 0;
    bool opts = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (opts && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            passwd_usage(stdout);
            return 0;
        }
        if (opts && strcmp(a, "--") == 0) {
            opts = false;
            continue;
        }
        if (opts && a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "vmgate passwd: unknown option %s\n", a);
            passwd_usage(stderr);
            return 1;
        }
        if (npos == 2) {
            fprintf(stderr, "vmgate passwd: too many arguments\n");
            passwd_usage(stderr);
            return 1;
        }
        pos[npos++] = a;
    }
    if (npos != 2) {
        fprintf(stderr, "vmgate passwd: expected FILE and USER\n");
        passwd_usage(stderr);
        return 1;
    }
    const char *file = pos[0], *user = pos[1];
    if (!auth_pwfile_user_ok(user)) {
        fprintf(stderr, "vmgate passwd: invalid user name (allowed: A-Z a-z 0-9 _ . @ -, "
                        "at most %d bytes)\n", AUTHP_USER_MAX);
        return 1;
    }

    char pw[AUTHP_PASS_MAX + 2];
    char err[512];
    if (passwd_read(user, pw, sizeof pw, err, sizeof err) < 0) {
        fprintf(stderr, "vmgate passwd: %s\n", err);
        return 1;
    }
    if (pw[0] == '\0') {
        fprintf(stderr, "vmgate passwd: empty password refused\n");
        return 1;
    }
    int rc = auth_pwfile_set(file, user, pw, err, sizeof err);
    explicit_bzero(pw, sizeof pw);
    if (rc < 0) {
        fprintf(stderr, "vmgate passwd: %s\n", err);
        return 1;
    }
    printf("vmgate passwd: password for %s set in %s\n", user, file);
    fflush(stdout);
    return 0;
}

/* Accepts any path; looks at the file itself (stat follows a symlink: the
 * file that is read is what matters).  Whoever can write the password
 * file can give themselves a login, so group/other write access is refused
 * always, and an owner other than root when vmgate runs as root (that
 * owner could rewrite it).  A missing file is not this check's business
 * (the helper reports it at the first login). */
int auth_pwfile_check_perms(const char *file, bool as_root, char *err, size_t errlen)
{
    struct stat st;
    if (!file || stat(file, &st) != 0)
        return 0;
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "passwd_file %s is not a regular file", file);
        return -1;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen, "passwd_file %s is writable by %s (mode %04o): anyone who can "
                 "write it can give themselves a login; chmod 600 %s", file,
                 (st.st_mode & S_IWOTH) ? "others" : "its group",
                 (unsigned)(st.st_mode & 07777), file);
        return -1;
    }
    if (as_root && st.st_uid != 0) {
        snprintf(err, errlen, "passwd_file %s is owned by uid %u, not root: its owner can give "
                 "themselves a login; chown root %s", file, (unsigned)st.st_uid, file);
        return -1;
    }
    return 0;
}
