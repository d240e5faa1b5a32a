/* tests/unit/test_config.c — the config parser: the DESIGN.md example,
 * defaults, every error path (FILE:LINE and message), and the value parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/config.h"

/* The example of DESIGN.md, byte for byte. */
static const char example_conf[] =
    "[gateway]\n"
    "address = 0.0.0.0            ; listen address for every VM port; \"::\" = dual stack\n"
    "cert = /etc/vmgate/tls/server.crt\n"
    "key  = /etc/vmgate/tls/server.key\n"
    "auth = pam                   ; pam | file\n"
    "pam_service = vmgate         ; with auth = pam\n"
    "passwd_file = /etc/vmgate/passwd   ; with auth = file\n"
    "user = vmgate                ; unprivileged user for the network-facing process (when started as root)\n"
    "login_timeout = 30s          ; the whole pre-auth phase, per connection\n"
    "clipboard = both             ; default for every VM (see [vm])\n"
    "clipboard_max = 256K\n"
    "\n"
    "[firewall]\n"
    "protect = 5900-6100          ; raw console range: loopback only, unless allowed below\n"
    "allow =                      ; CIDRs that may still reach the raw range (space separated)\n"
    "ban_after = 5                ; failed logins from one source within ban_window ...\n"
    "ban_window = 10m\n"
    "ban_time = 15m               ; ... put it in the kernel ban set this long (doubling for repeat offenders)\n"
    "\n"
    "[vm dev0]\n"
    "vnc = unix:/run/qemu/dev0.vnc    ; or 127.0.0.1:5902, or qmp:/run/qemu/dev0.qmp\n"
    "vnc_port = 5902                    ; vmgate's own VeNCrypt/TLS listener for this VM\n"
    "spice = unix:/run/qemu/dev0.spice\n"
    "spice_port = 5932                  ; vmgate's SPICE/TLS listener for this VM\n"
    "qmp = /run/qemu/dev0.qmp         ; QEMU monitor socket, when vmgate may use it\n"
    "users = alice bob                  ; who may open this VM (empty and no groups = nobody)\n"
    "groups = kvm\n"
    "clipboard = both                   ; both | to-vm | from-vm | none\n"
    "clipboard_max = 256K\n";

#define MINI_VM "[vm a]\nvnc = 127.0.0.1:5901\nvnc_port = 6001\n"

static int parse_str(const char *text, struct cfg *c, char *err, size_t errlen)
{
    return cfg_parse("t.conf", text, strlen(text), c, err, errlen);
}

static void must_parse(const char *text, struct cfg *c)
{
    char err[512] = "";
    if (parse_str(text, c, err, sizeof err) != 0)
        fail_msg("unexpected parse error: %s", err);
}

/* Parsing text must fail with "t.conf:LINE: ..." containing want. */
static void expect_err_at(const char *text, size_t len, int line, const char *want)
{
    struct cfg c;
    char err[512] = "";
    char prefix[32];
    memset(&c, 0x5a, sizeof c);
    if (cfg_parse("t.conf", text, len, &c, err, sizeof err) != -1)
        fail_msg("parse succeeded, expected line %d: %s", line, want);
    snprintf(prefix, sizeof prefix, "t.conf:%d: ", line);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, want))
        fail_msg("got   \"%s\"\nwant  \"%s...%s\"", err, prefix, want);
    /* *out is left empty */
    struct cfg zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&c, &zero, sizeof c);
}

static void expect_err(const char *text, int line, const char *want)
{
    expect_err_at(text, strlen(text), line, want);
}

/* ---- the example and defaults ---- */

static void test_example(void **state)
{
    struct cfg c;
    must_parse(example_conf, &c);
    assert_string_equal(c.file, "t.conf");
    assert_string_equal(c.address, "0.0.0.0");
    assert_string_equal(c.cert, "/etc/vmgate/tls/server.crt");
    assert_string_equal(c.key, "/etc/vmgate/tls/server.key");
    assert_int_equal(c.auth, CFG_AUTH_PAM);
    assert_string_equal(c.pam_service, "vmgate");
    assert_string_equal(c.passwd_file, "/etc/vmgate/passwd");
    assert_string_equal(c.user, "vmgate");
    assert_int_equal(c.login_timeout_ms, 30000);
    assert_int_equal(c.clipboard, CFG_CLIP_BOTH);
    assert_int_equal(c.clipboard_max, 256 * 1024);
    assert_true(c.fw.present);
    assert_int_equal(c.fw.protect_lo, 5900);
    assert_int_equal(c.fw.protect_hi, 6100);
    assert_int_equal(c.fw.n_allow, 0);
    assert_int_equal(c.fw.ban_after, 5);
    assert_int_equal(c.fw.ban_window_ms, 600000);
    assert_int_equal(c.fw.ban_time_ms, 900000);
    assert_int_equal(c.n_vms, 1);
    const struct cfg_vm *vm = cfg_find_vm(&c, "dev0");
    assert_non_null(vm);
    assert_int_equal(vm->line, 20);
    assert_int_equal(vm->vnc.kind, CFG_BE_UNIX);
    assert_string_equal(vm->vnc.path, "/run/qemu/dev0.vnc");
    assert_int_equal(vm->vnc_port, 5902);
    assert_int_equal(vm->spice.kind, CFG_BE_UNIX);
    assert_string_equal(vm->spice.path, "/run/qemu/dev0.spice");
    assert_int_equal(vm->spice_port, 5932);
    assert_string_equal(vm->qmp, "/run/qemu/dev0.qmp");
    assert_int_equal(vm->n_users, 2);
    assert_string_equal(vm->users[0], "alice");
    assert_string_equal(vm->users[1], "bob");
    assert_int_equal(vm->n_groups, 1);
    assert_string_equal(vm->groups[0], "kvm");
    assert_int_equal(vm->clipboard, CFG_CLIP_BOTH);
    assert_int_equal(vm->clipboard_max, 262144);
    assert_null(cfg_find_vm(&c, "dev1"));
    assert_null(cfg_find_vm(&c, NULL));
    cfg_free(&c);
}

static void test_defaults(void **state)
{
    struct cfg c;
    must_parse("", &c);
    assert_string_equal(c.address, "0.0.0.0");
    assert_string_equal(c.cert, "/etc/vmgate/tls/server.crt");
    assert_string_equal(c.key, "/etc/vmgate/tls/server.key");
    assert_int_equal(c.auth, CFG_AUTH_PAM);
    assert_string_equal(c.pam_service, "vmgate");
    assert_string_equal(c.passwd_file, "/etc/vmgate/passwd");
    assert_string_equal(c.user, "vmgate");
    assert_int_equal(c.login_timeout_ms, 30000);
    assert_int_equal(c.first_byte_timeout_ms, 5000);
    assert_int_equal(c.clipboard, CFG_CLIP_BOTH);
    assert_int_equal(c.clipboard_max, 262144);
    assert_int_equal(c.max_unauth, 64);
    assert_int_equal(c.max_unauth_per_source, 8);
    assert_int_equal(c.fail_delay_ms, 2000);
    assert_int_equal(c.auth_workers, 4);
    assert_int_equal(c.processes, 1);
    assert_false(c.fw.present);
    assert_int_equal(c.fw.protect_lo, 5900);
    assert_int_equal(c.fw.protect_hi, 6100);
    assert_int_equal(c.fw.n_allow, 0);
    assert_null(c.fw.allow);
    assert_int_equal(c.fw.ban_after, 5);
    assert_int_equal(c.fw.ban_window_ms, 600000);
    assert_int_equal(c.fw.ban_time_ms, 900000);
    assert_int_equal(c.n_vms, 0);
    cfg_free(&c);

    /* an empty [firewall] section: present, defaults filled */
    must_parse("[firewall]\n" MINI_VM, &c);
    assert_true(c.fw.present);
    assert_int_equal(c.fw.ban_after, 5);
    const struct cfg_vm *vm = cfg_find_vm(&c, "a");
    assert_non_null(vm);
    assert_int_equal(vm->n_users, 0);
    assert_int_equal(vm->n_groups, 0);
    assert_string_equal(vm->qmp, "");
    assert_int_equal(vm->spice.kind, CFG_BE_NONE);
    assert_int_equal(vm->spice_port, 0);
    cfg_free(&c);
}

/* VM clipboard defaults come from [gateway], even when it comes later. */
static void test_vm_defaults_from_later_gateway(void **state)
{
    struct cfg c;
    must_parse(MINI_VM
               "[vm b]\nspice = localhost:5930\nspice_port = 6002\nclipboard = none\n"
               "[gateway]\nclipboard = to-vm\nclipboard_max = 1M\n", &c);
    assert_int_equal(c.n_vms, 2);
    assert_int_equal(c.vms[0].clipboard, CFG_CLIP_TO_VM);
    assert_int_equal(c.vms[0].clipboard_max, 1024 * 1024);
    assert_int_equal(c.vms[1].clipboard, CFG_CLIP_NONE);
    assert_int_equal(c.vms[1].clipboard_max, 1024 * 1024);
    cfg_free(&c);
}

