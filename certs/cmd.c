/* certs/cmd.c — `vmgate certs ...` command line (see certs.h). */
#include "certs/certs.h"
#include "certs/certs_int.h"
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CERTS_DEFAULT_DAYS 825

static const char certs_usage_text[] =
    "usage: vmgate certs init --dir DIR [--ca-dir CADIR] [--name NAME,...] [--days N] [--force]\n"
    "       vmgate certs show --dir DIR | -c FILE\n"
    "\n"
    "init: create a private CA and a server certificate signed by it:\n"
    "  DIR/ca.crt       CA certificate; viewers must trust it\n"
    "  DIR/ca/ca.key    CA private key (mode 0600, directory 0700; or CADIR/ca.key)\n"
    "  DIR/server.crt   server certificate (\"cert =\" in vmgate.conf)\n"
    "  DIR/server.key   server private key (mode 0600, \"key =\" in vmgate.conf)\n"
    "Keys are ECDSA P-256, signatures SHA-256.  The CA is name-constrained to\n"
    "the --name list: it cannot sign a certificate for any other name.  Keep\n"
    "ca.key offline once the server certificate is made.  Existing files are\n"
    "never overwritten without --force.\n"
    "\n"
    "show: print the server certificate's subject, names, validity and SHA-256\n"
    "fingerprint (DIR/server.crt, or the cert = file of the config FILE), to\n"
    "compare with what a viewer shows.\n"
    "\n"
    "options:\n"
    "  --dir DIR         where to write (created if missing)\n"
    "  --ca-dir CADIR    where to write ca.key (default DIR/ca)\n"
    "  --name NAME,...   DNS names and IP addresses viewers connect to; the\n"
    "                    first is the certificate's CN; may be repeated\n"
    "                    (default: this host's name, localhost, 127.0.0.1, ::1)\n"
    "  --days N          validity in days, 1..36500 (default 825)\n"
    "  --force           replace existing files\n"
    "  -h, --help        show this help\n";

static void certs_cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void certs_cli_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("vmgate certs: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Report a usage error and return exit code 2. */
static int certs_usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int certs_usage_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("vmgate certs: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fputs("usage: vmgate certs init --dir DIR [--ca-dir CADIR] [--name NAME,...] [--days N] "
          "[--force]\n"
          "       vmgate certs show --dir DIR | -c FILE\n"
          "Try 'vmgate certs --help'.\n",
          stderr);
    return 2;
}

/* Match argv[*i] against --opt, taking the value either inline
 * ("--opt=VALUE") or from the next argument ("--opt VALUE").  Returns 1 and
 * sets *val on a match, 0 when argv[*i] is another option, -1 (usage error
 * printed) when the value is missing. */
static int certs_opt_value(int argc, char **argv, int *i, const char *opt, const char **val)
{
    const char *a = argv[*i];
    size_t ol = strlen(opt);
    if (strncmp(a, opt, ol) != 0)
        return 0;
    if (a[ol] == '=') {
        *val = a + ol + 1;
        return 1;
    }
    if (a[ol] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        certs_usage_err("%s needs a value", opt);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

/* Split one --name value on commas into names[] (pointing into buf, which
 * the caller keeps alive), trimming blanks around each.  Each piece must be
 * a valid DNS name or IP address.  Returns 0 or the usage exit code. */
static int certs_split_names(char *buf, const char **names, size_t *n)
{
    char *save = NULL;
    if (*buf == '\0' || buf[strlen(buf) - 1] == ',' || *buf == ',' || strstr(buf, ",,"))
        return certs_usage_err("--name: empty name in '%s'", buf);
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && isspace((unsigned char)end[-1]))
            *--end = '\0';
        char err[320];
        if (certs_name_kind(tok, err, sizeof err) < 0)
            return certs_usage_err("--name: %s", err);
        if (*n >= CERTS_MAX_NAMES)
            return certs_usage_err("--name: too many names (at most %d)", CERTS_MAX_NAMES);
        names[(*n)++] = tok;
    }
    return 0;
}

