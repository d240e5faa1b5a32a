/* gateway/main.c — the vmgate command: a table of subcommands, each a
 * function in the folder that owns the job (wireguard-tools' wg.c style). */
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "certs/certs.h"
#include "common/config.h"
#include "firewall/firewall.h"
#include "gateway/console.h"
#include "gateway/control.h"
#include "gateway/gateway.h"

#define VMGATE_VERSION "0.1.0"

static const char usage_text[] =
    "usage: vmgate COMMAND [ARGS]\n"
    "\n"
    "An authenticated TLS gateway for the VNC consoles of QEMU virtual machines.\n"
    "\n"
    "commands:\n"
    "  run [-c FILE] [-v]         run the gateway in the foreground (logs to stderr)\n"
    "  check [-c FILE]            validate the config and print the effective routes\n"
    "  certs init --dir DIR [--ca-dir CADIR] [--name NAME,...] [--days N] [--force]\n"
    "                             create a name-constrained CA and a server certificate\n"
    "  certs show --dir DIR | -c FILE\n"
    "                             print the server certificate's names and fingerprint\n"
    "  passwd FILE USER           set USER's password in a vmgate password file\n"
    "  console [-c FILE | --socket-dir DIR] VM\n"
    "                             join stdin/stdout to VM's console socket (RFB, by your uid)\n"
    "  firewall apply|remove|status|show [-c FILE]\n"
    "  firewall allow|deny CIDR   change the allowlist for the raw console ports\n"
    "  firewall ban|unban ADDR [--for DURATION]\n"
    "  status [--json] [-c FILE | --socket PATH]\n"
    "                             live sessions and VMs (root, admin_group)\n"
    "  kick ID|--user U|--vm V [--reason TEXT] [-c FILE | --socket PATH]\n"
    "                             end sessions (root, admin_group)\n"
    "  reload [-c FILE | --socket PATH]\n"
    "                             re-read the config of the running vmgate (root, admin_group)\n"
    "  vm VM status|shutdown|reset|reboot|pause|resume [-c FILE | --socket PATH]\n"
    "                             power control (by your uid: power_users/power_groups)\n"
    "  help [COMMAND]             show this text, or a command's help\n"
    "  version                    print the version\n"
    "\n"
    "The default config file is " CFG_DEFAULT_FILE ". See vmgate(8) and README.md.\n";

static const char run_help[] =
    "usage: vmgate run [-c FILE] [-v]\n"
    "\n"
    "Run the gateway in the foreground.  Started as root it binds its ports, loads\n"
    "the key, starts the auth helper (which keeps root for PAM), applies the\n"
    "[firewall] policy, then runs as the configured `user`.  Started as an ordinary\n"
    "user it runs as that user.  SIGTERM/SIGINT stop it cleanly; SIGHUP (or\n"
    "`vmgate reload`) re-reads the config and the TLS certificate and key (read\n"
    "by the root auth helper); see vmgate(8), RELOAD.\n"
    "\n"
    "  -c FILE   config file (default " CFG_DEFAULT_FILE ")\n"
    "  -v        debug logging\n";

static const char check_help[] =
    "usage: vmgate check [-c FILE]\n"
    "\n"
    "Validate the config file: every error is printed as FILE:LINE: message and\n"
    "the exit status is 1.  On success the effective settings and every VM's\n"
    "route (listener -> backend, who may open it, clipboard policy) are printed.\n";

/* Parse "[-c FILE] [-v]" for run and check.  Returns 0, 1 for help, -1 on a
 * usage error. */
static int parse_common(int argc, char **argv, const char **file, int *verbose)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "vmgate %s: -c needs a file\n", argv[0]);
                return -1;
            }
            *file = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            *file = argv[i] + 9;
        } else if (verbose && (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0)) {
            *verbose = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            return 1;
        } else {
            fprintf(stderr, "vmgate %s: unknown argument '%s' (see vmgate %s --help)\n",
                    argv[0], argv[i], argv[0]);
            return -1;
        }
    }
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    const char *file = CFG_DEFAULT_FILE;
    int verbose = 0;
    int r = parse_common(argc, argv, &file, &verbose);
    if (r) {
        fputs(run_help, r > 0 ? stdout : stderr);
        return r > 0 ? 0 : 2;
    }
    return gateway_run(file, verbose);
}

static int cmd_check(int argc, char **argv)
{
    const char *file = CFG_DEFAULT_FILE;
    int r = parse_common(argc, argv, &file, NULL);
    if (r) {
        fputs(check_help, r > 0 ? stdout : stderr);
        return r > 0 ? 0 : 2;
    }
    return gateway_check(file);
}

static int cmd_certs(int argc, char **argv)
{
    return certs_cmd(argc - 1, argv + 1);
}

static int cmd_passwd(int argc, char **argv)
{
    return auth_passwd_cmd(argc, argv);
}

static int cmd_firewall(int argc, char **argv)
{
    fw_set_ban_note(ctl_note_ban);
    return fw_cmd(argc - 1, argv + 1);
}

static int cmd_console(int argc, char **argv)
{
    return console_cmd(argc, argv);
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("vmgate %s\n", VMGATE_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv);

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
} commands[] = {
    { "run", cmd_run },           { "check", cmd_check },   { "certs", cmd_certs },
    { "passwd", cmd_passwd },     { "firewall", cmd_firewall }, { "version", cmd_version },
    { "console", cmd_console },   { "status", ctl_status_cmd }, { "kick", ctl_kick_cmd },
    { "reload", ctl_reload_cmd },
    { "vm", ctl_vm_cmd },
    { "help", cmd_help },
};

static int cmd_help(int argc, char **argv)
{
    if (argc >= 2) {
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (strcmp(argv[1], commands[i].name) == 0 && commands[i].fn != cmd_help) {
                char *hargv[] = { argv[1], (char *)"--help", NULL };
                return commands[i].fn(2, hargv);
            }
    }
    fputs(usage_text, stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
        return cmd_version(0, NULL);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "vmgate: unknown command '%s'\n\n%s", argv[1], usage_text);
    return 2;
}