static void test_all_gateway_keys(void **state)
{
    struct cfg c;
    must_parse("[gateway]\n"
               "address = ::\n"
               "auth = file\n"
               "passwd_file = /srv/pw\n"
               "pam_service = other-svc\n"
               "user =\n"
               "login_timeout = 1h\n"
               "first_byte_timeout = 1h\n"
               "clipboard = from-vm\n"
               "clipboard_max = 1\n"
               "max_unauth = 100000\n"
               "max_unauth_per_source = 100000\n"
               "fail_delay = 0\n"
               "auth_workers = 64\n"
               "processes = 64\n", &c);
    assert_string_equal(c.address, "::");
    assert_int_equal(c.auth, CFG_AUTH_FILE);
    assert_string_equal(c.passwd_file, "/srv/pw");
    assert_string_equal(c.pam_service, "other-svc");
    assert_string_equal(c.user, "");
    assert_int_equal(c.login_timeout_ms, 3600000);
    assert_int_equal(c.first_byte_timeout_ms, 3600000);
    assert_int_equal(c.clipboard, CFG_CLIP_FROM_VM);
    assert_int_equal(c.clipboard_max, 1);
    assert_int_equal(c.max_unauth, 100000);
    assert_int_equal(c.max_unauth_per_source, 100000);
    assert_int_equal(c.fail_delay_ms, 0);
    assert_int_equal(c.auth_workers, 64);
    assert_int_equal(c.processes, 64);
    assert_int_equal(cfg_processes(&c), 64);
    cfg_free(&c);
    /* auto: one per online CPU */
    must_parse("[gateway]\nprocesses = auto\n", &c);
    assert_int_equal(c.processes, 0);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(cfg_processes(&c), n < 1 ? 1 : n > 64 ? 64 : n);
    cfg_free(&c);
    /* sandbox: on unless turned off */
    must_parse("[gateway]\n", &c);
    assert_true(c.sandbox);
    cfg_free(&c);
    must_parse("[gateway]\nsandbox = off\n", &c);
    assert_false(c.sandbox);
    cfg_free(&c);
    must_parse("[gateway]\nsandbox = on\n", &c);
    assert_true(c.sandbox);
    cfg_free(&c);
}

/* ---- lexical rules ---- */

static void test_inline_comments(void **state)
{
    struct cfg c;
    must_parse("  # indented comment\n"
               "\t; another\n"
               "[gateway]   ; header comment\n"
               "cert = /a;b#c.crt\t# tab before comment\n"
               "key=/k.key;not-a-comment\n", &c);
    assert_string_equal(c.cert, "/a;b#c.crt");
    assert_string_equal(c.key, "/k.key;not-a-comment");
    cfg_free(&c);
    expect_err("[gateway]\npam_service = svc#x\n", 2, "bad pam_service \"svc#x\"");

    /* a value that is only a comment is empty */
    must_parse("[firewall]\nallow =   # nothing\n[vm a]\nvnc = unix:/x\nvnc_port = 1\n"
               "users = ; nobody\n", &c);
    assert_int_equal(c.fw.n_allow, 0);
    assert_int_equal(c.vms[0].n_users, 0);
    cfg_free(&c);
    expect_err("[gateway]\naddress = ; nothing\n", 2, "empty value for \"address\"");
}

static void test_crlf_bom_and_no_final_newline(void **state)
{
    struct cfg c;
    must_parse("\xEF\xBB\xBF[gateway]\r\nauth = file\r\n\r\n[vm x]\r\nvnc = unix:/v\r\n"
               "vnc_port = 7000", &c);
    assert_int_equal(c.auth, CFG_AUTH_FILE);
    assert_int_equal(c.vms[0].vnc_port, 7000);
    assert_string_equal(c.vms[0].vnc.path, "/v");
    cfg_free(&c);
}

static void test_long_line(void **state)
{
    size_t n = 3 * CFG_MAX_LINE;
    char *text = malloc(n);
    assert_non_null(text);
    /* exactly CFG_MAX_LINE bytes: fine */
    int off = snprintf(text, n, "[gateway]\n# ");
    memset(text + off, 'x', CFG_MAX_LINE - 2);
    off += CFG_MAX_LINE - 2;
    off += snprintf(text + off, n - (size_t)off, "\nauth = file\n");
    struct cfg c;
    char err[256];
    assert_int_equal(cfg_parse("t.conf", text, (size_t)off, &c, err, sizeof err), 0);
    assert_int_equal(c.auth, CFG_AUTH_FILE);
    cfg_free(&c);

    /* one byte more on line 3: an error, not truncated */
    off = snprintf(text, n, "[gateway]\nauth = file\ncert = /");
    memset(text + off, 'y', CFG_MAX_LINE - 7);
    off += CFG_MAX_LINE - 7;
    off += snprintf(text + off, n - (size_t)off, "\nauth = pam\n");
    expect_err_at(text, (size_t)off, 3, "line longer than 4096 bytes");

    /* an over-long last line without newline */
    off = snprintf(text, n, "[gateway]\n");
    memset(text + off, ';', CFG_MAX_LINE + 1);
    off += CFG_MAX_LINE + 1;
    expect_err_at(text, (size_t)off, 2, "line longer than 4096 bytes");
    free(text);
}

static void test_nul_and_control_bytes(void **state)
{
    static const char nul[] = "[gateway]\nauth = pam\ncert = /a\0b\n";
    expect_err_at(nul, sizeof nul - 1, 3, "NUL byte");
    static const char nul_comment[] = "[gateway]\n# \0\n";
    expect_err_at(nul_comment, sizeof nul_comment - 1, 2, "NUL byte");
    expect_err("[gateway]\ncert = /a\x01" "b\n", 2, "control character 0x01");
    expect_err("[gateway]\ncert = /a\rb\n", 2, "control character 0x0d");
}

static void test_structure_errors(void **state)
{
    expect_err("auth = pam\n", 1, "key \"auth\" outside any section");
    expect_err("\n# c\n[gateway]\njust words\n", 4, "expected \"key = value\"");
    expect_err("[gateway]\n= x\n", 2, "missing key before \"=\"");
    expect_err("[gateway]\nAuth = pam\n", 2, "bad key \"Auth\"");
    expect_err("[gateway]\n[foo]\n", 2, "unknown section \"[foo]\"");
    expect_err("[Gateway]\n", 1, "unknown section \"[Gateway]\"");
    expect_err("[gateway\n", 1, "missing \"]\"");
    expect_err("[gateway] x\n", 1, "junk after section header");
    expect_err("[gateway]\n[firewall]\n[gateway]\n", 3,
               "duplicate section [gateway] (first on line 1)");
    expect_err("[firewall]\n\n[firewall]\n", 3, "duplicate section [firewall] (first on line 1)");
}

static void test_unknown_keys(void **state)
{
    expect_err("# comment\n[gateway]\naddress = 0.0.0.0\nauth = pam\n\n\nfoo = 1\n", 7,
               "unknown key \"foo\" in [gateway]");
    /* the exact text of the whole message */
    struct cfg c;
    char err[256];
    assert_int_equal(cfg_parse("vmgate.conf", "[gateway]\n\n\n\n\n\nfoo = 1\n", 23, &c, err,
                               sizeof err), -1);
    assert_string_equal(err, "vmgate.conf:7: unknown key \"foo\" in [gateway]");
    expect_err("[firewall]\nban = 1\n", 2, "unknown key \"ban\" in [firewall]");
    expect_err("[vm dev0]\nvnc = unix:/x\nvnc_port = 1\nuser = a\n", 4,
               "unknown key \"user\" in [vm dev0]");
}

static void test_duplicate_key(void **state)
{
    struct cfg c;
    char err[256];
    const char *t = "[vm dev0]\nvnc = unix:/x\n\n\nvnc_port = 5902\nvnc_port = 5903\n";
    assert_int_equal(parse_str(t, &c, err, sizeof err), -1);
    assert_string_equal(err, "t.conf:6: duplicate key \"vnc_port\" (first set on line 5)");
    expect_err("[gateway]\nuser =\nuser = x\n", 3, "duplicate key \"user\" (first set on line 2)");
    /* the same key in two VMs is fine; in two [gateway]s it cannot happen */
    must_parse("[vm a]\nvnc = unix:/a\nvnc_port = 1\n[vm b]\nvnc = unix:/b\nvnc_port = 2\n", &c);
    cfg_free(&c);
}

