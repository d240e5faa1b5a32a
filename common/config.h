/* common/config.h — the config model and its parser.
 *
 * The file format is the INI of DESIGN.md.  cfg_parse() reads the whole text
 * (no I/O beyond what cfg_load() does), checks every line and every value,
 * and either fills a struct cfg or returns -1 with "FILE:LINE: message" in
 * err.  Every part of vmgate (daemon, auth helper, firewall CLI) reads the
 * same struct; it is immutable once loaded. */
#ifndef VMGATE_CONFIG_H
#define VMGATE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_MAX_LINE      4096      /* longer lines are an error, never truncated */
#define CFG_NAME_MAX      63        /* VM name */
#define CFG_PATH_MAX      107       /* sun_path limit minus NUL */
#define CFG_HOST_MAX      255
#define CFG_PROCESSES_MAX 64        /* `processes`; the auth helper has a socket for each */
#define CFG_DEFAULT_FILE  "/etc/vmgate/vmgate.conf"

enum cfg_auth { CFG_AUTH_PAM = 0, CFG_AUTH_FILE };
enum cfg_clip { CFG_CLIP_BOTH = 0, CFG_CLIP_TO_VM, CFG_CLIP_FROM_VM, CFG_CLIP_NONE };
enum cfg_backend_kind { CFG_BE_NONE = 0, CFG_BE_UNIX, CFG_BE_TCP, CFG_BE_QMP };
/* qemu_consoles: whether a viewer may switch QEMU's virtual consoles
 * (Ctrl-Alt-1..9 in QEMU's VNC server), where QEMU without a -monitor/-qmp
 * keeps its HMP monitor. */
enum cfg_qcons { CFG_QCONS_BLOCK = 0, CFG_QCONS_ALLOW };
/* continuous_updates: whether vmgate offers ContinuousUpdates and Fence to
 * VNC viewers itself (QEMU has neither). */
enum cfg_cu { CFG_CU_AUTO = 0, CFG_CU_OFF };

/* A backend address: unix:PATH, HOST:PORT ([v6]:PORT), or qmp:PATH. */
struct cfg_backend {
    enum cfg_backend_kind kind;
    char path[CFG_PATH_MAX + 1];   /* unix / qmp */
    char host[CFG_HOST_MAX + 1];   /* tcp: numeric address or "localhost" (no brackets) */
    uint16_t port;                 /* tcp */
};

struct cfg_vm {
    char name[CFG_NAME_MAX + 1];
    int line;                      /* line of the [vm NAME] header */
    struct cfg_backend vnc;
    uint16_t vnc_port;             /* 0 = no VNC listener */
    struct cfg_backend spice;
    uint16_t spice_port;           /* 0 = no SPICE listener */
    char qmp[CFG_PATH_MAX + 1];    /* "" = none */
    char **users;  size_t n_users;
    char **groups; size_t n_groups;
    char **power_users;  size_t n_power_users;    /* may shut down / reset / pause */
    char **power_groups; size_t n_power_groups;
    char qga[CFG_PATH_MAX + 1];    /* guest agent socket (qga = unix:PATH); "" = none */
    enum cfg_clip clipboard;
    uint64_t clipboard_max;        /* bytes */
    enum cfg_qcons qemu_consoles;  /* default block */
    enum cfg_cu continuous_updates;  /* default auto */
    uint32_t spice_channels;       /* allowed SPICE channel types: bit (1 << type) */
    struct cfg_backend serial;     /* QEMU's serial chardev socket (unix only); kind NONE = none */
    uint64_t idle_pause_ms;        /* effective idle_pause (0 = off; never set without qmp) */
};

struct cfg_firewall {
    bool present;                  /* a [firewall] section exists */
    uint16_t protect_lo, protect_hi;
    char **allow; size_t n_allow;  /* CIDR strings, validated */
    int line;                      /* line of the [firewall] header (0: none) */
    int allow_line;                /* line of the allow key (0: not set) */
    unsigned ban_after;
    uint64_t ban_window_ms;
    uint64_t ban_time_ms;
};

