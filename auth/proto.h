/* auth/proto.h — the wire protocol between the network process and the
 * privileged auth helper.
 *
 * Transport: an AF_UNIX SOCK_SEQPACKET socketpair, one message per datagram,
 * so framing is the kernel's.  Every message starts with a fixed header:
 *
 *   u8  version   (AUTHP_VERSION; anything else is rejected)
 *   u8  type      (enum authp_type)
 *   u16 reserved  (0)
 *   u32 id        (request id chosen by the network side, echoed back)
 *
 * followed by type-specific fields, all big-endian; strings are u16 length +
 * bytes (no NUL on the wire, NUL bytes inside are rejected).  Every length is
 * checked against the field's limit before anything is copied; trailing
 * bytes are an error.  Encoders/decoders do no I/O.
 *
 * An AUTHP_REQ_LOGIN datagram carries exactly one descriptor (SCM_RIGHTS):
 * the viewer's connected socket.  The helper learns the source from it
 * (getpeername / SO_PEERCRED, see auth/peer.h) and closes it at once; a
 * request without it, with more, or with a non-socket is malformed.  The
 * rhost field is only the network process's view, for the log: the helper
 * never uses it for PAM, logging or failure accounting. */
#ifndef VMGATE_AUTH_PROTO_H
#define VMGATE_AUTH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 2: every AUTHP_REQ_LOGIN carries the viewer's socket (SCM_RIGHTS) */
#define AUTHP_VERSION     2
#define AUTHP_MAX_MSG     2048
#define AUTHP_USER_MAX    255
#define AUTHP_PASS_MAX    1024
#define AUTHP_VM_MAX      63
#define AUTHP_RHOST_MAX   63
#define AUTHP_DETAIL_MAX  127
/* Control buffer of the helper's recvmsg, in descriptors: one is expected;
 * room for a few more so that "too many" is seen and they are all closed. */
#define AUTHP_FDS_RECV_MAX 4
/* The longest AUTHP_RESP_LOGIN: header, result, detail at its limit. */
#define AUTHP_RESP_MAX    (8 + 1 + 2 + AUTHP_DETAIL_MAX)

/* Certificate material (AUTHP_RESP_CERT): the PEM chain file and the PEM
 * key file as the helper read them, each at most this long.  The payload
 * starts with its own format byte, so it can change without a new header
 * version. */
#define AUTHP_CERT_FORMAT     1
#define AUTHP_CERT_CHAIN_MAX  65536
#define AUTHP_CERT_KEY_MAX    16384
/* header, format, result, detail, u32 + chain, u32 + key */
#define AUTHP_CERT_RESP_MAX   (8 + 1 + 1 + 2 + AUTHP_DETAIL_MAX + 4 + AUTHP_CERT_CHAIN_MAX + \
                               4 + AUTHP_CERT_KEY_MAX)
/* An AUTHP_RESP_CERT without material (a failure). */
#define AUTHP_CERT_ERR_MAX    (8 + 1 + 1 + 2 + AUTHP_DETAIL_MAX + 4 + 4)
/* Config reload (AUTHP_RESP_RELOAD): the config text as the helper read
 * it, the error (FILE:LINE: message) when it did not take it, and the
 * listening sockets it bound for the reloads so far (SCM_RIGHTS, one per
 * entry, in order). */
#define AUTHP_RELOAD_TEXT_MAX 131072
#define AUTHP_RELOAD_ERR_MAX  511
#define AUTHP_RELOAD_FDS_MAX  128
/* header, result, gen, str err, u32 + text, u8 n, n * (u8 kind, u16 port, str vm) */
#define AUTHP_RELOAD_RESP_MAX (8 + 1 + 4 + 2 + AUTHP_RELOAD_ERR_MAX + 4 + AUTHP_RELOAD_TEXT_MAX + \
                               1 + AUTHP_RELOAD_FDS_MAX * (1 + 2 + 2 + AUTHP_VM_MAX))
/* The longest message either side ever receives. */
#define AUTHP_RECV_MAX        (AUTHP_CERT_RESP_MAX > AUTHP_RELOAD_RESP_MAX ? \
                               AUTHP_CERT_RESP_MAX : AUTHP_RELOAD_RESP_MAX)