static void test_vm_names(void **state)
{
    struct cfg c;
    char name63[64], text[256];
    memset(name63, 'n', 63);
    name63[63] = '\0';
    snprintf(text, sizeof text, "[ vm\t%s ]\nspice = unix:/s\nspice_port = 9\n", name63);
    must_parse(text, &c);
    assert_non_null(cfg_find_vm(&c, name63));
    cfg_free(&c);
    must_parse("[vm A-z_0.9]\nvnc = unix:/s\nvnc_port = 9\n", &c);
    assert_string_equal(c.vms[0].name, "A-z_0.9");
    cfg_free(&c);

    snprintf(text, sizeof text, "[vm %sn]\n", name63);
    expect_err(text, 1, "bad vm name");
    expect_err("[vm a/b]\n", 1, "bad vm name \"a/b\"");
    expect_err("[vm a b]\n", 1, "bad vm name \"a b\"");
    expect_err("[vm]\n", 1, "[vm] needs a name");
    expect_err("[vm   ]\n", 1, "[vm] needs a name");
    expect_err("[vmdev0]\n", 1, "unknown section \"[vmdev0]\"");
    expect_err(MINI_VM "\n[vm a]\n", 5, "duplicate vm \"a\" (first defined on line 1)");
}

static void test_vm_required_keys(void **state)
{
    expect_err("[gateway]\n\n[vm dev0]\nqmp = /q\nusers = alice\n", 3,
               "vm dev0: needs at least one of vnc, spice");
    expect_err(MINI_VM "[vm b]\nvnc_port = 5\nspice = unix:/s\nspice_port = 6\n", 4,
               "vm b: vnc_port is set but vnc is missing");
    expect_err("[vm c]\nspice = unix:/s\n", 1, "vm c: spice is set but spice_port is missing");
    expect_err("[vm c]\nvnc = unix:/v\nvnc_port = 5\nspice_port = 6\n", 1,
               "vm c: spice_port is set but spice is missing");
}

/* socket_dir: default /run/vmgate, "" = off, trailing slashes dropped,
 * vnc_port optional (the VM may be reachable only through the socket),
 * and never the directory (or an ancestor of it) of a VM's QEMU sockets. */
static void test_socket_dir(void **state)
{
    (void)state;
    struct cfg c;
    char p[CFG_PATH_MAX + 1];
    must_parse("[vm dev0]\nvnc = unix:/run/qemu/dev0.vnc\nusers = bob\n", &c);
    assert_string_equal(c.socket_dir, "/run/vmgate");
    assert_int_equal(c.vms[0].vnc_port, 0);
    assert_int_equal(cfg_socket_path(&c, "dev0", "vnc", p, sizeof p), 0);
    assert_string_equal(p, "/run/vmgate/dev0.vnc");
    assert_int_equal(cfg_socket_path(&c, "dev0", "vnc", p, 10), -1);
    cfg_free(&c);
    must_parse("[gateway]\nsocket_dir = /srv/gw//\n" MINI_VM, &c);
    assert_string_equal(c.socket_dir, "/srv/gw");
    cfg_free(&c);
    must_parse("[gateway]\nsocket_dir =\n" MINI_VM, &c);
    assert_string_equal(c.socket_dir, "");
    assert_int_equal(cfg_socket_path(&c, "a", "vnc", p, sizeof p), -1);
    cfg_free(&c);
    expect_err("[gateway]\nsocket_dir = run\n", 2, "bad socket_dir \"run\": path must be absolute");
    expect_err("[gateway]\nsocket_dir = /run/q\n[vm a]\nvnc = unix:/run/q/a.vnc\n", 4,
               "vm a: vnc socket /run/q/a.vnc is inside socket_dir /run/q");
    expect_err("[gateway]\nsocket_dir = /run\n[vm a]\nvnc = qmp:/run/q/a.qmp\n", 4,
               "vm a: vnc socket /run/q/a.qmp is inside socket_dir /run");
    expect_err("[vm a]\nvnc = 127.0.0.1:5901\nspice = unix:/run/vmgate/s\nspice_port = 9\n", 3,
               "vm a: spice socket /run/vmgate/s is inside socket_dir /run/vmgate");
    expect_err("[vm a]\nvnc = 127.0.0.1:5901\nqmp = /run/vmgate/x/a.qmp\n", 3,
               "vm a: qmp socket /run/vmgate/x/a.qmp is inside socket_dir /run/vmgate");
    /* a sibling directory with the same prefix is not inside */
    must_parse("[gateway]\nsocket_dir = /run/q\n[vm a]\nvnc = unix:/run/qemu/a.vnc\n", &c);
    cfg_free(&c);
    char big[400];
    snprintf(big, sizeof big, "[gateway]\nsocket_dir = /%0100d\n" MINI_VM, 0);
    expect_err(big, 2, "the socket of vm a would be longer than 107 bytes");
}

/* serial = unix:PATH: parsed, printed, checked against socket_dir; a VM
 * may have only a serial console. */
static void test_serial(void **state)
{
    (void)state;
    struct cfg c;
    must_parse("[vm s]\nserial = unix:/run/qemu/s.serial\nusers = bob\n", &c);
    assert_int_equal(c.vms[0].serial.kind, CFG_BE_UNIX);
    assert_string_equal(c.vms[0].serial.path, "/run/qemu/s.serial");
    assert_int_equal(c.vms[0].vnc.kind, CFG_BE_NONE);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cfg_print(&c, f);
    fclose(f);
    assert_non_null(strstr(text, "serial = unix:/run/qemu/s.serial\n"));
    assert_non_null(strstr(text, "vm s: serial unix /run/vmgate/s.serial -> unix:/run/qemu/s.serial"));
    free(text);
    cfg_free(&c);
    expect_err("[vm s]\nserial = 127.0.0.1:4555\n", 2, "serial must be unix:PATH");
    expect_err("[vm s]\nserial = qmp:/x\n", 2, "serial must be unix:PATH");
    expect_err("[vm s]\nserial = unix:\n", 2, "bad serial \"unix:\"");
    expect_err("[vm a]\nvnc = 127.0.0.1:5901\nserial = unix:/run/vmgate/a.serial\n", 3,
               "vm a: serial socket /run/vmgate/a.serial is inside socket_dir /run/vmgate");
}

static void test_port_conflicts(void **state)
{
    const char *t =
        "[gateway]\n"                               /* 1 */
        "\n"
        "[vm dev0]\n"                               /* 3 */
        "vnc = unix:/v0\n"
        "vnc_port = 5902\n"                         /* 5 */
        "spice = unix:/s0\n"
        "spice_port = 5932\n"                       /* 7 */
        "[vm dev1]\n"
        "vnc = unix:/v1\n"
        "vnc_port = 5903\n"                         /* 10 */
        "spice = unix:/s1\n"
        "spice_port = 5902\n";                      /* 12 */
    struct cfg c;
    char err[256];
    assert_int_equal(parse_str(t, &c, err, sizeof err), -1);
    assert_string_equal(err, "t.conf:12: spice_port 5902 already used by vm dev0 (line 5)");
    expect_err("[vm dev0]\nspice = unix:/s\nspice_port = 5932\nvnc = unix:/v\nvnc_port = 5932\n",
               5, "vnc_port 5932 already used by vm dev0 (line 3)");
    expect_err("[vm a]\nvnc = unix:/a\nvnc_port = 7\n[vm b]\nvnc = unix:/b\nvnc_port = 7\n", 6,
               "vnc_port 7 already used by vm a (line 3)");
}

/* web_port, novnc_dir, web_origins: defaults, values, conflicts with VM ports. */
static void test_web_keys(void **state)
{
    (void)state;
    struct cfg c;
    must_parse("[vm a]\nvnc = unix:/a\nvnc_port = 5900\n", &c);
    assert_int_equal(c.web_port, 0);
    assert_string_equal(c.novnc_dir, "/usr/share/novnc");
    assert_int_equal(c.n_web_origins, 0);
    cfg_free(&c);
    must_parse("[gateway]\nweb_port = 8443\nnovnc_dir = /srv/novnc\n"
               "web_origins = https://VMS.example.org http://[::1]:8080\n"
               "[vm a]\nvnc = unix:/a\n", &c);
    assert_int_equal(c.web_port, 8443);
    assert_string_equal(c.novnc_dir, "/srv/novnc");
    assert_int_equal(c.n_web_origins, 2);
    assert_string_equal(c.web_origins[0], "https://vms.example.org");
    assert_string_equal(c.web_origins[1], "http://[::1]:8080");
    cfg_free(&c);
    expect_err("[gateway]\nweb_port = 5902\n[vm a]\nvnc = unix:/a\nvnc_port = 5902\n", 5,
               "vnc_port 5902 already used by web_port (line 2)");
    expect_err("[vm a]\nvnc = unix:/a\nspice = unix:/s\nspice_port = 5932\n"
               "[gateway]\nweb_port = 5932\n", 6, "web_port 5932 already used by vm a (line 4)");
    expect_err("[gateway]\nweb_port = 0\n", 2, "bad web_port");
    /* no vnc_port and no web_port: still reachable through socket_dir */
    must_parse("[vm a]\nvnc = unix:/a\n", &c);
    cfg_free(&c);
    expect_err("[gateway]\nnovnc_dir = novnc\n", 2, "need an absolute path");
    expect_err("[gateway]\nweb_origins = https://a/b\n", 2, "origin");
    expect_err("[gateway]\nweb_origins = ftp://a\n", 2, "origin");
    expect_err("[gateway]\nweb_origins = https://\n", 2, "origin");
}

