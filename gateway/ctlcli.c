/* gateway/ctlcli.c — `vmgate status` and `vmgate kick`: one request over
 * the control socket (gateway/control.h), the reply's body on stdout. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/config.h"
#include "gateway/control.h"

#define REPLY_MAX (16u << 20)

static const char status_help[] =
    "usage: vmgate status [--json] [-c FILE | --socket PATH]\n"
    "\n"
    "List the live sessions (id, VM, user, source, via, since, bytes each way)\n"
    "and each VM's state.  For root and members of admin_group.  The control\n"
    "socket is the config's `control` (default /run/vmgate/control).\n";

static const char kick_help[] =
    "usage: vmgate kick ID|--user USER|--vm VM [--reason TEXT] [-c FILE | --socket PATH]\n"
    "\n"
    "End the matching sessions (several selectors: all must match).  The log\n"
    "and the audit trail record who kicked and why.  For root and members of\n"
    "admin_group.\n";

static const char reload_help[] =
    "usage: vmgate reload [-c FILE | --socket PATH]\n"
    "\n"
    "Re-read the config of the running vmgate (the same as SIGHUP): VMs added get\n"
    "their listeners, removed ones lose theirs and their sessions end, changed ACLs\n"
    "and policies apply to the next login; sessions of unchanged VMs go on.  On an\n"
    "error the old config stays in force and the answer names FILE:LINE (exit\n"
    "status 1).  For root and members of admin_group.\n";

static const char vm_help[] =
    "usage: vmgate vm VM status|shutdown|reset|reboot|pause|resume [-c FILE | --socket PATH]\n"
    "\n"
    "Power control of VM through the control socket, for any local user (also\n"
    "as `ssh host vmgate vm VM reset`); vmgate authorizes the caller's uid:\n"
    "  status    QEMU's run state (running, paused, shutdown, ...) and who is\n"
    "            connected; for the VM's users/groups and power_users/power_groups\n"
    "  shutdown  ACPI power button (system_powerdown)\n"
    "  reset     hard reset (system_reset)\n"
    "  reboot    the guest agent's guest-shutdown mode reboot (needs qga)\n"
    "  pause     stop the VM's CPUs;  resume  continue them\n"
    "The actions need power_users/power_groups.\n"
    "Exit status: 0 done, 1 refused (the message names the missing permission)\n"
    "or failed, 2 usage, 3 the VM cannot be reached (not running, no qmp or qga\n"
    "configured).\n";

/* The head of the last "error ..." reply, for ctl_vm_cmd's exit status. */
static char g_last_error[600];

/* A connection to the control socket at path, or -1 (with report, the
 * reason on stderr). */
static int ctl_open(const char *path, bool report)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path) {
        if (report)
            fprintf(stderr, "vmgate: %s: path too long\n", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        if (report)
            fprintf(stderr, "vmgate: cannot reach the control socket %s: %s%s\n", path,
                    strerror(e), e == ENOENT || e == ECONNREFUSED
                                     ? " (is vmgate running with this control = ?)" : "");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Send req (a line with its '\n') on fd (closed here); print the body; 0
 * ok, 1 error (message on stderr). */
static int exchange(int fd, const char *req)
{
    g_last_error[0] = '\0';
    size_t len = strlen(req);
    for (size_t off = 0; off < len;) {
        ssize_t k = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (k <= 0) {
            fprintf(stderr, "vmgate: control socket: %s\n", strerror(errno));
            close(fd);
            return 1;
        }
        off += (size_t)k;
    }
    char *buf = malloc(REPLY_MAX + 1);
    size_t n = 0;
    if (!buf) {
        close(fd);
        return 1;
    }
    for (;;) {
        ssize_t k = recv(fd, buf + n, REPLY_MAX - n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0 || (n += (size_t)k) == REPLY_MAX)
            break;
    }
    close(fd);
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    int rc = 1;
    if (!nl) {
        fprintf(stderr, "vmgate: the control socket sent no answer\n");
    } else if (strncmp(buf, "ok\n", 3) == 0) {
        fputs(nl + 1, stdout);
        rc = 0;
    } else if (strncmp(buf, "error ", 6) == 0) {
        *nl = '\0';
        fprintf(stderr, "vmgate: %s\n", buf + 6);
        snprintf(g_last_error, sizeof g_last_error, "%s", buf + 6);
    } else {
        fprintf(stderr, "vmgate: unexpected answer from the control socket\n");
    }
    free(buf);
    return rc;
}

static int transact(const char *path, const char *req)
{
    int fd = ctl_open(path, true);
    return fd < 0 ? 1 : exchange(fd, req);
}

/* The socket path: --socket, or `control` from the config. */
static int socket_path(const char *sock, const char *file, char *out, size_t cap)
{
    if (sock) {
        snprintf(out, cap, "%s", sock);
        return 0;
    }
    struct cfg cfg;
    char err[1024];
    if (cfg_load(file, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "vmgate: %s\n", err);
        return -1;
    }
    if (!cfg.control[0]) {
        fprintf(stderr, "vmgate: %s: control is empty: this vmgate has no control socket\n",
                cfg.file);
        cfg_free(&cfg);
        return -1;
    }
    snprintf(out, cap, "%s", cfg.control);
    cfg_free(&cfg);
    return 0;
}

/* argv[i] is an option that takes a value: *val = it.  -1 if missing. */
static int optval(int argc, char **argv, int *i, const char **val)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "vmgate %s: %s needs a value\n", argv[0], argv[*i]);
        return -1;
    }
    *val = argv[++*i];
    return 0;
}

