/* common/addr.h — numeric addresses, prefixes, HOST:PORT and sockaddrs.
 *
 * The one place where vmgate turns address text into binary and back: the
 * config ([gateway] address, [firewall] allow, HOST:PORT backends), the
 * firewall (allowlists, bans), the auth helper's failure accounting, the
 * listeners, the backends and the connection log lines.  Everything here is
 * pure: no resolver, no sockets, no logging.
 *
 * What is accepted, everywhere:
 *   - addresses are numeric, exactly what inet_pton(3) takes: dotted quad
 *     IPv4 (four decimal parts, no leading zeros, so "1.2.3", "01.2.3.4"
 *     and "1.2.3.4.5" are refused) or IPv6 text;
 *   - zone ids ("fe80::1%eth0") are refused: nothing in vmgate carries a
 *     scope id (a listener, a backend and an nft element would each need
 *     one), and silently dropping it would bind or connect to a different
 *     link than the one written;
 *   - no host names (the firewall must never hand nft a name it resolves,
 *     and a backend is QEMU on this host), except "localhost" as a
 *     HOST:PORT host, which means 127.0.0.1;
 *   - no brackets, spaces or other decoration around a bare address. */
#ifndef VMGATE_ADDR_H
#define VMGATE_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ADDR_TEXT_MAX  46      /* INET6_ADDRSTRLEN: longest address text + NUL */
#define ADDR_NET_MAX   50      /* ... with "/128" */
#define ADDR_PORT_MAX  56      /* "[IPv6]:65535" + NUL */
#define ADDR_KEY_MAX   64      /* a source key: "a.b.c.d" or "x:x:x:x::/64" */

/* An address or prefix in binary.  family is 4 or 6; a[] holds the address
 * in network order (IPv4 in a[0..3], the rest zero); plen is the prefix
 * length (32 / 128 for a single address).  From addr_net_parse() the host
 * bits are cleared. */
struct addr_net {
    int family;
    uint8_t a[16];
    unsigned plen;
    bool had_host_bits;     /* the text had bits set past the prefix */
    bool was_mapped;        /* written as ::ffff:a.b.c.d (taken as IPv4) */
};

/* One numeric address, kept in the family it was written in (no IPv4-mapped
 * normalization: a listener on "::ffff:127.0.0.1" is an IPv6 socket).  For
 * what is accepted see the top of this file.  0, or -1 for anything else
 * (NULL, empty, longer than any address text). */
int addr_ip_parse(const char *s, struct addr_net *n);

/* "ADDR", or when allow_prefix "ADDR/LEN": the firewall's form of a source.
 * LEN is decimal, 1-3 digits, no sign, no leading zero, at most 32 / 128.
 * IPv4-mapped IPv6 ("::ffff:a.b.c.d", "::ffff:a.b.c.0/120") becomes IPv4,
 * because the packet the firewall sees from such a peer is IPv4; a mapped
 * prefix shorter than /96 is refused.  Host bits past the prefix are
 * cleared ("10.0.0.1/8" is 10.0.0.0/8, had_host_bits set), not refused.
 * On error returns -1 with a reason in err that quotes the (sanitised, cut)
 * input; err may be NULL when errlen is 0. */
int addr_net_parse(const char *s, bool allow_prefix, struct addr_net *n, char *err,
                   size_t errlen);
/* "10.0.0.0/8", "2001:db8::/32", or a bare address for a full-length
 * prefix; lower case, IPv6 compressed as inet_ntop(3) writes it. */
void addr_net_str(const struct addr_net *n, char *out, size_t cap);
bool addr_net_contains(const struct addr_net *outer, const struct addr_net *inner);
bool addr_net_overlaps(const struct addr_net *a, const struct addr_net *b);
/* Lies entirely inside 127.0.0.0/8 or is ::1. */
bool addr_net_is_loopback(const struct addr_net *n);
/* Shares any address with loopback (0.0.0.0/0 does). */
bool addr_net_touches_loopback(const struct addr_net *n);
/* 0.0.0.0 or :: as a single address. */
bool addr_net_is_unspecified(const struct addr_net *n);
/* Order: IPv4 before IPv6, then address bytes, then prefix length. */
int addr_net_cmp(const struct addr_net *a, const struct addr_net *b);

/* A TCP port: exactly n bytes of s, 1-5 decimal digits (leading zeros are
 * fine: "00001"), value 1..65535.  0 or -1. */
int addr_port_parse(const char *s, size_t n, uint16_t *out);

/* "A.B.C.D:PORT", "localhost:PORT" or "[IPv6]:PORT".  Copies the host
 * without brackets into host (hostcap bytes) and the port into *port.  An
 * IPv6 address must be in brackets, and only an IPv6 address may be;
 * "localhost" is the only name, in lower case.  0, or -1 with a short
 * reason in why ("missing port (use HOST:PORT)", "bad port (use
 * 1..65535)", ...), which does not quote the input. */
int addr_hostport_parse(const char *s, char *host, size_t hostcap, uint16_t *port, char *why,
                        size_t whylen);
/* The address of a host as addr_hostport_parse() returns it: "localhost"
 * is 127.0.0.1, else addr_ip_parse().  0 or -1. */
int addr_host_ip(const char *host, struct addr_net *n);
/* "host:port", or "[host]:port" when host holds a ':' (IPv6). */
void addr_hostport_str(const char *host, unsigned port, char *out, size_t cap);

/* A sockaddr_in / sockaddr_in6 for a single address (family as written)
 * and port, in *ss, its length in *len.  -1 if n is not a single address. */
int addr_sockaddr(const struct addr_net *n, uint16_t port, struct sockaddr_storage *ss,
                  socklen_t *len);
/* addr_host_ip() then addr_sockaddr(). */
int addr_host_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *ss,
                       socklen_t *len);
/* A peer's address as text: IPv4, IPv6, an IPv4-mapped IPv6 peer (what a
 * dual-stack listener reports for IPv4) as IPv4, anything else "local".
 * cap ADDR_TEXT_MAX always fits. */
void addr_sockaddr_str(const struct sockaddr *sa, char *out, size_t cap);
/* The same with the port: "192.0.2.7:5900", "[2001:db8::1]:5900", "local". */
void addr_sockaddr_str_port(const struct sockaddr *sa, char *out, size_t cap);

/* The source key failures and bans are counted by: the address for IPv4
 * (IPv4-mapped taken as IPv4), the /64 for IPv6 ("2001:db8:1:2::/64"), as
 * text that addr_net_parse(.., true, ..) reads back.  addr is a single
 * numeric address.  0, or -1 (not an address, or key too small). */
int addr_source_key(const char *addr, char *key, size_t keylen);
/* Bits of an address of family 4 or 6 (32, 128). */
unsigned addr_fam_bits(int family);
/* The network bits of byte i of an address with prefix length plen. */
uint8_t addr_net_bits(unsigned plen, unsigned i);

#endif