/* proxy_protocol: CIDRs, canonical form; cfg_proxy_source matches inside them only. */
static void test_proxy_protocol(void **state)
{
    (void)state;
    struct cfg c;
    must_parse("[vm a]\nvnc = unix:/a\n", &c);
    assert_int_equal(c.n_proxy_protocol, 0);
    assert_false(cfg_proxy_source(&c, "127.0.0.1"));
    cfg_free(&c);
    must_parse("[gateway]\nproxy_protocol = 127.0.0.2 10.1.2.3/8 2001:DB8::/32 ::ffff:192.0.2.9\n"
               "[vm a]\nvnc = unix:/a\n", &c);
    assert_int_equal(c.n_proxy_protocol, 4);
    assert_string_equal(c.proxy_protocol[1], "10.0.0.0/8");
    assert_string_equal(c.proxy_protocol[2], "2001:db8::/32");
    assert_string_equal(c.proxy_protocol[3], "192.0.2.9");
    assert_true(cfg_proxy_source(&c, "127.0.0.2"));
    assert_false(cfg_proxy_source(&c, "127.0.0.7"));
    assert_true(cfg_proxy_source(&c, "10.200.0.1"));
    assert_true(cfg_proxy_source(&c, "2001:db8:5::1"));
    assert_false(cfg_proxy_source(&c, "2001:db9::1"));
    assert_true(cfg_proxy_source(&c, "192.0.2.9"));
    assert_false(cfg_proxy_source(&c, "local"));
    assert_false(cfg_proxy_source(&c, ""));
    assert_false(cfg_proxy_source(&c, NULL));
    cfg_free(&c);
    expect_err("[gateway]\nproxy_protocol = haproxy.local\n", 2, "address");
    expect_err("[gateway]\nproxy_protocol = 10.0.0.0/33\n", 2, "address");
}

static void test_listen_port_values(void **state)
{
    expect_err("[vm a]\nvnc = unix:/a\nvnc_port = 0\n", 3, "bad vnc_port \"0\" (use 1..65535)");
    expect_err("[vm a]\nvnc = unix:/a\nvnc_port = 65536\n", 3, "bad vnc_port \"65536\"");
    expect_err("[vm a]\nvnc = unix:/a\nvnc_port = 59x\n", 3, "bad vnc_port \"59x\"");
    expect_err("[vm a]\nvnc = unix:/a\nvnc_port = -1\n", 3, "bad vnc_port \"-1\"");
    expect_err("[vm a]\nspice = unix:/a\nspice_port = 1 2\n", 3, "bad spice_port \"1 2\"");
    struct cfg c;
    must_parse("[vm a]\nvnc = unix:/a\nvnc_port = 65535\nspice = unix:/b\nspice_port = 00001\n",
               &c);
    assert_int_equal(c.vms[0].vnc_port, 65535);
    assert_int_equal(c.vms[0].spice_port, 1);
    cfg_free(&c);
}

static void test_backend_errors_in_config(void **state)
{
    expect_err("[vm a]\nvnc = tcp://host:1\nvnc_port = 1\n", 2, "bad vnc backend \"tcp://host:1\"");
    expect_err("[vm a]\nvnc = unix:run/x\nvnc_port = 1\n", 2, "path must be absolute");
    expect_err("[vm a]\nspice = qmp:/run/q\nspice_port = 1\n", 2, "spice cannot use qmp:");
    expect_err("[vm a]\nvnc = example.com:5900\nvnc_port = 1\n", 2,
               "host must be a numeric IPv4 address, localhost, or [IPv6]");
    expect_err("[vm a]\nvnc = ::1:5900\nvnc_port = 1\n", 2, "must be in brackets");
    expect_err("[vm a]\nvnc = unix:/v\nvnc_port = 1\nqmp = q.sock\n", 4,
               "bad qmp \"q.sock\": path must be absolute");
}

static void test_qmp_from_vnc(void **state)
{
    struct cfg c;
    must_parse("[vm a]\nvnc = qmp:/run/qemu/a.qmp\nvnc_port = 1\n"
               "[vm b]\nvnc = qmp:/run/b.qmp\nvnc_port = 2\nqmp = /run/b-other.qmp\n", &c);
    assert_int_equal(c.vms[0].vnc.kind, CFG_BE_QMP);
    assert_string_equal(c.vms[0].vnc.path, "/run/qemu/a.qmp");
    assert_string_equal(c.vms[0].qmp, "/run/qemu/a.qmp");
    assert_string_equal(c.vms[1].qmp, "/run/b-other.qmp");
    cfg_free(&c);
}

static void test_users_groups(void **state)
{
    struct cfg c;
    must_parse(MINI_VM "users = alice\tbob  alice carol@example.org\ngroups = kvm kvm wheel\n", &c);
    const struct cfg_vm *vm = &c.vms[0];
    assert_int_equal(vm->n_users, 3);
    assert_string_equal(vm->users[0], "alice");
    assert_string_equal(vm->users[1], "bob");
    assert_string_equal(vm->users[2], "carol@example.org");
    assert_int_equal(vm->n_groups, 2);
    assert_string_equal(vm->groups[0], "kvm");
    assert_string_equal(vm->groups[1], "wheel");
    cfg_free(&c);

    expect_err(MINI_VM "users = alice b:ob\n", 4, "bad user \"b:ob\" in users");
    expect_err(MINI_VM "groups = k*\n", 4, "bad group \"k*\" in groups");
    char text[600];
    char name[257];
    memset(name, 'u', 256);
    name[256] = '\0';
    snprintf(text, sizeof text, MINI_VM "users = %.255s\n", name);
    must_parse(text, &c);
    assert_int_equal(strlen(c.vms[0].users[0]), 255);
    cfg_free(&c);
    snprintf(text, sizeof text, MINI_VM "users = %s\n", name);
    expect_err(text, 4, "bad user \"uuuu");
}

static void test_clipboard_values(void **state)
{
    struct cfg c;
    must_parse(MINI_VM "clipboard = from-vm\nclipboard_max = 1M\n[gateway]\nclipboard = none\n", &c);
    assert_int_equal(c.clipboard, CFG_CLIP_NONE);
    assert_int_equal(c.vms[0].clipboard, CFG_CLIP_FROM_VM);
    assert_int_equal(c.vms[0].clipboard_max, 1 << 20);
    cfg_free(&c);
    expect_err("[gateway]\nclipboard = yes\n", 2,
               "bad clipboard \"yes\" (use both, to-vm, from-vm, none)");
    expect_err(MINI_VM "clipboard = Both\n", 4, "bad clipboard \"Both\"");
    expect_err("[gateway]\nclipboard_max = 0\n", 2, "clipboard_max 0 out of range (1..1M)");
    expect_err("[gateway]\nclipboard_max = 1025K\n", 2, "clipboard_max 1025K out of range");
    expect_err(MINI_VM "clipboard_max = 2M\n", 4, "clipboard_max 2M out of range (1..1M)");
    expect_err("[gateway]\nclipboard_max = 256KB\n", 2, "bad size \"256KB\" (use K, M, G)");
}

static char *print_to_string(const struct cfg *c);

