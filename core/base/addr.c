/* Client addresses: CIDR blocks and per-client limit keys (see addr.h). */
#include "base/addr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

/* Text to family (4 or 6) and 16 bytes; an IPv4-mapped IPv6 address becomes IPv4. 0: not an
 * address. */
static int parse_addr(const char *s, unsigned char out[16])
{
    memset(out, 0, 16);
    if (inet_pton(AF_INET, s, out) == 1)
        return 4;
    if (inet_pton(AF_INET6, s, out) != 1)
        return 0;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(out, mapped, 12) == 0) {
        memmove(out, out + 12, 4);
        memset(out + 4, 0, 12);
        return 4;
    }
    return 6;
}

int rb_cidr_parse(const char *s, struct rb_cidr *out)
{
    if (!s || !out)
        return RB_EINVAL;
    char buf[64];
    size_t len = strlen(s);
    if (len == 0 || len >= sizeof(buf))
        return RB_EINVAL;
    memcpy(buf, s, len + 1);
    char *slash = strchr(buf, '/');
    long bits = -1;
    if (slash) {
        *slash = '\0';
        const char *b = slash + 1;
        if (*b == '\0' || strlen(b) > 3 || strspn(b, "0123456789") != strlen(b))
            return RB_EINVAL;
        bits = strtol(b, NULL, 10);
    }
    struct rb_cidr c;
    c.family = parse_addr(buf, c.bytes);
    if (c.family == 0)
        return RB_EINVAL;
    int max = c.family == 4 ? 32 : 128;
    if (bits > max)
        return RB_EINVAL;
    c.bits = bits < 0 ? max : (int)bits;
    for (int i = 0; i < 16; i++) { /* clear the host bits */
        int keep = c.bits - 8 * i;
        if (keep <= 0)
            c.bytes[i] = 0;
        else if (keep < 8)
            c.bytes[i] &= (unsigned char)(0xff << (8 - keep));
    }
    *out = c;
    return RB_OK;
}

static int in_block(const struct rb_cidr *c, int family, const unsigned char *a)
{
    if (c->family != family)
        return 0;
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->bytes, a, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == c->bytes[full];
}

int rb_cidr_match(const struct rb_cidr *list, size_t n, const char *addr)
{
    if (!addr || n == 0)
        return 0;
    unsigned char a[16];
    int family = parse_addr(addr, a);
    if (family == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (in_block(&list[i], family, a))
            return 1;
    return 0;
}

int rb_addr_key(const char *addr, unsigned char key[RB_ADDR_KEY_LEN])
{
    unsigned char a[16];
    int family = addr ? parse_addr(addr, a) : 0;
    if (family == 0)
        return RB_EINVAL;
    memset(key, 0, RB_ADDR_KEY_LEN);
    key[0] = (unsigned char)family;
    memcpy(key + 1, a, family == 4 ? 4 : 8);
    return RB_OK;
}
