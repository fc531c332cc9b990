/* Tracking numbers: random Crockford base32 with a GF(32) check symbol (see tracking.h). */
#include <stdatomic.h>
#include <string.h>

#include <sodium.h>

#include "base/common.h"
#include "base/text.h"
#include "base/tracking.h"

#define RB_TRACKING_SYMBOLS (RB_TRACKING_DATA + 1) /* data + check */

static const char rb_tracking_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* Multiplication by a = x in GF(2^5) modulo x^5 + x^2 + 1. */
static unsigned rb_tracking_mul_a(unsigned v)
{
    v <<= 1;
    if (v & 0x20u)
        v ^= 0x25u;
    return v;
}

/* Horner over GF(32): acc = a*acc + d. Zero over data + check means the check matches. */
static unsigned rb_tracking_sum(const unsigned char *vals, size_t n)
{
    unsigned acc = 0;

    for (size_t i = 0; i < n; i++)
        acc = rb_tracking_mul_a(acc) ^ vals[i];
    return acc;
}

char rb_tracking_check_symbol(const unsigned char vals[RB_TRACKING_DATA])
{
    return rb_tracking_alphabet[rb_tracking_mul_a(rb_tracking_sum(vals, RB_TRACKING_DATA))];
}

static void rb_tracking_format(const unsigned char vals[RB_TRACKING_SYMBOLS],
                               char out[RB_TRACKING_LEN])
{
    char *p = out;

    memcpy(p, RB_TRACKING_PREFIX "-", 3);
    p += 3;
    for (size_t i = 0; i < RB_TRACKING_SYMBOLS; i++) {
        if (i == 5 || i == 10)
            *p++ = '-';
        *p++ = rb_tracking_alphabet[vals[i]];
    }
    *p = '\0';
}

/* sodium_init() is itself idempotent and thread-safe; the flag only skips the call. */
static int rb_tracking_init(void)
{
    static atomic_int ready;

    if (atomic_load(&ready))
        return RB_OK;
    if (sodium_init() < 0)
        return RB_ERR;
    atomic_store(&ready, 1);
    return RB_OK;
}

int rb_tracking_new(char out[RB_TRACKING_LEN])
{
    unsigned char vals[RB_TRACKING_SYMBOLS];
    unsigned char rnd[8];
    uint64_t bits = 0;

    if (rb_tracking_init() != RB_OK) {
        out[0] = '\0';
        return RB_ERR;
    }
    randombytes_buf(rnd, sizeof(rnd));
    for (size_t i = 0; i < sizeof(rnd); i++)
        bits = (bits << 8) | rnd[i];
    for (size_t i = 0; i < RB_TRACKING_DATA; i++) {
        vals[i] = (unsigned char)(bits & 31u);
        bits >>= 5;
    }
    sodium_memzero(rnd, sizeof(rnd));
    vals[RB_TRACKING_DATA] =
        (unsigned char)rb_tracking_mul_a(rb_tracking_sum(vals, RB_TRACKING_DATA));
    rb_tracking_format(vals, out);
    return RB_OK;
}

/* Value 0..31 of one typed character (after Crockford's forgiving reading); -1 if it is not
 * a symbol. Digits in Urdu or Arabic-Indic script count as digits. */
static int rb_tracking_value(uint32_t cp)
{
    int d = rb_text_digit(cp);
    const char *hit;

    if (d >= 0)
        return d;
    if (cp >= 'a' && cp <= 'z')
        cp -= 'a' - 'A';
    if (cp == 'I' || cp == 'L')
        return 1;
    if (cp == 'O')
        return 0;
    if (cp < 'A' || cp > 'Z')
        return -1;
    hit = strchr(rb_tracking_alphabet, (int)cp);
    return hit ? (int)(hit - rb_tracking_alphabet) : -1; /* U is not a symbol */
}

/* Separators a citizen may type between groups: ASCII and Unicode spaces, hyphens and
 * dashes (U+2010..2015, U+2212 MINUS SIGN), dots, underscores. */
static int rb_tracking_separator(uint32_t cp)
{
    return cp == '-' || cp == '.' || cp == '_' || rb_text_is_space(cp) ||
           (cp >= 0x2010u && cp <= 0x2015u) || cp == 0x2212u;
}

static int rb_tracking_fail(char out[RB_TRACKING_LEN], enum rb_tracking_fault f,
                            enum rb_tracking_fault *fault, const char **why)
{
    out[0] = '\0';
    if (fault)
        *fault = f;
    if (why)
        *why = f == RB_TRACKING_MISTYPED
                   ? "the tracking number has a typing mistake; please check it"
                   : "this is not a tracking number";
    return RB_EINVAL;
}

int rb_tracking_parse_why(const char *in, char out[RB_TRACKING_LEN],
                          enum rb_tracking_fault *fault, const char **why)
{
    unsigned char vals[RB_TRACKING_SYMBOLS + 2]; /* room for the prefix's two symbols */
    size_t n = 0, len, pos = 0, first_group = 0;
    const unsigned char *v = vals;

    if (!in)
        return rb_tracking_fail(out, RB_TRACKING_MALFORMED, fault, why);
    len = strlen(in);
    while (pos < len) {
        uint32_t cp;
        int val;

        if (rb_text_decode(in, len, &pos, &cp) != RB_OK)
            return rb_tracking_fail(out, RB_TRACKING_MALFORMED, fault, why);
        if (rb_tracking_separator(cp)) {
            if (!first_group)
                first_group = n;
            continue;
        }
        val = rb_tracking_value(cp);
        if (val < 0 || n == sizeof(vals))
            return rb_tracking_fail(out, RB_TRACKING_MALFORMED, fault, why);
        vals[n++] = (unsigned char)val;
    }
    /* The "RB" prefix (R = 24, B = 11 in the alphabet) is there when the symbols number 13,
     * or when "RB" stands alone as the first group ("RB-..."; data groups have 5 symbols):
     * then a short number is malformed rather than read as data starting with R, B. */
    if (n == RB_TRACKING_SYMBOLS + 2 || (first_group == 2 && vals[0] == 24 && vals[1] == 11)) {
        if (n != RB_TRACKING_SYMBOLS + 2 || vals[0] != 24 || vals[1] != 11)
            return rb_tracking_fail(out, RB_TRACKING_MALFORMED, fault, why);
        v += 2;
    } else if (n != RB_TRACKING_SYMBOLS) {
        return rb_tracking_fail(out, RB_TRACKING_MALFORMED, fault, why);
    }
    if (rb_tracking_sum(v, RB_TRACKING_SYMBOLS) != 0)
        return rb_tracking_fail(out, RB_TRACKING_MISTYPED, fault, why);
    rb_tracking_format(v, out);
    if (fault)
        *fault = RB_TRACKING_FAULT_NONE;
    return RB_OK;
}

int rb_tracking_parse(const char *in, char out[RB_TRACKING_LEN])
{
    return rb_tracking_parse_why(in, out, NULL, NULL);
}