/* qemu_consoles: per VM, block by default, only block/allow. */
static void test_qemu_consoles(void **state)
{
    struct cfg c;
    must_parse(MINI_VM "[vm b]\nvnc = unix:/run/b.vnc\nvnc_port = 6010\n"
               "qemu_consoles = allow\n[vm c]\nvnc = unix:/run/c.vnc\nvnc_port = 6011\n"
               "qemu_consoles = block\n", &c);
    assert_int_equal(c.vms[0].qemu_consoles, CFG_QCONS_BLOCK);
    assert_int_equal(c.vms[1].qemu_consoles, CFG_QCONS_ALLOW);
    assert_int_equal(c.vms[2].qemu_consoles, CFG_QCONS_BLOCK);
    char *out = print_to_string(&c);
    assert_non_null(strstr(out, "\n[vm b]\n"));
    assert_non_null(strstr(strstr(out, "\n[vm b]\n"), "\nqemu_consoles = allow\n"));
    assert_non_null(strstr(out, "\nqemu_consoles = block\n"));
    free(out);
    cfg_free(&c);
    expect_err(MINI_VM "qemu_consoles = off\n", 4,
               "bad qemu_consoles \"off\" (use block or allow)");
    expect_err(MINI_VM "qemu_consoles = block\nqemu_consoles = allow\n", 5, "duplicate");
    expect_err("[gateway]\nqemu_consoles = allow\n", 2, "qemu_consoles");
}

/* continuous_updates: auto by default, [gateway] sets the default, a VM
 * overrides it; only auto/off. */
static void test_continuous_updates(void **state)
{
    (void)state;
    struct cfg c;
    must_parse(MINI_VM "[vm b]\nvnc = unix:/run/b.vnc\nvnc_port = 6010\n"
               "continuous_updates = auto\n", &c);
    assert_int_equal(c.continuous_updates, CFG_CU_AUTO);
    assert_int_equal(c.vms[0].continuous_updates, CFG_CU_AUTO);
    cfg_free(&c);
    must_parse(MINI_VM "[vm b]\nvnc = unix:/run/b.vnc\nvnc_port = 6010\n"
               "continuous_updates = auto\n[gateway]\ncontinuous_updates = off\n", &c);
    assert_int_equal(c.continuous_updates, CFG_CU_OFF);
    assert_int_equal(c.vms[0].continuous_updates, CFG_CU_OFF);
    assert_int_equal(c.vms[1].continuous_updates, CFG_CU_AUTO);
    char *out = print_to_string(&c);
    assert_non_null(strstr(out, "\ncontinuous_updates = off\n"));
    assert_non_null(strstr(strstr(out, "\n[vm b]\n"), "\ncontinuous_updates = auto\n"));
    free(out);
    cfg_free(&c);
    expect_err(MINI_VM "continuous_updates = on\n", 4,
               "bad continuous_updates \"on\" (use auto or off)");
    expect_err("[gateway]\ncontinuous_updates = yes\n", 2, "bad continuous_updates");
}

/* idle_pause: off by default; [gateway] sets it for the VMs that have a
 * monitor (qmp, or vnc = qmp:PATH), a VM overrides it (0 = off); set on a
 * VM without a monitor it is an error. */
static void test_idle_pause(void **state)
{
    (void)state;
    struct cfg c;
    must_parse(MINI_VM "qmp = /run/a.qmp\n", &c);
    assert_int_equal(c.idle_pause_ms, 0);
    assert_int_equal(c.vms[0].idle_pause_ms, 0);
    cfg_free(&c);
    must_parse("[gateway]\nidle_pause = 10m\n"
               "[vm a]\nvnc = unix:/run/a.vnc\nvnc_port = 6001\nqmp = /run/a.qmp\n"
               "[vm b]\nvnc = qmp:/run/b.qmp\nvnc_port = 6002\nidle_pause = 2s\n"
               "[vm c]\nvnc = unix:/run/c.vnc\nvnc_port = 6003\n"
               "[vm d]\nvnc = qmp:/run/d.qmp\nvnc_port = 6004\nidle_pause = 0\n", &c);
    assert_int_equal(c.idle_pause_ms, 600000);
    assert_int_equal(c.vms[0].idle_pause_ms, 600000);
    assert_int_equal(c.vms[1].idle_pause_ms, 2000);
    assert_int_equal(c.vms[2].idle_pause_ms, 0);     /* no monitor: the default skips it */
    assert_int_equal(c.vms[3].idle_pause_ms, 0);
    char *out = print_to_string(&c);
    assert_non_null(strstr(out, "\nidle_pause = 10m\n"));
    assert_non_null(strstr(strstr(out, "\n[vm b]\n"), "\nidle_pause = 2s\n"));
    assert_non_null(strstr(strstr(out, "\n[vm c]\n"), "\nidle_pause = 0\n"));
    free(out);
    cfg_free(&c);
    expect_err(MINI_VM "idle_pause = 5m\n", 4, "vm a: idle_pause needs qmp");
    expect_err(MINI_VM "qmp = /run/a.qmp\nidle_pause = soon\n", 5, "bad duration \"soon\"");
    expect_err("[gateway]\nidle_pause = -1s\n", 2, "bad duration");
}

/* power_users / power_groups / qga: lists like users, qga only unix:PATH,
 * printed back by cfg_print. */
static void test_power_keys(void **state)
{
    (void)state;
    struct cfg c;
    must_parse(MINI_VM "power_users = alice bob\npower_groups = wheel\n"
               "qga = unix:/run/qemu/a.qga\n", &c);
    assert_int_equal(c.vms[0].n_power_users, 2);
    assert_string_equal(c.vms[0].power_users[1], "bob");
    assert_int_equal(c.vms[0].n_power_groups, 1);
    assert_string_equal(c.vms[0].qga, "/run/qemu/a.qga");
    char *out = print_to_string(&c);
    assert_non_null(strstr(out, "\npower_users = alice bob\n"));
    assert_non_null(strstr(out, "\nqga = unix:/run/qemu/a.qga\n"));
    free(out);
    cfg_free(&c);
    must_parse(MINI_VM, &c);
    assert_int_equal(c.vms[0].n_power_users, 0);
    assert_string_equal(c.vms[0].qga, "");
    cfg_free(&c);
    expect_err(MINI_VM "qga = /run/qemu/a.qga\n", 4, "bad qga \"/run/qemu/a.qga\": use unix:PATH");
    expect_err(MINI_VM "qga = unix:rel.qga\n", 4, "bad qga");
    expect_err(MINI_VM "power_users = al;ice\n", 4, "bad user \"al;ice\" in power_users");
}

static void test_gateway_value_errors(void **state)
{
    expect_err("[gateway]\naddress = localhost\n", 2,
               "bad address \"localhost\" (need a numeric IPv4 or IPv6 address)");
    expect_err("[gateway]\naddress = [::]\n", 2, "bad address \"[::]\"");
    expect_err("[gateway]\naddress = 1.2.3\n", 2, "bad address");
    expect_err("[gateway]\nauth = ldap\n", 2, "bad auth \"ldap\" (use pam or file)");
    expect_err("[gateway]\npam_service = a/b\n", 2, "bad pam_service \"a/b\"");
    expect_err("[gateway]\nuser = ro ot\n", 2, "bad user \"ro ot\"");
    expect_err("[gateway]\ncert =\n", 2, "empty value for \"cert\"");
    expect_err("[gateway]\nmax_unauth = 0\n", 2, "max_unauth 0 out of range (1..100000)");
    expect_err("[gateway]\nmax_unauth = 100001\n", 2, "out of range (1..100000)");
    expect_err("[gateway]\nmax_unauth = many\n", 2, "bad number \"many\" for max_unauth");
    expect_err("[gateway]\nmax_unauth = +5\n", 2, "bad number \"+5\"");
    expect_err("[gateway]\nmax_unauth = 99999999999999999999999\n", 2, "bad number");
    expect_err("[gateway]\nauth_workers = 0\n", 2, "auth_workers 0 out of range (1..64)");
    expect_err("[gateway]\nauth_workers = 65\n", 2, "auth_workers 65 out of range (1..64)");
    expect_err("[gateway]\nprocesses = 0\n", 2, "processes 0 out of range (1..64)");
    expect_err("[gateway]\nprocesses = automatic\n", 2, "bad number \"automatic\"");
    expect_err("[gateway]\nprocesses = 65\n", 2, "processes 65 out of range (1..64)");
    expect_err("[gateway]\nsandbox = maybe\n", 2, "sandbox: expected on or off, not 'maybe'");
    expect_err("[gateway]\nfail_delay = 61s\n", 2, "fail_delay 61s out of range (0s..1m)");
    expect_err("[gateway]\nlogin_timeout = 0\n", 2, "login_timeout 0 out of range (1s..1h)");
    expect_err("[gateway]\nlogin_timeout = 999ms\n", 2, "login_timeout 999ms out of range");
    expect_err("[gateway]\nlogin_timeout = 61m\n", 2, "out of range (1s..1h)");
    expect_err("[gateway]\nlogin_timeout = 10x\n", 2, "bad duration \"10x\" (use s, m, h, d)");
    expect_err("[gateway]\nfirst_byte_timeout = 0\n", 2,
               "first_byte_timeout 0 out of range (1s..1h)");
    expect_err("[gateway]\nfirst_byte_timeout = 2h\n", 2, "out of range (1s..1h)");
}

