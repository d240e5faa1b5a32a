/* proxy/pp2.h — the PROXY protocol version 2 header (haproxy's
 * proxy-protocol.txt, section 2.2), as a TCP balancer such as haproxy
 * (`send-proxy-v2`) puts it before the viewer's first byte.
 *
 * Pure: bytes in, "need more / malformed / consumed N" out, no I/O.  The
 * core reads exactly what pp2_parse asks for (16 bytes, then the rest of the
 * announced length), so not one byte of the viewer's own stream (RFB
 * version, TLS ClientHello) is taken.  What is accepted:
 *   - the 12-byte signature "\r\n\r\n\0\r\nQUIT\n" (a mismatch is refused
 *     at the first wrong byte; a v1 text header "PROXY ..." is named as such);
 *   - version 2; command LOCAL (0x20: the balancer's own connection, e.g. a
 *     health check: the connection keeps its TCP peer) or PROXY (0x21);
 *   - with PROXY: family TCP over IPv4 (0x11) or IPv6 (0x21), whose address
 *     block must fit the announced length, or UNSPEC (0x00: taken like
 *     LOCAL); UDP, unix sockets and unknown families are refused;
 *   - an announced length of at most PP2_LEN_MAX; what follows the address
 *     block is TLVs, each of which must fit the length exactly (a TLV
 *     running past the header is refused); their contents are ignored. */
#ifndef VMGATE_PROXY_PP2_H
#define VMGATE_PROXY_PP2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PP2_SIG_LEN  12
#define PP2_HDR_MIN  16            /* signature, ver/cmd, family, length */
#define PP2_LEN_MAX  512           /* addresses (216 at most, unix) + TLVs */
#define PP2_TOTAL_MAX (PP2_HDR_MIN + PP2_LEN_MAX)

enum pp2_status {
    PP2_NEED = 0,   /* r->need: the total bytes needed so far */
    PP2_DONE = 1,   /* r->consumed bytes are the header; r->local or r->src */
    PP2_BAD = -1,   /* r->why says why */
};

struct pp2_result {
    size_t need;                    /* PP2_NEED */
    size_t consumed;                /* PP2_DONE: header length (16 + announced) */
    bool local;                     /* PP2_DONE: LOCAL or UNSPEC: keep the TCP peer */
    struct sockaddr_storage src;    /* PP2_DONE and !local: the viewer (AF_INET/AF_INET6) */
    struct sockaddr_storage dst;    /* ... and the address it connected to */
    const char *why;                /* PP2_BAD: a static string */
};

/* Parse the first n bytes of a connection that must start with a v2
 * header.  n may be anything from 0 up; bytes past the header are not
 * looked at.  See the top of this file for what is accepted. */
enum pp2_status pp2_parse(const uint8_t *b, size_t n, struct pp2_result *r);

/* Do the first n bytes look like a PROXY header (a prefix of the v2
 * signature at least 4 bytes long, or "PROXY " of v1)?  For a clear log
 * line when one comes from a source that is not in proxy_protocol. */
bool pp2_looks_like(const uint8_t *b, size_t n);

#endif
