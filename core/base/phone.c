/* Phone number normalisation to E.164, Pakistani forms first (see phone.h). */
#include <string.h>

#include "base/common.h"
#include "base/phone.h"
#include "base/text.h"

#define RB_PHONE_INPUT_MAX 64 /* bytes; a phone number with its decoration is far shorter */
#define RB_PHONE_DIGITS_MAX 17 /* "00" + 15 digits, before the prefix is taken off */
#define RB_PHONE_E164_MIN 8
#define RB_PHONE_E164_MAX 15

static int rb_phone_fail(char out[RB_PHONE_MAX], const char **why, const char *reason)
{
    out[0] = '\0';
    if (why)
        *why = reason;
    return RB_EINVAL;
}

/* Characters that decorate a number without changing it. */
static int rb_phone_separator(uint32_t cp)
{
    return cp == ' ' || cp == '-' || cp == '.' || cp == '/' || cp == '(' || cp == ')' ||
           (rb_text_is_space(cp) && cp >= 0x80u) || (cp >= 0x2010u && cp <= 0x2015u) ||
           cp == 0x2212u;
}

/* Invisible marks dragged along by copy-paste from right-to-left text (WhatsApp wraps
 * numbers in U+202A ... U+202C) and zero-width characters. */
static int rb_phone_invisible(uint32_t cp)
{
    return cp == 0x061Cu || (cp >= 0x200Bu && cp <= 0x200Fu) ||
           (cp >= 0x202Au && cp <= 0x202Eu) || (cp >= 0x2060u && cp <= 0x2069u) ||
           cp == 0xFEFFu;
}

/* Checks the national significant number of a Pakistani number (the digits after 92) and
 * writes "+92" + nsn. */
static int rb_phone_pk(const char *nsn, size_t n, char out[RB_PHONE_MAX], const char **why)
{
    if (n > 0 && nsn[0] == '0') { /* "+92 (0)300 ...": the trunk 0 written after 92 */
        nsn++;
        n--;
    }
    if (n == 0)
        return rb_phone_fail(out, why, "is too short");
    if (nsn[0] == '3') {
        if (n < 10)
            return rb_phone_fail(out, why, "is too short for a mobile number (03xx xxxxxxx)");
        if (n > 10)
            return rb_phone_fail(out, why, "is too long for a mobile number (03xx xxxxxxx)");
    } else if (nsn[0] == '0' || nsn[0] == '1') {
        return rb_phone_fail(out, why, "is not a Pakistani number");
    } else {
        if (n < 9)
            return rb_phone_fail(out, why, "is too short; a landline number needs its area code");
        if (n > 10)
            return rb_phone_fail(out, why, "is too long");
    }
    memcpy(out, "+92", 3);
    memcpy(out + 3, nsn, n);
    out[3 + n] = '\0';
    return RB_OK;
}