/* `certs init`: argv[0] is "init".  Parses, fills in the default names,
 * generates, and prints what it wrote.  Returns the exit code. */
static int certs_cmd_init(int argc, char **argv)
{
    const char *dir = NULL, *ca_dir = NULL;
    const char *names[CERTS_MAX_NAMES + 4];
    char *bufs[CERTS_MAX_NAMES];
    size_t n_names = 0, n_bufs = 0;
    char host[HOST_NAME_MAX + 1];
    int days = CERTS_DEFAULT_DAYS, force = 0, rc = 2;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        int m;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(certs_usage_text, stdout);
            rc = 0;
            goto out;
        }
        if (strcmp(a, "--force") == 0) {
            force = 1;
        } else if ((m = certs_opt_value(argc, argv, &i, "--dir", &val)) != 0) {
            if (m < 0)
                goto out;
            if (!*val) {
                rc = certs_usage_err("--dir: empty directory name");
                goto out;
            }
            dir = val;
        } else if ((m = certs_opt_value(argc, argv, &i, "--ca-dir", &val)) != 0) {
            if (m < 0)
                goto out;
            if (!*val) {
                rc = certs_usage_err("--ca-dir: empty directory name");
                goto out;
            }
            ca_dir = val;
        } else if ((m = certs_opt_value(argc, argv, &i, "--days", &val)) != 0) {
            if (m < 0)
                goto out;
            char *end = NULL;
            errno = 0;
            long d = strtol(val, &end, 10);
            if (!*val || *end || errno || d < 1 || d > 36500) {
                rc = certs_usage_err("--days: expected a number of days 1..36500, not '%s'", val);
                goto out;
            }
            days = (int)d;
        } else if ((m = certs_opt_value(argc, argv, &i, "--name", &val)) != 0) {
            if (m < 0)
                goto out;
            if (n_bufs >= CERTS_MAX_NAMES) {
                rc = certs_usage_err("--name: too many names (at most %d)", CERTS_MAX_NAMES);
                goto out;
            }
            char *copy = strdup(val);
            if (!copy) {
                certs_cli_err("out of memory");
                rc = 1;
                goto out;
            }
            bufs[n_bufs++] = copy;
            int r = certs_split_names(copy, names, &n_names);
            if (r) {
                rc = r;
                goto out;
            }
        } else if (a[0] == '-') {
            rc = certs_usage_err("unknown option '%s'", a);
            goto out;
        } else {
            rc = certs_usage_err("unexpected argument '%s'", a);
            goto out;
        }
    }
    if (!dir) {
        rc = certs_usage_err("--dir is required");
        goto out;
    }
    if (n_names == 0) {
        /* The host's own name only when it is usable as a SAN. */
        if (gethostname(host, sizeof host) == 0) {
            host[sizeof host - 1] = '\0';
            if (certs_name_kind(host, NULL, 0) > 0)
                names[n_names++] = host;
        }
        names[n_names++] = "localhost";
        names[n_names++] = "127.0.0.1";
        names[n_names++] = "::1";
    }
    n_names = certs_names_dedupe(names, n_names);

    char err[512];
    if (certs_generate(dir, ca_dir, names, n_names, days, force, err, sizeof err) < 0) {
        certs_cli_err("%s", err);
        rc = 1;
        goto out;
    }

    static const struct { const char *file, *what; } files[] = {
        { "ca.crt", "CA certificate; viewers must trust it" },
        { "ca.key", "CA private key, mode 0600; keep it offline" },
        { "server.crt", "server certificate" },
        { "server.key", "server private key, mode 0600" },
    };
    char path[PATH_MAX], ca_path[PATH_MAX] = "", ca_dir_buf[PATH_MAX];
    if (!ca_dir) {
        if (certs_path_join(ca_dir_buf, sizeof ca_dir_buf, dir, CERTS_CA_SUBDIR) < 0)
            ca_dir_buf[0] = '\0'; /* cannot happen: certs_generate built it */
        ca_dir = ca_dir_buf;
    }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (certs_path_join(path, sizeof path, i == 1 ? ca_dir : dir, files[i].file) < 0)
            continue; /* cannot happen: certs_generate built the same paths */
        if (i == 0)
            memcpy(ca_path, path, sizeof path);
        printf("wrote %s (%s)\n", path, files[i].what);
    }
    printf("valid: %d days\n", days);
    printf("names:");
    for (size_t i = 0; i < n_names; i++)
        printf("%s %s:%s", i ? "," : "", certs_name_kind(names[i], NULL, 0) == CERTS_NAME_DNS
                                              ? "DNS" : "IP", names[i]);
    printf("\n");
    char fp[128];
    if (certs_fingerprint(ca_path, fp, sizeof fp, err, sizeof err) < 0) {
        certs_cli_err("%s", err);
        rc = 1;
        goto out;
    }
    printf("CA SHA-256 fingerprint: %s\n", fp);
    rc = 0;

