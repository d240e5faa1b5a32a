/* proxy/vnc_conn.h — the RFB/VeNCrypt protocol's states and hooks, shared
 * by the protocols that speak RFB to the viewer: vnc_proto (vnc_conn.c,
 * VeNCrypt X509Plain, TLS after the ack) and web_proto (web_conn.c, the
 * same states inside a WebSocket inside TLS, VeNCrypt Plain, no ack).
 *
 * A protocol that reuses them puts vnc_states[] first in its own table
 * (the step functions name their successors by these numbers) and a
 * struct vnc first in its private block. */
#ifndef VMGATE_PROXY_VNC_CONN_H
#define VMGATE_PROXY_VNC_CONN_H

#include "proxy/core.h"

/* The first two states are shared by every RFB table (vnc_proto over TLS,
 * vnc_local_proto on socket_dir, web_proto), so they have the same numbers
 * in all of them. */
enum vnc_state {
    VS_BACKEND_HANDSHAKE = CS_PROTO, /* RFB version/security None with the VM */
    VS_READ_CLIENTINIT,         /* SecurityResult OK sent, waiting for ClientInit */
    VS_READ_VERSION,            /* sent "RFB 003.008\n", waiting for the viewer's */
    VS_READ_SECTYPE,            /* offered [19], waiting for the choice */
    VS_READ_VC_VERSION,         /* sent VeNCrypt 0.2, waiting for the viewer's */
    VS_READ_VC_SUBTYPE,         /* offered [262] (or [256] in_tls), waiting for the choice */
    VS_SEND_ACK,                /* the 01 ack is queued; TLS starts once it left */
    VS_READ_CREDS,              /* inside TLS: U32 ulen, U32 plen, user, pass */
    VS_END_
};
#define VNC_N_STATES (VS_END_ - CS_PROTO)

enum bh_state { BH_VERSION, BH_SECTYPES, BH_SECRESULT };

struct rfbfilter;
struct vnc {
    bool local;                   /* vnc_local_proto: security None, SecurityResult 3.8 only */
    enum authp_result result;     /* local: the helper's answer */
    char who[AUTHP_DETAIL_MAX + 8];   /* local: "user bob" or "uid 1234", for a refusal */
    int minor;                    /* viewer's RFB minor version */
    int be_minor;                 /* backend's */
    enum bh_state bh;
    struct rfbfilter *flt;
    ev_timer wake;                /* the filter asked to be run again (rfbfilter_wake) */
    bool wake_on;
    bool in_tls;                  /* the channel is TLS already: offer Plain (256), no ack */
    bool relaying;                /* past ClientInit: the helper may remember the session */
    unsigned xvp_code;            /* the XVP action the helper runs now (0: none) */
};

extern const struct conn_state_def vnc_states[VNC_N_STATES];

void vnc_login_ok(struct conn *c);
void vnc_login_refuse(struct conn *c);
void vnc_backend_up(struct conn *c);
void vnc_vm_unavailable(struct conn *c, const char *detail, bool refused);
int vnc_filter(struct conn *c, enum conn_dir d, char *why, size_t whylen);
void vnc_destroy(struct conn *c);

#endif
