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
/* The longest message either side ever receives. */
#define AUTHP_RECV_MAX        AUTHP_CERT_RESP_MAX

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
    /* 7..9 on main: AUTHP_EVT_BAN (pp2), AUTHP_REQ_SESSIONS, AUTHP_NOTE_IDLE (idle) */
    AUTHP_REQ_POWER = 10,   /* network -> helper: a power action (or the check for one) on
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