out:
    fflush(stdout);
    for (size_t i = 0; i < n_bufs; i++)
        free(bufs[i]);
    return rc;
}

/* `certs show --dir DIR | -c FILE`: argv[0] is "show".  The certificate is
 * DIR/server.crt, or the config's cert = (the config is parsed in full, so
 * a broken one is reported as such).  With --dir the CA's fingerprint is
 * printed too when DIR/ca.crt is there.  Returns the exit code. */
static int certs_cmd_show(int argc, char **argv)
{
    const char *dir = NULL, *file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        int m;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(certs_usage_text, stdout);
            fflush(stdout);
            return 0;
        }
        if ((m = certs_opt_value(argc, argv, &i, "--dir", &val)) != 0) {
            if (m < 0)
                return 2;
            dir = val;
        } else if ((m = certs_opt_value(argc, argv, &i, "-c", &val)) != 0 ||
                   (m = certs_opt_value(argc, argv, &i, "--config", &val)) != 0) {
            if (m < 0)
                return 2;
            file = val;
        } else {
            return certs_usage_err("unknown argument '%s'", a);
        }
    }
    if ((dir != NULL) == (file != NULL))
        return certs_usage_err("show needs exactly one of --dir DIR and -c FILE");
    if (dir && !*dir)
        return certs_usage_err("--dir: empty directory name");

    char path[PATH_MAX], ca[PATH_MAX], err[1024];
    if (file) {
        struct cfg cfg;
        if (cfg_load(file, &cfg, err, sizeof err) != 0) {
            certs_cli_err("%s", err);
            return 1;
        }
        snprintf(path, sizeof path, "%s", cfg.cert);
        cfg_free(&cfg);
    } else if (certs_path_join(path, sizeof path, dir, "server.crt") < 0 ||
               certs_path_join(ca, sizeof ca, dir, "ca.crt") < 0) {
        certs_cli_err("%s: path too long", dir);
        return 1;
    }
    if (certs_show(path, stdout, err, sizeof err) < 0) {
        certs_cli_err("%s", err);
        return 1;
    }
    char fp[128];
    if (dir && access(ca, F_OK) == 0) {
        if (certs_fingerprint(ca, fp, sizeof fp, err, sizeof err) < 0) {
            certs_cli_err("%s", err);
            return 1;
        }
        printf("CA %s SHA-256 fingerprint: %s\n", ca, fp);
    }
    fflush(stdout);
    return 0;
}

int certs_cmd(int argc, char **argv)
{
    if (argc < 1 || !argv[0])
        return certs_usage_err("missing subcommand");
    if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0 ||
        strcmp(argv[0], "help") == 0) {
        fputs(certs_usage_text, stdout);
        fflush(stdout);
        return 0;
    }
    if (strcmp(argv[0], "init") == 0)
        return certs_cmd_init(argc, argv);
    if (strcmp(argv[0], "show") == 0)
        return certs_cmd_show(argc, argv);
    return certs_usage_err("unknown subcommand '%s'", argv[0]);
}