static void test_max_unauth_per_source(void **state)
{
    struct cfg c;
    /* default per-source is clamped to a smaller max_unauth */
    must_parse("[gateway]\nmax_unauth = 3\n", &c);
    assert_int_equal(c.max_unauth_per_source, 3);
    cfg_free(&c);
    must_parse("[gateway]\nmax_unauth_per_source = 10\nmax_unauth = 10\n", &c);
    assert_int_equal(c.max_unauth_per_source, 10);
    cfg_free(&c);
    expect_err("[gateway]\nmax_unauth = 4\n\nmax_unauth_per_source = 5\n", 4,
               "max_unauth_per_source 5 exceeds max_unauth 4");
    expect_err("[gateway]\nmax_unauth_per_source = 65\n", 2,
               "max_unauth_per_source 65 exceeds max_unauth 64");
}

static void test_firewall_values(void **state)
{
    struct cfg c;
    must_parse("[firewall]\nprotect = 5900\n"
               "allow = 10.0.0.0/8 192.168.1.7 2001:DB8::/32 ::1 10.0.0.0/8 0.0.0.0/0 ::/0\n"
               "ban_after = 1000\nban_window = 1s\nban_time = 2d\n", &c);
    assert_true(c.fw.present);
    assert_int_equal(c.fw.protect_lo, 5900);
    assert_int_equal(c.fw.protect_hi, 5900);
    assert_int_equal(c.fw.n_allow, 6);
    assert_string_equal(c.fw.allow[0], "10.0.0.0/8");
    assert_string_equal(c.fw.allow[1], "192.168.1.7");
    assert_string_equal(c.fw.allow[2], "2001:db8::/32");
    assert_string_equal(c.fw.allow[3], "::1");
    assert_string_equal(c.fw.allow[4], "0.0.0.0/0");
    assert_string_equal(c.fw.allow[5], "::/0");
    assert_int_equal(c.fw.ban_after, 1000);
    assert_int_equal(c.fw.ban_window_ms, 1000);
    assert_int_equal(c.fw.ban_time_ms, 2ULL * 86400 * 1000);
    cfg_free(&c);
    /* allow entries are what the firewall will hold: host bits cleared,
     * IPv4-mapped written as IPv4, then de-duplicated */
    must_parse("[firewall]\nallow = 10.0.0.1/8 10.0.0.0/8 ::ffff:192.0.2.7 192.0.2.7/32 "
               "2001:db8::1:2/64\n", &c);
    assert_int_equal(c.fw.n_allow, 3);
    assert_string_equal(c.fw.allow[0], "10.0.0.0/8");
    assert_string_equal(c.fw.allow[1], "192.0.2.7");
    assert_string_equal(c.fw.allow[2], "2001:db8::/64");
    cfg_free(&c);
    must_parse("[firewall]\nprotect = 1-65535\n", &c);
    assert_int_equal(c.fw.protect_lo, 1);
    assert_int_equal(c.fw.protect_hi, 65535);
    cfg_free(&c);

    expect_err("[firewall]\nprotect = 6100-5900\n", 2, "bad port range \"6100-5900\"");
    expect_err("[firewall]\nprotect = 0-10\n", 2, "bad port range");
    expect_err("[firewall]\nprotect = 5900-65536\n", 2, "bad port range");
    expect_err("[firewall]\nprotect = 5900-\n", 2, "bad port range");
    expect_err("[firewall]\nprotect = 5900 - 6000\n", 2, "bad port range");
    expect_err("[firewall]\nallow = 10.0.0.0/33\n", 2, "bad address \"10.0.0.0/33\" in allow");
    expect_err("[firewall]\nallow = ::/129\n", 2, "bad address \"::/129\" in allow");
    expect_err("[firewall]\nallow = 10.0.0.0/\n", 2, "bad address \"10.0.0.0/\"");
    expect_err("[firewall]\nallow = 10.0.0.0/-1\n", 2, "bad address");
    expect_err("[firewall]\nallow = 1.2.3.4 host.example\n", 2, "bad address \"host.example\"");
    expect_err("[firewall]\nallow = 10.0.0.0/8,10.1.0.0/16\n", 2, "bad address");
    /* the firewall's rules, at load time rather than at `firewall apply` */
    expect_err("[firewall]\nallow = 10.0.0.0/08\n", 2, "bad address \"10.0.0.0/08\" in allow");
    expect_err("[firewall]\nallow = ::ffff:0:0/95\n", 2, "bad address \"::ffff:0:0/95\" in allow");
    expect_err("[firewall]\nallow = fe80::1%eth0\n", 2, "bad address \"fe80::1%eth0\" in allow");
    expect_err("[firewall]\nban_after = 0\n", 2, "ban_after 0 out of range (1..1000)");
    expect_err("[firewall]\nban_window = 0s\n", 2, "ban_window 0s out of range");
    expect_err("[firewall]\nban_time = 1w\n", 2, "bad duration \"1w\" (use s, m, h, d)");
}

/* cert / key / passwd_file relative to the config file's directory. */
static void test_relative_paths(void **state)
{
    struct cfg c;
    char err[256];
    const char *t = "[gateway]\ncert = tls/server.crt\nkey = ./tls/server.key\n"
                    "passwd_file = /abs/passwd\n";
    assert_int_equal(cfg_parse("/etc/vmgate/vmgate.conf", t, strlen(t), &c, err, sizeof err), 0);
    assert_string_equal(c.cert, "/etc/vmgate/tls/server.crt");
    assert_string_equal(c.key, "/etc/vmgate/tls/server.key");
    assert_string_equal(c.passwd_file, "/abs/passwd");
    cfg_free(&c);
    assert_int_equal(cfg_parse("/vmgate.conf", t, strlen(t), &c, err, sizeof err), 0);
    assert_string_equal(c.cert, "/tls/server.crt");
    cfg_free(&c);
    assert_int_equal(cfg_parse("conf/vmgate.conf", t, strlen(t), &c, err, sizeof err), 0);
    assert_string_equal(c.cert, "conf/tls/server.crt");
    cfg_free(&c);
    /* no directory in the name: as written (relative to the cwd = its dir) */
    assert_int_equal(cfg_parse("vmgate.conf", t, strlen(t), &c, err, sizeof err), 0);
    assert_string_equal(c.cert, "tls/server.crt");
    cfg_free(&c);
}