int rb_phone_normalize(const char *in, char out[RB_PHONE_MAX], const char **why)
{
    char d[RB_PHONE_DIGITS_MAX + 1];
    size_t n = 0, len, pos = 0;
    int plus = 0;
    const char *p;

    if (!in)
        return rb_phone_fail(out, why, "is empty");
    len = strlen(in);
    if (len > RB_PHONE_INPUT_MAX)
        return rb_phone_fail(out, why, "is too long");
    while (pos < len) {
        uint32_t cp;
        int v;

        if (rb_text_decode(in, len, &pos, &cp) != RB_OK)
            return rb_phone_fail(out, why, "is not valid UTF-8");
        v = rb_text_digit(cp);
        if (v >= 0) {
            if (n == RB_PHONE_DIGITS_MAX)
                return rb_phone_fail(out, why, "is too long");
            d[n++] = (char)('0' + v);
        } else if (cp == '+' || cp == 0xFF0Bu) { /* FULLWIDTH PLUS SIGN from CJK keyboards */
            if (plus || n > 0)
                return rb_phone_fail(out, why, "has a + that is not at the start");
            plus = 1;
        } else if (cp < 0x20u || (cp >= 0x7Fu && cp <= 0x9Fu)) {
            return rb_phone_fail(out, why, "contains a control character");
        } else if (rb_phone_separator(cp) || rb_phone_invisible(cp)) {
            continue;
        } else if ((cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z')) {
            return rb_phone_fail(out, why, "contains letters");
        } else {
            return rb_phone_fail(out, why, "contains a character that is not a digit");
        }
    }
    d[n] = '\0';
    if (n == 0)
        return rb_phone_fail(out, why, plus ? "has no digits" : "is empty");

    p = d;
    if (!plus && n >= 2 && d[0] == '0' && d[1] == '0') { /* "00": international prefix */
        plus = 1;
        p += 2;
        n -= 2;
    }
    if (plus) {
        if (n == 0)
            return rb_phone_fail(out, why, "has no digits");
        if (p[0] == '0')
            return rb_phone_fail(out, why, "has a country code starting with 0");
        if (n >= 2 && p[0] == '9' && p[1] == '2')
            return rb_phone_pk(p + 2, n - 2, out, why);
        if (n < RB_PHONE_E164_MIN)
            return rb_phone_fail(out, why, "is too short");
        if (n > RB_PHONE_E164_MAX)
            return rb_phone_fail(out, why, "is too long");
        out[0] = '+';
        memcpy(out + 1, p, n);
        out[n + 1] = '\0';
        return RB_OK;
    }
    if (p[0] == '0') /* trunk prefix: 0300..., 042... */
        return rb_phone_pk(p + 1, n - 1, out, why);
    if ((n == 11 || n == 12) && p[0] == '9' && p[1] == '2') /* 923001234567 */
        return rb_phone_pk(p + 2, n - 2, out, why);
    if (n == 10 && p[0] == '3') /* 3001234567: mobile without the trunk 0 */
        return rb_phone_pk(p, n, out, why);
    if (n > RB_PHONE_E164_MAX)
        return rb_phone_fail(out, why, "is too long");
    return rb_phone_fail(out, why, n < 10 ? "is too short; include the area code (0xx)"
                                          : "needs a + and the country code");
}

int rb_phone_last4(const char *phone, char out[RB_PHONE_LAST4_LEN])
{
    size_t k = 4, i;

    out[0] = '\0';
    if (!phone)
        return RB_EINVAL;
    out[4] = '\0';
    for (i = strlen(phone); i > 0 && k > 0; i--) {
        if (phone[i - 1] >= '0' && phone[i - 1] <= '9')
            out[--k] = phone[i - 1];
    }
    if (k > 0) {
        out[0] = '\0';
        return RB_EINVAL;
    }
    return RB_OK;
}

static int rb_phone_is_e164(const char *s, size_t *ndigits)
{
    size_t n = 0;

    if (!s || s[0] != '+' || s[1] == '0')
        return 0;
    for (const char *c = s + 1; *c; c++) {
        if (*c < '0' || *c > '9' || ++n > RB_PHONE_E164_MAX)
            return 0;
    }
    *ndigits = n;
    return n >= RB_PHONE_E164_MIN;
}

int rb_phone_mask(const char *e164, char out[RB_PHONE_MAX])
{
    size_t n, keep_head, i;
    char *w = out;

    if (!rb_phone_is_e164(e164, &n)) {
        out[0] = '\0';
        return RB_EINVAL;
    }
    keep_head = (e164[1] == '9' && e164[2] == '2') ? 2 : 0;
    *w++ = '+';
    for (i = 0; i < n; i++)
        *w++ = (i < keep_head || i >= n - 4) ? e164[1 + i] : '*';
    *w = '\0';
    return RB_OK;
}

int rb_phone_is_pk_mobile(const char *e164)
{
    size_t n;

    return rb_phone_is_e164(e164, &n) && n == 12 && strncmp(e164, "+923", 4) == 0;
}
