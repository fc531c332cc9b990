/* Client addresses: address blocks in CIDR notation ("10.0.0.0/8", "::1/128", "127.0.0.1")
 * and the key a per-client limit counts by: an IPv4 address, or the /64 of an IPv6 address
 * (one subscriber usually holds a whole /64). An IPv4-mapped IPv6 address ("::ffff:1.2.3.4")
 * is its IPv4 address. No allocation; no I/O. */
#ifndef RB_ADDR_H
#define RB_ADDR_H

#include <stddef.h>
#include <stdint.h>

struct rb_cidr {
    int family;              /* 4 or 6 */
    unsigned char bytes[16]; /* network address; 4 used for IPv4 */
    int bits;                /* prefix length */
};

/* Parses "ADDR" or "ADDR/BITS". RB_OK, or RB_EINVAL (out untouched). */
int rb_cidr_parse(const char *s, struct rb_cidr *out);
/* Whether the textual address addr lies in one of the n blocks. 0 for an unparsable addr. */
int rb_cidr_match(const struct rb_cidr *list, size_t n, const char *addr);

/* The limit key of a textual address: 9 bytes (family byte + IPv4 address, or family byte +
 * the first 8 bytes of an IPv6 address). RB_OK, or RB_EINVAL for text that is no address. */
#define RB_ADDR_KEY_LEN 9
int rb_addr_key(const char *addr, unsigned char key[RB_ADDR_KEY_LEN]);

#endif