/* The options every control command takes: -c/--config FILE, --socket PATH
 * and -h/--help (help printed).  Returns OPT_TAKEN (argv[*i] was one of
 * them; *i is past its value), OPT_OTHER (it is not), OPT_HELP (exit 0) or
 * OPT_BAD (a value is missing: exit 2). */
enum { OPT_OTHER, OPT_TAKEN, OPT_HELP, OPT_BAD };
static int common_opt(int argc, char **argv, int *i, const char **file, const char **sock,
                      const char *help)
{
    const char **dst = NULL;
    if (strcmp(argv[*i], "-c") == 0 || strcmp(argv[*i], "--config") == 0)
        dst = file;
    else if (strcmp(argv[*i], "--socket") == 0)
        dst = sock;
    else if (strcmp(argv[*i], "-h") == 0 || strcmp(argv[*i], "--help") == 0) {
        fputs(help, stdout);
        return OPT_HELP;
    } else
        return OPT_OTHER;
    return optval(argc, argv, i, dst) ? OPT_BAD : OPT_TAKEN;
}

/* Send the request line req (without its '\n') to the control socket named
 * by sock or file's `control`: 0 ok, 1 error (said on stderr). */
static int send_req(const char *sock, const char *file, const char *req)
{
    char path[256], line[CTL_REQ_MAX + 1];
    if (socket_path(sock, file, path, sizeof path) != 0)
        return 1;
    snprintf(line, sizeof line, "%s\n", req);
    return transact(path, line);
}

int ctl_status_cmd(int argc, char **argv)
{
    const char *file = CFG_DEFAULT_FILE, *sock = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        int o = common_opt(argc, argv, &i, &file, &sock, status_help);
        if (o != OPT_OTHER) {
            if (o == OPT_TAKEN)
                continue;
            return o == OPT_HELP ? 0 : 2;
        }
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else {
            fprintf(stderr, "vmgate status: unknown argument '%s'\n%s", argv[i], status_help);
            return 2;
        }
    }
    char req[CTL_REQ_MAX];
    snprintf(req, sizeof req, "%s status format=%s", CTL_VERSION, json ? "json" : "text");
    return send_req(sock, file, req);
}

int ctl_kick_cmd(int argc, char **argv)
{
    const char *file = CFG_DEFAULT_FILE, *sock = NULL, *id = NULL, *user = NULL, *vm = NULL,
               *reason = NULL;
    for (int i = 1; i < argc; i++) {
        int o = common_opt(argc, argv, &i, &file, &sock, kick_help);
        if (o != OPT_OTHER) {
            if (o == OPT_TAKEN)
                continue;
            return o == OPT_HELP ? 0 : 2;
        }
        const char **dst = NULL;
        if (strcmp(argv[i], "--user") == 0)
            dst = &user;
        else if (strcmp(argv[i], "--vm") == 0)
            dst = &vm;
        else if (strcmp(argv[i], "--reason") == 0)
            dst = &reason;
        else if (argv[i][0] != '-' && !id) {
            id = argv[i];
            continue;
        } else {
            fprintf(stderr, "vmgate kick: unknown argument '%s'\n%s", argv[i], kick_help);
            return 2;
        }
        if (optval(argc, argv, &i, dst))
            return 2;
    }
    if (!id && !user && !vm) {
        fprintf(stderr, "vmgate kick: say which sessions: ID, --user USER or --vm VM\n%s",
                kick_help);
        return 2;
    }
    char req[CTL_REQ_MAX];
    snprintf(req, sizeof req, "%s kick", CTL_VERSION);
    if ((id && ctl_append_arg(req, sizeof req, "id", id)) ||
        (user && ctl_append_arg(req, sizeof req, "user", user)) ||
        (vm && ctl_append_arg(req, sizeof req, "vm", vm)) ||
        (reason && ctl_append_arg(req, sizeof req, "reason", reason))) {
        fprintf(stderr, "vmgate kick: arguments too long\n");
        return 2;
    }
    return send_req(sock, file, req);
}