enum authp_type {
    AUTHP_REQ_LOGIN = 1,   /* network -> helper: check user/password, then ACL for vm */
    AUTHP_RESP_LOGIN = 2,  /* helper -> network */
    AUTHP_REQ_IDLE = 3,    /* network -> helper, never answered: a connection from
                            * rhost held an unauthenticated slot until it was closed
                            * for that (first_byte_timeout, login_timeout before its
                            * credentials, or evicted); counts like a failed login */
    AUTHP_REQ_QMP = 4,     /* network -> helper: run a fixed QMP operation on a VM
                              (auth/qmpb.h); answered with AUTHP_RESP_LOGIN: ok, error,
                              or qmp-refused, the detail QEMU's reason or the status */
    AUTHP_REQ_CERT = 5,    /* network -> helper: read cert = and key = (as root), send them */
    AUTHP_RESP_CERT = 6,   /* helper -> network: the PEM texts, or why not */
    AUTHP_EVT_BAN = 7,     /* helper -> every network process, unasked (id 0): a source
                              was put in the ban set until a time, or its ban ended */
    AUTHP_REQ_SESSIONS = 8,/* network -> helper, never answered: this network process now
                              has count live sessions of vm (idle_pause; absolute, so a
                              lost report is mended by the next) */
    AUTHP_NOTE_IDLE = 9,   /* helper -> network, unsolicited: vm's idle state changed
                              (auth/idle.h); event: what happened, for the audit trail */
    AUTHP_REQ_RELOAD = 10, /* network -> helper: re-read the config (reread = 1) or just
                              send the one in force (0, the other network processes) */
    AUTHP_RESP_RELOAD = 11,/* helper -> network: the config text in force and its new
                              listening sockets, or why the re-read was refused */
    AUTHP_REQ_VMS = 12,    /* network -> helper: check user/password like a login (same
                            * worker, fail delay, failure counting; the viewer's socket
                            * attached), then list the VMs with a vnc backend whose
                            * users/groups allow the user; vm must be empty.  Answered with
                            * AUTHP_RESP_VMS on success, AUTHP_RESP_LOGIN on failure */
    AUTHP_RESP_VMS = 13,   /* helper -> network: result, detail, the VM names */
    AUTHP_REQ_POWER = 14,  /* network -> helper: a power action (or the check for one) on
                              a VM for the principal whose socket is attached; answered
                              with AUTHP_RESP_LOGIN (AUTHP_PWR_FORGET: never answered) */
};

enum authp_result {
    AUTHP_OK = 0,
    AUTHP_BAD_PASSWORD = 1,   /* user exists, password wrong */
    AUTHP_UNKNOWN_USER = 2,
    AUTHP_NOT_ALLOWED = 3,    /* credentials fine, user not in the VM's users/groups */
    AUTHP_ACCOUNT = 4,        /* pam_acct_mgmt refused (expired, locked, must change) */
    AUTHP_ERROR = 5,          /* helper-side failure (PAM misconfigured, overloaded) */
    AUTHP_QMP_REFUSED = 6,    /* AUTHP_REQ_QMP: QEMU answered the operation with an error */
};

struct authp_login_req {
    uint32_t id;
    char vm[AUTHP_VM_MAX + 1];
    char user[AUTHP_USER_MAX + 1];
    char password[AUTHP_PASS_MAX + 1];
    char rhost[AUTHP_RHOST_MAX + 1];     /* the network side's claim; the helper replaces it
                                            with the peer of the attached socket */
};

struct authp_login_resp {
    uint32_t id;
    uint8_t result;                      /* enum authp_result */
    char detail[AUTHP_DETAIL_MAX + 1];   /* for the log only, never sent to a viewer */
    double submitted;                    /* not on the wire: the loop's ev_now() when the
                                            request was submitted (set by auth_client) */
    const struct authp_vms_resp *vms;    /* not on the wire: the list of an AUTHP_REQ_VMS
                                            answered AUTHP_OK, valid during the callback;
                                            NULL otherwise */
};

/* AUTHP_RESP_VMS: at most AUTHP_VMS_MAX names (a config with more VMs
 * answers the first AUTHP_VMS_MAX the user may open, truncated set). */
#define AUTHP_VMS_MAX      64
/* header, result, detail, u8 truncated, u16 count, count x str name */
#define AUTHP_VMS_RESP_MAX (8 + 1 + 2 + AUTHP_DETAIL_MAX + 1 + 2 + \
                            AUTHP_VMS_MAX * (2 + AUTHP_VM_MAX))
struct authp_vms_resp {
    uint32_t id;
    uint8_t result;                      /* AUTHP_OK only (failures come as RESP_LOGIN) */
    char detail[AUTHP_DETAIL_MAX + 1];   /* the user's name, for the log */
    uint8_t truncated;                   /* 1: the user may open more than AUTHP_VMS_MAX */
    unsigned n;
    char names[AUTHP_VMS_MAX][AUTHP_VM_MAX + 1];
};

struct authp_idle_req {
    uint32_t id;
    char rhost[AUTHP_RHOST_MAX + 1];     /* numeric source address */
};