struct cfg {
    char *file;                    /* path it was read from */
    /* [gateway] */
    char address[64];              /* numeric IPv4/IPv6 listen address; "::" = dual stack */
    char *cert, *key;
    enum cfg_auth auth;
    char pam_service[64];
    char *passwd_file;
    char user[64];                 /* "" = do not switch user */
    char socket_dir[CFG_PATH_MAX + 1];  /* per-VM unix sockets NAME.vnc; "" = none */
    uint64_t login_timeout_ms;
    uint64_t first_byte_timeout_ms;  /* a viewer that sends nothing is closed after it */
    enum cfg_clip clipboard;
    uint64_t clipboard_max;
    enum cfg_cu continuous_updates;  /* default for every VM */
    uint64_t idle_pause_ms;        /* idle_pause default for the VMs with a monitor (0 = off) */
    unsigned max_unauth;           /* concurrent unauthenticated connections, global */
    unsigned max_unauth_per_source;/* ... and per source address */
    uint64_t fail_delay_ms;        /* delay before a failed login is answered */
    unsigned auth_workers;         /* concurrent PAM/crypt workers in the auth helper */
    unsigned processes;            /* network-facing processes sharing the listeners;
                                      0 = auto: see cfg_processes() */
    bool sandbox;                  /* seccomp filter in the network processes (default on) */
    char audit[CFG_PATH_MAX + 1];  /* "" = off, "journal", or an absolute file path */
    char control[CFG_PATH_MAX + 1];/* control socket path; "" = none */
    char admin_group[64];          /* may use status/kick/reload; "" = root only */
    char metrics[CFG_HOST_MAX + 8];/* "ADDR:PORT" of the /metrics listener; "" = off */
    uint16_t web_port;             /* HTTPS + WebSocket browser console; 0 = off */
    char *novnc_dir;               /* noVNC's files (absolute) */
    char *web_dir;                 /* vmgate's own page: index.html, vmgate.js (absolute) */
    char **web_origins; size_t n_web_origins;  /* extra allowed WebSocket Origins */
    char **proxy_protocol; size_t n_proxy_protocol;  /* CIDRs whose connections start with a
                                                        PROXY v2 header (balancers) */
    struct cfg_firewall fw;
    struct cfg_vm *vms; size_t n_vms;
};

/* The effective `processes`: the configured number, or with `auto` the
 * online CPUs (1..CFG_PROCESSES_MAX). */
unsigned cfg_processes(const struct cfg *c);

/* The unix socket path of vm's console of kind ext ("vnc") in socket_dir:
 * "SOCKET_DIR/NAME.EXT".  Returns 0, or -1 when socket_dir is empty or the
 * path does not fit outsz (the parser keeps every VM's paths within
 * CFG_PATH_MAX). */
int cfg_socket_path(const struct cfg *c, const char *vm, const char *ext, char *out,
                    size_t outsz);

/* Parse text (len bytes, need not be NUL-terminated) named fname in errors.
 * On success returns 0 and fills *out (free with cfg_free).  On failure
 * returns -1, *out is left empty, and err holds "FNAME:LINE: message". */
int cfg_parse(const char *fname, const char *text, size_t len, struct cfg *out,
              char *err, size_t errlen);
/* Read and parse a file; a missing/unreadable file is "FILE: strerror". */
int cfg_load(const char *path, struct cfg *out, char *err, size_t errlen);
void cfg_free(struct cfg *c);

const struct cfg_vm *cfg_find_vm(const struct cfg *c, const char *name);
/* Is addr (numeric, as addr_sockaddr_str prints a peer) inside one of
 * proxy_protocol's CIDRs?  The network process asks it at accept (such a
 * connection must start with a PROXY v2 header), the auth helper when it
 * decides whether to take the network process's word for a viewer's real
 * source.  False for anything that is not a numeric address. */
bool cfg_proxy_source(const struct cfg *c, const char *addr);
/* Print the effective config and per-VM routes (vmgate check). */
void cfg_print(const struct cfg *c, FILE *f);
const char *cfg_clip_name(enum cfg_clip c);
const char *cfg_qcons_name(enum cfg_qcons q);
const char *cfg_cu_name(enum cfg_cu m);
/* SPICE channel types by name, as the SPICE protocol numbers them (main 1,
 * display 2, ... webdav 11; the names proxy/spice_link.c's
 * spice_channel_name() prints).  NULL / 0 for an unknown one. */
const char *cfg_spice_channel_name(unsigned type);
unsigned cfg_spice_channel_type(const char *name);
/* The default spice_channels: main display inputs cursor playback record. */
#define CFG_SPICE_CHANNELS_DEFAULT \
    ((1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6))
/* Format a backend as it would appear in the config ("unix:/p", "[::1]:5902"). */
void cfg_backend_str(const struct cfg_backend *b, char *out, size_t outsz);

/* Value parsers, also used by the CLIs.  All return 0 or -1. */
int cfg_parse_duration_ms(const char *s, uint64_t *out);   /* "30", "30s", "10m", "2h", "1d", "500ms" */
int cfg_parse_size(const char *s, uint64_t *out);          /* "256", "256K", "1M", "1G" */
int cfg_parse_backend(const char *s, struct cfg_backend *out, char *why, size_t whylen);

#endif