int ctl_reload_cmd(int argc, char **argv)
{
    const char *file = CFG_DEFAULT_FILE, *sock = NULL;
    for (int i = 1; i < argc; i++) {
        int o = common_opt(argc, argv, &i, &file, &sock, reload_help);
        if (o == OPT_TAKEN)
            continue;
        if (o == OPT_OTHER)
            fprintf(stderr, "vmgate reload: unknown argument '%s'\n%s", argv[i], reload_help);
        return o == OPT_HELP ? 0 : 2;
    }
    char req[CTL_REQ_MAX];
    snprintf(req, sizeof req, "%s reload", CTL_VERSION);
    return send_req(sock, file, req);
}

int ctl_vm_cmd(int argc, char **argv)
{
    const char *file = CFG_DEFAULT_FILE, *sock = NULL, *words[2] = { NULL, NULL };
    int nw = 0;
    for (int i = 1; i < argc; i++) {
        int o = common_opt(argc, argv, &i, &file, &sock, vm_help);
        if (o != OPT_OTHER) {
            if (o == OPT_TAKEN)
                continue;
            return o == OPT_HELP ? 0 : 2;
        }
        if (argv[i][0] != '-' && nw < 2) {
            words[nw++] = argv[i];
        } else {
            fprintf(stderr, "vmgate vm: unknown argument '%s'\n%s", argv[i], vm_help);
            return 2;
        }
    }
    static const char *const actions[] = { "status", "shutdown", "reset", "reboot", "pause",
                                            "resume" };
    bool known = false;
    for (size_t i = 0; nw == 2 && i < sizeof actions / sizeof actions[0]; i++)
        known |= strcmp(words[1], actions[i]) == 0;
    if (!known) {
        if (nw < 2)
            fprintf(stderr, "vmgate vm: say which VM and what to do\n%s", vm_help);
        else
            fprintf(stderr, "vmgate vm: unknown action '%s'\n%s", words[1], vm_help);
        return 2;
    }
    char req[CTL_REQ_MAX];
    snprintf(req, sizeof req, "%s vm", CTL_VERSION);
    if (ctl_append_arg(req, sizeof req, "name", words[0]) ||
        ctl_append_arg(req, sizeof req, "action", words[1])) {
        fprintf(stderr, "vmgate vm: arguments too long\n");
        return 2;
    }
    if (send_req(sock, file, req) == 0)
        return 0;
    if (strncmp(g_last_error, "unavailable:", 12) == 0)
        return 3;
    if (strncmp(g_last_error, "usage:", 6) == 0)
        return 2;
    return 1;
}

/* fw_ban_note_fn (firewall/firewall.h): `vmgate firewall ban|unban` tells
 * the running vmgate, which writes the audit event (by "admin") and counts
 * the ban.  No vmgate (or no control socket): a note, the exit status
 * stays the firewall command's. */
void ctl_note_ban(const char *cfgpath, bool banned, const char *key, uint64_t until_ms)
{
    struct cfg cfg;
    char err[1024], path[256], req[CTL_REQ_MAX], ms[24];
    if (cfg_load(cfgpath, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "vmgate firewall: note: %s: no running vmgate was told (not in its "
                "audit trail or metrics)\n", err);
        return;
    }
    snprintf(path, sizeof path, "%s", cfg.control);
    cfg_free(&cfg);
    if (!path[0])
        return;
    snprintf(req, sizeof req, "%s %s", CTL_VERSION, banned ? "ban" : "unban");
    snprintf(ms, sizeof ms, "%llu", (unsigned long long)until_ms);
    if (ctl_append_arg(req, sizeof req, "key", key) ||
        (banned && ctl_append_arg(req, sizeof req, "until", ms)))
        return;
    int fd = ctl_open(path, false);
    if (fd < 0) {
        fprintf(stderr, "vmgate firewall: note: no vmgate answers on %s: the %s is not in its "
                "audit trail or metrics\n", path, banned ? "ban" : "unban");
        return;
    }
    strcat(req, "\n");
    if (exchange(fd, req) != 0)
        fprintf(stderr, "vmgate firewall: note: the running vmgate did not take the %s "
                "(not in its audit trail)\n", banned ? "ban" : "unban");
}