/* An AUTHP_RESP_CERT.  chain/key point at the PEM texts (not NUL
 * terminated): the encoder's caller owns them; after decoding they point
 * into the message buffer, which the receiver wipes once it has built its
 * TLS context (the key is in there).  result is AUTHP_OK with both texts
 * non-empty, or AUTHP_ERROR with both empty and the reason in detail. */
struct authp_cert_resp {
    uint32_t id;
    uint8_t result;
    char detail[AUTHP_DETAIL_MAX + 1];
    const uint8_t *chain;
    size_t chain_len;
    const uint8_t *key;
    size_t key_len;
};

/* Encoders return the message length (<= cap) or -1 if a field is over its
 * limit or cap is too small.  Decoders return 0, or -1 on any malformed
 * input (short, long, wrong version/type, over-limit length, NUL inside). */
int authp_encode_login_req(const struct authp_login_req *r, uint8_t *buf, size_t cap);
int authp_decode_login_req(const uint8_t *buf, size_t len, struct authp_login_req *r);
int authp_encode_login_resp(const struct authp_login_resp *r, uint8_t *buf, size_t cap);
int authp_decode_login_resp(const uint8_t *buf, size_t len, struct authp_login_resp *r);
/* AUTHP_REQ_VMS: the login request's layout and limits under its own type
 * (vm must be empty). */
int authp_encode_vms_req(const struct authp_login_req *r, uint8_t *buf, size_t cap);
int authp_decode_vms_req(const uint8_t *buf, size_t len, struct authp_login_req *r);
/* AUTHP_RESP_VMS: result must be AUTHP_OK, n <= AUTHP_VMS_MAX, every name
 * 1..AUTHP_VM_MAX bytes; at most AUTHP_VMS_RESP_MAX bytes. */
int authp_encode_vms_resp(const struct authp_vms_resp *r, uint8_t *buf, size_t cap);
int authp_decode_vms_resp(const uint8_t *buf, size_t len, struct authp_vms_resp *r);
int authp_encode_idle_req(const struct authp_idle_req *r, uint8_t *buf, size_t cap);
int authp_decode_idle_req(const uint8_t *buf, size_t len, struct authp_idle_req *r);
/* AUTHP_REQ_QMP: op (enum qmpb_op) on vm; arg its argument (the SPICE
 * ticket); conn names the handed-off fd.  The socket to hand off, when the
 * op takes one, is attached (SCM_RIGHTS); the network process never names a
 * monitor path or sends JSON. */
#define AUTHP_QMP_ARG_MAX 63
struct authp_qmp_req {
    uint32_t id;
    uint8_t op;
    uint64_t conn;
    char vm[AUTHP_VM_MAX + 1];
    char arg[AUTHP_QMP_ARG_MAX + 1];
};
int authp_encode_qmp_req(const struct authp_qmp_req *r, uint8_t *buf, size_t cap);
int authp_decode_qmp_req(const uint8_t *buf, size_t len, struct authp_qmp_req *r);
/* AUTHP_EVT_BAN: the helper banned key (a source key, auth/bans.h) until
 * until_ms (wall clock, ms since the epoch), or (banned false) the ban
 * ended at until_ms.  The network processes keep the list to refuse a banned
 * viewer that comes through a balancer (the kernel ban set only sees the
 * balancer), and the first writes the audit events ban / unban.
 * Wire: u8 banned (0/1), str key, u32 until_ms >> 32, u32 until_ms low. */
struct authp_ban_evt {
    bool banned;
    char key[AUTHP_RHOST_MAX + 1];
    uint64_t until_ms;
};
int authp_encode_ban_evt(const struct authp_ban_evt *e, uint8_t *buf, size_t cap);
int authp_decode_ban_evt(const uint8_t *buf, size_t len, struct authp_ban_evt *e);
/* AUTHP_REQ_SESSIONS (id 0, no descriptor). */
struct authp_sessions_req {
    uint32_t id;
    uint32_t count;
    char vm[AUTHP_VM_MAX + 1];
};
int authp_encode_sessions_req(const struct authp_sessions_req *r, uint8_t *buf, size_t cap);
int authp_decode_sessions_req(const uint8_t *buf, size_t len, struct authp_sessions_req *r);
/* AUTHP_NOTE_IDLE (id 0).  state: enum idle_state; event: enum idle_event
 * (audit: set on one network process's copy only); since: wall ms. */