/* cfg_load: reads the file, resolves relative paths to absolute ones. */
static void test_load(void **state)
{
    char dir[] = "/tmp/vmgate-test-config-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], cwd[4096];
    snprintf(path, sizeof path, "%s/vmgate.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(example_conf, f);
    fputs("[gateway]\ncert = server.crt\n", f);      /* a second [gateway]: line 30 */
    fclose(f);

    struct cfg c;
    char err[512];
    assert_int_equal(cfg_load(path, &c, err, sizeof err), -1);
    char want[400];
    snprintf(want, sizeof want, "%s:30: duplicate section [gateway] (first on line 1)", path);
    assert_string_equal(err, want);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("[gateway]\ncert = server.crt\nkey = ../k/server.key\n", f);
    fclose(f);
    assert_int_equal(cfg_load(path, &c, err, sizeof err), 0);
    char exp[400];
    snprintf(exp, sizeof exp, "%s/server.crt", dir);
    assert_string_equal(c.cert, exp);
    snprintf(exp, sizeof exp, "%s/../k/server.key", dir);
    assert_string_equal(c.key, exp);
    assert_string_equal(c.file, path);
    cfg_free(&c);

    /* a relative config path still yields absolute paths */
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir("/tmp"), 0);
    assert_int_equal(cfg_load(path + 5, &c, err, sizeof err), 0);
    snprintf(exp, sizeof exp, "%s/server.crt", dir);
    assert_string_equal(c.cert, exp);
    assert_string_equal(c.file, path + 5);
    cfg_free(&c);
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(cfg_load("vmgate.conf", &c, err, sizeof err), 0);
    assert_string_equal(c.cert, exp);
    cfg_free(&c);
    assert_int_equal(chdir(cwd), 0);

    unlink(path);
    assert_int_equal(cfg_load(path, &c, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    assert_string_equal(err, want);
    assert_null(c.file);
    assert_int_equal(cfg_load(dir, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "Is a directory"));
    rmdir(dir);
}

/* ---- value parsers ---- */

static void test_parse_duration(void **state)
{
    static const struct { const char *s; uint64_t ms; } ok[] = {
        { "0", 0 }, { "30", 30000 }, { "30s", 30000 }, { "500ms", 500 }, { "10m", 600000 },
        { "2h", 7200000 }, { "1d", 86400000 }, { "007s", 7000 }, { "0ms", 0 },
        { "18446744073709551615ms", UINT64_MAX }, { "213503982334d", 213503982334ULL * 86400000 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 1;
        if (cfg_parse_duration_ms(ok[i].s, &v) != 0 || v != ok[i].ms)
            fail_msg("duration \"%s\"", ok[i].s);
    }
    static const char *const bad[] = {
        "", "s", "-1", "+1", " 1", "1 ", "1 s", "10x", "1.5s", "1S", "1sec", "1ss", "1msx",
        "0x10", "18446744073709551616ms", "18446744073709551615s", "213503982335d", "1w",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 42;
        if (cfg_parse_duration_ms(bad[i], &v) != -1 || v != 42)
            fail_msg("duration \"%s\" accepted", bad[i]);
    }
    uint64_t v;
    assert_int_equal(cfg_parse_duration_ms(NULL, &v), -1);
}

static void test_parse_size(void **state)
{
    static const struct { const char *s; uint64_t n; } ok[] = {
        { "0", 0 }, { "256", 256 }, { "256K", 262144 }, { "256k", 262144 }, { "1M", 1048576 },
        { "1G", 1073741824 }, { "3g", 3221225472ULL }, { "18446744073709551615", UINT64_MAX },
        { "17179869183G", 17179869183ULL << 30 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 1;
        if (cfg_parse_size(ok[i].s, &v) != 0 || v != ok[i].n)
            fail_msg("size \"%s\"", ok[i].s);
    }
    static const char *const bad[] = {
        "", "K", "-1", "1 K", "1KB", "1KiB", "1T", "1.5M", " 1", "1 ", "18446744073709551616",
        "17179869184G", "0x1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 42;
        if (cfg_parse_size(bad[i], &v) != -1 || v != 42)
            fail_msg("size \"%s\" accepted", bad[i]);
    }
}

static void check_backend(const char *s, enum cfg_backend_kind kind, const char *path,
                          const char *host, unsigned port)
{
    struct cfg_backend b;
    char why[128] = "", str[400];
    if (cfg_parse_backend(s, &b, why, sizeof why) != 0)
        fail_msg("backend \"%s\": %s", s, why);
    assert_int_equal(b.kind, kind);
    assert_string_equal(b.path, path);
    assert_string_equal(b.host, host);
    assert_int_equal(b.port, port);
    cfg_backend_str(&b, str, sizeof str);
    assert_string_equal(str, s);     /* round trip */
}

static void test_parse_backend_ok(void **state)
{
    check_backend("unix:/run/qemu/dev0.vnc", CFG_BE_UNIX, "/run/qemu/dev0.vnc", "", 0);
    check_backend("qmp:/run/qemu/dev0.qmp", CFG_BE_QMP, "/run/qemu/dev0.qmp", "", 0);
    check_backend("127.0.0.1:5902", CFG_BE_TCP, "", "127.0.0.1", 5902);
    check_backend("localhost:1", CFG_BE_TCP, "", "localhost", 1);
    check_backend("[::1]:65535", CFG_BE_TCP, "", "::1", 65535);
    check_backend("[fe80::1:2]:5930", CFG_BE_TCP, "", "fe80::1:2", 5930);
    check_backend("[::ffff:127.0.0.1]:5900", CFG_BE_TCP, "", "::ffff:127.0.0.1", 5900);
    check_backend("unix:/a b;c", CFG_BE_UNIX, "/a b;c", "", 0);   /* paths are bytes */

    /* 107 bytes is the sun_path limit; 108 is too long */
    char s[200];
    strcpy(s, "unix:/");
    memset(s + 6, 'p', 106);
    s[112] = '\0';
    check_backend(s, CFG_BE_UNIX, s + 5, "", 0);
    struct cfg_backend b;
    char why[128];
    strcat(s, "p");
    assert_int_equal(cfg_parse_backend(s, &b, why, sizeof why), -1);
    assert_string_equal(why, "path longer than 107 bytes");

    char str[8];
    memset(&b, 0, sizeof b);
    cfg_backend_str(&b, str, sizeof str);
    assert_string_equal(str, "none");
    /* truncation is safe */
    assert_int_equal(cfg_parse_backend("[::1]:5902", &b, NULL, 0), 0);
    cfg_backend_str(&b, str, 4);
    assert_string_equal(str, "[::");
}

static void test_parse_backend_bad(void **state)
{
    static const struct { const char *s, *why; } bad[] = {
        { "", "empty backend address" },
        { "unix:", "empty path" },
        { "unix:relative.sock", "path must be absolute" },
        { "qmp:q.sock", "path must be absolute" },
        { "UNIX:/x", "host must be a numeric IPv4 address" },
        { "127.0.0.1", "missing port" },
        { "127.0.0.1:", "bad port" },
        { "127.0.0.1:0", "bad port" },
        { "127.0.0.1:65536", "bad port" },
        { "127.0.0.1:5900x", "bad port" },
        { "127.0.0.1:-1", "bad port" },
        { "127.0.0.1: 5900", "bad port" },
        { "127.0.0.1:000005900", "bad port" },
        { ":5900", "missing host" },
        { "vm.example.com:5900", "host must be a numeric IPv4 address, localhost, or [IPv6]" },
        { "LOCALHOST:5900", "host must be" },
        { "256.0.0.1:5900", "host must be" },
        { "::1:5900", "IPv6 address must be in brackets" },
        { "[::1]", "missing port" },
        { "[::1]5900", "missing port" },
        { "[::1:5900", "missing \"]\"" },
        { "[127.0.0.1]:5900", "bad IPv6 address" },
        { "[]:5900", "missing host" },
        { "[::1]:0", "bad port" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cfg_backend b;
        char why[128] = "";
        if (cfg_parse_backend(bad[i].s, &b, why, sizeof why) != -1)
            fail_msg("backend \"%s\" accepted", bad[i].s);
        if (!strstr(why, bad[i].why))
            fail_msg("backend \"%s\": why \"%s\", want \"%s\"", bad[i].s, why, bad[i].why);
    }
    struct cfg_backend b;
    assert_int_equal(cfg_parse_backend(NULL, &b, NULL, 0), -1);
    assert_int_equal(cfg_parse_backend("x", &b, NULL, 0), -1);
}

/* ---- spice_channels ---- */

#define SPICE_VM "[vm s]\nspice = unix:/s\nspice_port = 6010\n"
#define CH(t) (UINT32_C(1) << (t))

static void test_spice_channels(void **state)
{
    (void)state;
    struct cfg c;
    must_parse(SPICE_VM, &c);
    assert_int_equal(c.vms[0].spice_channels, CFG_SPICE_CHANNELS_DEFAULT);
    assert_int_equal(CFG_SPICE_CHANNELS_DEFAULT,
                     CH(1) | CH(2) | CH(3) | CH(4) | CH(5) | CH(6));
    cfg_free(&c);

    must_parse(SPICE_VM "spice_channels = main display\tusbredir webdav main\n", &c);
    assert_int_equal(c.vms[0].spice_channels, CH(1) | CH(2) | CH(9) | CH(11));
    cfg_free(&c);
    must_parse(SPICE_VM "spice_channels = main inputs cursor playback record smartcard "
               "usbredir port webdav tunnel display\n", &c);
    assert_int_equal(c.vms[0].spice_channels, 0xffeu);
    cfg_free(&c);

    /* the names are the protocol's channel numbers */
    static const char *const names[] = { NULL, "main", "display", "inputs", "cursor",
        "playback", "record", "tunnel", "smartcard", "usbredir", "port", "webdav" };
    for (unsigned t = 1; t < sizeof names / sizeof names[0]; t++) {
        assert_string_equal(cfg_spice_channel_name(t), names[t]);
        assert_int_equal(cfg_spice_channel_type(names[t]), t);
    }
    assert_null(cfg_spice_channel_name(0));
    assert_null(cfg_spice_channel_name(12));
    assert_int_equal(cfg_spice_channel_type("Main"), 0);
    assert_int_equal(cfg_spice_channel_type("unknown"), 0);

    expect_err(SPICE_VM "spice_channels = main usb\n", 4,
               "bad spice channel \"usb\" in spice_channels");
    expect_err(SPICE_VM "spice_channels = display inputs\n", 4,
               "spice_channels must include main");
    expect_err(SPICE_VM "spice_channels =\n", 4, "empty value for \"spice_channels\"");
    expect_err(SPICE_VM "spice_channels = main\nspice_channels = main\n", 5,
               "duplicate key \"spice_channels\" (first set on line 4)");
    expect_err("[gateway]\nspice_channels = main\n", 2,
               "unknown key \"spice_channels\" in [gateway]");

    /* printed in the [vm] section */
    must_parse(SPICE_VM "spice_channels = usbredir main\n", &c);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    cfg_print(&c, f);
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(buf, "\nspice_port = 6010\nspice_channels = main usbredir\n"));
    free(buf);
    cfg_free(&c);
}

/* ---- print, free, error buffer ---- */

static char *print_to_string(const struct cfg *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    cfg_print(c, f);
    assert_int_equal(fclose(f), 0);
    char *copy = strdup(buf);     /* keeps gcc's dangling-pointer check quiet */
    free(buf);
    assert_non_null(copy);
    return copy;
}

static void test_print_routes(void **state)
{
    struct cfg c;
    must_parse(example_conf, &c);
    char *out = print_to_string(&c);
    assert_non_null(strstr(out, "\nvm dev0: vnc 0.0.0.0:5902 -> unix:/run/qemu/dev0.vnc  "
                                "users=alice,bob groups=kvm clipboard=both/262144\n"));
    assert_non_null(strstr(out, "\nvm dev0: spice 0.0.0.0:5932 -> unix:/run/qemu/dev0.spice  "
                                "users=alice,bob groups=kvm clipboard=both/262144\n"));
    assert_non_null(strstr(out, "\n[firewall]\nprotect = 5900-6100\nallow =\n"));
    assert_non_null(strstr(out, "\nlogin_timeout = 30s\n"));
    assert_non_null(strstr(out, "\nfirst_byte_timeout = 5s\n"));
    assert_non_null(strstr(out, "\nclipboard_max = 256K\n"));
    cfg_free(&c);
    free(out);

    must_parse("[gateway]\naddress = ::\n"
               "[vm web-1]\nvnc = [::1]:5901\nvnc_port = 6001\nclipboard = none\n", &c);
    out = print_to_string(&c);
    assert_non_null(strstr(out, "\nvm web-1: vnc [::]:6001 -> [::1]:5901  users=- groups=- "
                                "clipboard=none/262144\n"));
    assert_non_null(strstr(out, "\n# [firewall]"));      /* absent: shown as comments */
    cfg_free(&c);
    free(out);

    /* a zeroed config prints without crashing */
    memset(&c, 0, sizeof c);
    free(print_to_string(&c));
}

/* The INI part of cfg_print (before "# routes") parses back to a config
 * that prints identically. */
static void test_print_round_trip(void **state)
{
    static const char *const texts[] = {
        "",
        example_conf,
        "[gateway]\naddress = 2001:db8::1\nuser =\nfail_delay = 1500ms\nauth = file\n"
        "max_unauth = 5\nlogin_timeout = 90\nprocesses = auto\n"
        "[firewall]\nallow = 10.0.0.0/8 ::1\nprotect = 5901\nban_time = 90s\n"
        "[vm web-1]\nvnc = [::1]:5901\nvnc_port = 6001\nclipboard = none\n"
        "[vm q]\nvnc = qmp:/run/q.qmp\nvnc_port = 6002\nspice = localhost:5930\n"
        "spice_port = 6003\nusers = a b\nclipboard_max = 1000\nqemu_consoles = allow\n"
        "spice_channels = webdav main display\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct cfg c1, c2;
        must_parse(texts[i], &c1);
        char *out1 = print_to_string(&c1);
        char *routes = strstr(out1, "\n# routes\n");
        assert_non_null(routes);
        char *ini = strndup(out1, (size_t)(routes - out1) + 1);
        must_parse(ini, &c2);
        char *out2 = print_to_string(&c2);
        assert_string_equal(out1, out2);
        assert_int_equal(c1.n_vms, c2.n_vms);
        assert_int_equal(c1.fw.present, c2.fw.present);
        assert_int_equal(c1.processes, c2.processes);
        free(ini);
        free(out1);
        free(out2);
        cfg_free(&c1);
        cfg_free(&c2);
    }
}

/* audit, control, admin_group, metrics: defaults, values, "" = off, errors. */
static void test_ops_keys(void **state)
{
    (void)state;
    struct cfg c;
    must_parse("[gateway]\n", &c);
    assert_string_equal(c.audit, "");
    assert_string_equal(c.control, "/run/vmgate/control");
    assert_string_equal(c.admin_group, "vmgate-admin");
    assert_string_equal(c.metrics, "");
    cfg_free(&c);
    must_parse("[gateway]\naudit = /var/log/vmgate/audit.jsonl\ncontrol = /tmp/ctl\n"
               "admin_group = wheel\nmetrics = [::1]:9184\n", &c);
    assert_string_equal(c.audit, "/var/log/vmgate/audit.jsonl");
    assert_string_equal(c.control, "/tmp/ctl");
    assert_string_equal(c.admin_group, "wheel");
    assert_string_equal(c.metrics, "[::1]:9184");
    cfg_free(&c);
    must_parse("[gateway]\naudit = journal\ncontrol =\nadmin_group =\nmetrics =\n", &c);
    assert_string_equal(c.audit, "journal");
    assert_string_equal(c.control, "");
    assert_string_equal(c.admin_group, "");
    cfg_free(&c);
    expect_err("[gateway]\naudit = audit.jsonl\n", 2, "bad audit");
    expect_err("[gateway]\ncontrol = run/ctl\n", 2, "bad control");
    expect_err("[gateway]\nadmin_group = a b\n", 2, "bad admin_group");
    expect_err("[gateway]\nmetrics = localhost:9184\n", 2, "bad metrics");
    expect_err("[gateway]\nmetrics = 127.0.0.1\n", 2, "bad metrics");
    expect_err("[gateway]\nmetrics = 127.0.0.1:0\n", 2, "bad metrics");
}

static void test_free_and_small_err(void **state)
{
    struct cfg c;
    memset(&c, 0, sizeof c);
    cfg_free(&c);
    cfg_free(&c);
    cfg_free(NULL);

    char err[12];
    memset(err, 'Z', sizeof err);
    assert_int_equal(parse_str("[gateway]\nfoo = 1\n", &c, err, 8), -1);
    assert_string_equal(err, "t.conf:");     /* truncated, terminated */
    assert_int_equal(err[8], 'Z');            /* nothing past errlen */
    assert_int_equal(parse_str("[gateway]\nfoo = 1\n", &c, NULL, 0), -1);
    assert_int_equal(cfg_load("/nonexistent/vmgate.conf", &c, NULL, 0), -1);

    /* a long bad value is clipped in the message, which keeps its tail */
    char text[400], big[301], e2[512];
    memset(big, '9', 300);
    big[300] = '\0';
    snprintf(text, sizeof text, "[gateway]\nlogin_timeout = %sx\n", big);
    assert_int_equal(parse_str(text, &c, e2, sizeof e2), -1);
    assert_non_null(strstr(e2, "...\" (use s, m, h, d)"));
    assert_true(strlen(e2) < 120);

    assert_string_equal(cfg_clip_name(CFG_CLIP_BOTH), "both");
    assert_string_equal(cfg_clip_name(CFG_CLIP_TO_VM), "to-vm");
    assert_string_equal(cfg_clip_name(CFG_CLIP_FROM_VM), "from-vm");
    assert_string_equal(cfg_clip_name(CFG_CLIP_NONE), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_vm_defaults_from_later_gateway),
        cmocka_unit_test(test_all_gateway_keys),
        cmocka_unit_test(test_inline_comments),
        cmocka_unit_test(test_crlf_bom_and_no_final_newline),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_nul_and_control_bytes),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_vm_names),
        cmocka_unit_test(test_vm_required_keys),
        cmocka_unit_test(test_socket_dir),
        cmocka_unit_test(test_serial),
        cmocka_unit_test(test_port_conflicts),
        cmocka_unit_test(test_web_keys),
        cmocka_unit_test(test_proxy_protocol),
        cmocka_unit_test(test_listen_port_values),
        cmocka_unit_test(test_backend_errors_in_config),
        cmocka_unit_test(test_qmp_from_vnc),
        cmocka_unit_test(test_users_groups),
        cmocka_unit_test(test_clipboard_values),
        cmocka_unit_test(test_qemu_consoles),
        cmocka_unit_test(test_continuous_updates),
        cmocka_unit_test(test_idle_pause),
        cmocka_unit_test(test_gateway_value_errors),
        cmocka_unit_test(test_max_unauth_per_source),
        cmocka_unit_test(test_firewall_values),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_backend_ok),
        cmocka_unit_test(test_parse_backend_bad),
        cmocka_unit_test(test_spice_channels),
        cmocka_unit_test(test_print_routes),
        cmocka_unit_test(test_print_round_trip),
        cmocka_unit_test(test_free_and_small_err),
        cmocka_unit_test(test_ops_keys),
        cmocka_unit_test(test_power_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