struct authp_idle_note {
    uint32_t id;
    uint8_t state, event, audit;
    uint64_t since;
    char vm[AUTHP_VM_MAX + 1];
    char status[16];
    char why[AUTHP_DETAIL_MAX + 1];
};
int authp_encode_idle_note(const struct authp_idle_note *r, uint8_t *buf, size_t cap);
int authp_decode_idle_note(const uint8_t *buf, size_t len, struct authp_idle_note *r);
/* AUTHP_REQ_POWER: action on vm for whoever is at the other end of the
 * attached socket (exactly one, SCM_RIGHTS): a viewer's socket (XVP; the
 * helper only believes a session it authenticated itself, see helper.c)
 * or a control-socket client's (`vmgate vm`; its uid from SO_PEERCRED).
 * conn: the network process's connection id, for the log only. */
enum authp_power_action {
    AUTHP_PWR_CHECK = 1,     /* may this principal use power on vm? (XVP_INIT) */
    AUTHP_PWR_STATUS,        /* query-status; needs users/groups */
    AUTHP_PWR_SHUTDOWN,      /* system_powerdown */
    AUTHP_PWR_RESET,         /* system_reset */
    AUTHP_PWR_REBOOT,        /* guest agent guest-shutdown mode reboot (needs qga) */
    AUTHP_PWR_PAUSE,         /* stop */
    AUTHP_PWR_RESUME,        /* cont */
    AUTHP_PWR_FORGET,        /* the viewer's session ended: forget it (never answered) */
    AUTHP_PWR_MAX_,
};
struct authp_power_req {
    uint32_t id;
    uint8_t action;          /* enum authp_power_action */
    uint64_t conn;
    char vm[AUTHP_VM_MAX + 1];
};
int authp_encode_power_req(const struct authp_power_req *r, uint8_t *buf, size_t cap);
int authp_decode_power_req(const uint8_t *buf, size_t len, struct authp_power_req *r);
/* "shutdown", "reset", ... for action, or NULL if it is not one. */
const char *authp_power_name(unsigned action);
/* The action named s ("status", "shutdown", "reset", "reboot", "pause",
 * "resume"), or 0: the words `vmgate vm` and the control socket accept. */
unsigned authp_power_parse(const char *s);

/* AUTHP_REQ_CERT is the header alone. */
int authp_encode_cert_req(uint32_t id, uint8_t *buf, size_t cap);
int authp_decode_cert_req(const uint8_t *buf, size_t len, uint32_t *id);
/* At most AUTHP_CERT_RESP_MAX bytes; the encoder wipes buf on failure. */
int authp_encode_cert_resp(const struct authp_cert_resp *r, uint8_t *buf, size_t cap);
int authp_decode_cert_resp(const uint8_t *buf, size_t len, struct authp_cert_resp *r);
/* AUTHP_REQ_RELOAD: header, u8 reread (0 or 1). */
int authp_encode_reload_req(uint32_t id, int reread, uint8_t *buf, size_t cap);
int authp_decode_reload_req(const uint8_t *buf, size_t len, uint32_t *id, int *reread);
/* One listening socket of an AUTHP_RESP_RELOAD (the fd travels beside the
 * message): kind is enum cfg_lkind (common/cfgdiff.h); a TCP one is named
 * by its port, a socket_dir one by its VM. */
struct authp_lsn {
    uint8_t kind;
    uint16_t port;
    char vm[AUTHP_VM_MAX + 1];
};
/* An AUTHP_RESP_RELOAD.  result AUTHP_OK: text is the config in force
 * (generation gen, counted by the helper from 1 at start) and ls its
 * listeners bound since start; AUTHP_ERROR: err says why (the old config
 * stays in force; text and ls may still describe it).  text points into
 * the message after decoding. */
struct authp_reload_resp {
    uint32_t id;
    uint8_t result;
    uint32_t gen;
    char err[AUTHP_RELOAD_ERR_MAX + 1];
    const uint8_t *text;
    size_t text_len;
    unsigned n_ls;
    struct authp_lsn ls[AUTHP_RELOAD_FDS_MAX];
};
int authp_encode_reload_resp(const struct authp_reload_resp *r, uint8_t *buf, size_t cap);
int authp_decode_reload_resp(const uint8_t *buf, size_t len, struct authp_reload_resp *r);
/* The type byte of a message with a readable header of our version, else
 * -1.  Lets a receiver pick the decoder. */
int authp_peek_type(const uint8_t *buf, size_t len);
/* The id of a message that did not decode, when at least its header's
 * version and id are readable (len >= 8, version AUTHP_VERSION; the rest,
 * even the length limit, is not checked): 0, else -1.  Lets the helper
 * answer a malformed request under the id it came with. */
int authp_peek_id(const uint8_t *buf, size_t len, uint32_t *id);

const char *authp_result_name(enum authp_result r);

#endif
