/* Input hygiene: strict UTF-8, control characters, bidi overrides, zalgo, trimming,
 * whitespace collapsing and Urdu/Arabic-Indic digits. The decisions are listed in text.h. */
#include <string.h>

#include "base/common.h"
#include "base/text.h"

/* What clean does with one code point. */
enum rb_text_class {
    RB_TEXT_C_VISIBLE,   /* kept; marks the end of content for trimming */
    RB_TEXT_C_SPACE,     /* horizontal whitespace: trimmed, collapsible */
    RB_TEXT_C_NEWLINE,   /* "\n", "\r", U+0085, U+2028, U+2029 */
    RB_TEXT_C_INVISIBLE, /* zero-width format characters: kept inside, trimmed at the ends */
    RB_TEXT_C_DROP,      /* bidi embedding/override/isolate without RB_TEXT_BIDI */
};

static int rb_text_is_cont(unsigned char b)
{
    return (b & 0xC0u) == 0x80u;
}

int rb_text_decode(const char *s, size_t len, size_t *pos, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s + *pos;
    size_t left = len - *pos;
    unsigned char b0 = p[0];
    unsigned char lo = 0x80u, hi = 0xBFu; /* allowed range of the second byte */
    size_t need;
    uint32_t c;

    if (b0 < 0x80u) {
        *cp = b0;
        *pos += 1;
        return RB_OK;
    }
    if (b0 >= 0xC2u && b0 <= 0xDFu) {
        need = 2;
        c = b0 & 0x1Fu;
    } else if (b0 >= 0xE0u && b0 <= 0xEFu) {
        need = 3;
        c = b0 & 0x0Fu;
        if (b0 == 0xE0u)
            lo = 0xA0u; /* overlong below U+0800 */
        else if (b0 == 0xEDu)
            hi = 0x9Fu; /* U+D800..DFFF are UTF-16 surrogates */
    } else if (b0 >= 0xF0u && b0 <= 0xF4u) {
        need = 4;
        c = b0 & 0x07u;
        if (b0 == 0xF0u)
            lo = 0x90u; /* overlong below U+10000 */
        else if (b0 == 0xF4u)
            hi = 0x8Fu; /* above U+10FFFF */
    } else {
        return RB_EINVAL; /* continuation byte, C0/C1 (overlong ASCII), F5..FF */
    }
    if (left < need || p[1] < lo || p[1] > hi)
        return RB_EINVAL;
    c = (c << 6) | (p[1] & 0x3Fu);
    for (size_t i = 2; i < need; i++) {
        if (!rb_text_is_cont(p[i]))
            return RB_EINVAL;
        c = (c << 6) | (p[i] & 0x3Fu);
    }
    *cp = c;
    *pos += need;
    return RB_OK;
}

int rb_text_valid_utf8(const char *s, size_t len, size_t *bad_at)
{
    size_t pos = 0;
    uint32_t cp;

    while (pos < len) {
        if (rb_text_decode(s, len, &pos, &cp) != RB_OK) {
            if (bad_at)
                *bad_at = pos;
            return RB_EINVAL;
        }
    }
    return RB_OK;
}

size_t rb_text_chars(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += !rb_text_is_cont((unsigned char)s[i]);
    return n;
}

int rb_text_digit(uint32_t cp)
{
    if (cp >= '0' && cp <= '9')
        return (int)(cp - '0');
    if (cp >= 0x0660u && cp <= 0x0669u) /* ARABIC-INDIC DIGIT ZERO..NINE */
        return (int)(cp - 0x0660u);
    if (cp >= 0x06F0u && cp <= 0x06F9u) /* EXTENDED ARABIC-INDIC (Urdu, Persian) */
        return (int)(cp - 0x06F0u);
    return -1;
}

int rb_text_is_space(uint32_t cp)
{
    return (cp >= 0x09u && cp <= 0x0Du) || cp == 0x20u || cp == 0x85u || cp == 0xA0u ||
           cp == 0x1680u || (cp >= 0x2000u && cp <= 0x200Au) || cp == 0x2028u ||
           cp == 0x2029u || cp == 0x202Fu || cp == 0x205Fu || cp == 0x3000u;
}

static int rb_text_is_newline(uint32_t cp)
{
    return cp == '\n' || cp == '\r' || cp == 0x85u || cp == 0x2028u || cp == 0x2029u;
}

static int rb_text_is_invisible(uint32_t cp)
{
    return (cp >= 0x200Bu && cp <= 0x200Du) || cp == 0x2060u || cp == 0xFEFFu;
}

static int rb_text_is_bidi_control(uint32_t cp)
{
    return (cp >= 0x202Au && cp <= 0x202Eu) || (cp >= 0x2066u && cp <= 0x2069u);
}

static int rb_text_is_control(uint32_t cp)
{
    return cp < 0x20u || (cp >= 0x7Fu && cp <= 0x9Fu);
}

static int rb_text_is_noncharacter(uint32_t cp)
{
    return (cp >= 0xFDD0u && cp <= 0xFDEFu) || (cp & 0xFFFEu) == 0xFFFEu;
}

/* Combining marks (general category Mn/Me) in the blocks that zalgo generators and real
 * scripts stack: Latin/Greek/Cyrillic diacritics, Hebrew points, Arabic/Urdu harakat and
 * Quranic marks, and the extended/supplementary combining blocks. Not exhaustive by
 * design: it only has to bound stacking, not classify every script. */
static int rb_text_is_mark(uint32_t cp)
{
    return (cp >= 0x0300u && cp <= 0x036Fu) || (cp >= 0x0483u && cp <= 0x0489u) ||
           (cp >= 0x0591u && cp <= 0x05BDu) || cp == 0x05BFu || cp == 0x05C1u ||
           cp == 0x05C2u || cp == 0x05C4u || cp == 0x05C5u || cp == 0x05C7u ||
           (cp >= 0x0610u && cp <= 0x061Au) || (cp >= 0x064Bu && cp <= 0x065Fu) ||
           cp == 0x0670u || (cp >= 0x06D6u && cp <= 0x06DCu) ||
           (cp >= 0x06DFu && cp <= 0x06E4u) || cp == 0x06E7u || cp == 0x06E8u ||
           (cp >= 0x06EAu && cp <= 0x06EDu) || (cp >= 0x1AB0u && cp <= 0x1AFFu) ||
           (cp >= 0x1DC0u && cp <= 0x1DFFu) || (cp >= 0x20D0u && cp <= 0x20FFu) ||
           (cp >= 0xFE20u && cp <= 0xFE2Fu);
}

static enum rb_text_class rb_text_classify(uint32_t cp, unsigned flags)
{
    if (rb_text_is_bidi_control(cp) && !(flags & RB_TEXT_BIDI))
        return RB_TEXT_C_DROP;
    if (rb_text_is_newline(cp))
        return RB_TEXT_C_NEWLINE;
    if (rb_text_is_space(cp))
        return RB_TEXT_C_SPACE;
    if (rb_text_is_invisible(cp))
        return RB_TEXT_C_INVISIBLE;
    return RB_TEXT_C_VISIBLE;
}

void rb_text_fold_digits(char *s, size_t *len)
{
    unsigned char *p = (unsigned char *)s;
    size_t n = *len, w = 0;

    for (size_t r = 0; r < n; r++) {
        /* U+0660..0669 is D9 A0..A9, U+06F0..06F9 is DB B0..B9. D9 and DB are lead bytes,
         * never continuation bytes, so the match cannot start inside another character. */
        if (r + 1 < n && p[r] == 0xD9u && p[r + 1] >= 0xA0u && p[r + 1] <= 0xA9u) {
            p[w++] = (unsigned char)('0' + (p[r + 1] - 0xA0u));
            r++;
        } else if (r + 1 < n && p[r] == 0xDBu && p[r + 1] >= 0xB0u && p[r + 1] <= 0xB9u) {
            p[w++] = (unsigned char)('0' + (p[r + 1] - 0xB0u));
            r++;
        } else {
            p[w++] = p[r];
        }
    }
    if (w < n)
        p[w] = '\0';
    *len = w;
}

int rb_text_check(const char *s, size_t len, size_t max_chars, unsigned flags, const char **why)
{
    const char *reason = NULL;
    size_t pos = 0, chars = 0;
    unsigned marks = 0;
    int visible = 0;
    uint32_t cp;

    while (pos < len) {
        if (rb_text_decode(s, len, &pos, &cp) != RB_OK) {
            reason = "is not valid UTF-8";
            break;
        }
        if (max_chars && ++chars > max_chars) {
            reason = "is too long";
            break;
        }
        if (cp == 0) {
            reason = "contains a NUL byte";
            break;
        }
        if (cp == '\n' || cp == 0x2028u || cp == 0x2029u ||
            (cp == '\r' && pos < len && s[pos] == '\n')) {
            if (!(flags & RB_TEXT_NEWLINES)) {
                reason = "must be a single line";
                break;
            }
        } else if (cp == '\t') {
            if (!(flags & RB_TEXT_TABS)) {
                reason = "contains a tab";
                break;
            }
        } else if (rb_text_is_control(cp)) {
            reason = "contains a control character";
            break;
        } else if (rb_text_is_bidi_control(cp) && !(flags & RB_TEXT_BIDI)) {
            reason = "contains a bidirectional override character";
            break;
        } else if (rb_text_is_noncharacter(cp)) {
            reason = "contains a Unicode noncharacter";
            break;
        }
        if (rb_text_is_mark(cp)) {
            if (++marks > RB_TEXT_MAX_MARKS) {
                reason = "has too many accents stacked on one letter";
                break;
            }
        } else {
            marks = 0;
        }
        if (!visible && rb_text_classify(cp, flags | RB_TEXT_BIDI) == RB_TEXT_C_VISIBLE &&
            !rb_text_is_bidi_control(cp))
            visible = 1;
    }
    if (!reason && (flags & RB_TEXT_REQUIRED) && !visible)
        reason = "is empty";
    if (reason) {
        if (why)
            *why = reason;
        return RB_EINVAL;
    }
    return RB_OK;
}

/* Writes the whitespace held back by collapsing: newlines win over spaces; at most one
 * blank line. Never writes more bytes than the held-back characters occupied. */
static size_t rb_text_flush(char *s, size_t w, unsigned *newlines, int *space)
{
    if (*newlines) {
        s[w++] = '\n';
        if (*newlines > 1)
            s[w++] = '\n';
    } else if (*space) {
        s[w++] = ' ';
    }
    *newlines = 0;
    *space = 0;
    return w;
}

int rb_text_clean(char *s, size_t *len, unsigned flags, const char **why)
{
    size_t n = *len, r = 0, w = 0, end = 0;
    unsigned newlines = 0;
    int space = 0, seen = 0, collapse = (flags & RB_TEXT_COLLAPSE) != 0;

    if (rb_text_valid_utf8(s, n, NULL) != RB_OK) {
        if (why)
            *why = "is not valid UTF-8";
        return RB_EINVAL;
    }
    /* Invariant: w <= start of the character being read, so writing never overtakes
     * reading; every rewrite (CR LF → LF, U+2028 → LF, digit folding, collapsing) shrinks. */
    while (r < n) {
        size_t start = r;
        uint32_t cp;
        int d;

        (void)rb_text_decode(s, n, &r, &cp); /* validated above */
        if (cp == '\r' && r < n && s[r] == '\n')
            continue; /* CR of CR LF: the LF that follows stands for both */
        switch (rb_text_classify(cp, flags)) {
        case RB_TEXT_C_DROP:
            continue;
        case RB_TEXT_C_NEWLINE:
            if (!seen)
                continue;
            if (!collapse)
                s[w++] = '\n';
            else if (flags & RB_TEXT_NEWLINES)
                newlines++;
            else
                space = 1;
            continue;
        case RB_TEXT_C_SPACE:
            if (!seen)
                continue;
            if (collapse) {
                space = 1;
            } else {
                memmove(s + w, s + start, r - start);
                w += r - start;
            }
            continue;
        case RB_TEXT_C_INVISIBLE:
            if (!seen)
                continue;
            w = rb_text_flush(s, w, &newlines, &space);
            memmove(s + w, s + start, r - start);
            w += r - start;
            continue;
        case RB_TEXT_C_VISIBLE:
            w = rb_text_flush(s, w, &newlines, &space);
            d = rb_text_digit(cp);
            if ((flags & RB_TEXT_DIGITS) && d >= 0) {
                s[w++] = (char)('0' + d);
            } else {
                memmove(s + w, s + start, r - start);
                w += r - start;
            }
            end = w;
            seen = 1;
            continue;
        }
    }
    s[end] = '\0'; /* trailing whitespace and invisible characters go */
    *len = end;
    return RB_OK;
}

int rb_text_sanitize(char *s, size_t *len, size_t max_chars, unsigned flags, const char **why)
{
    int rc = rb_text_clean(s, len, flags, why);

    if (rc != RB_OK)
        return rc;
    return rb_text_check(s, *len, max_chars, flags, why);
}

size_t rb_text_cut_utf8(char *s)
{
    size_t len = strlen(s), j = len;
    while (j > 0 && len - j < 3 && ((unsigned char)s[j - 1] & 0xC0) == 0x80)
        j--;
    if (j == 0)
        return len;
    unsigned char lead = (unsigned char)s[j - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (need > 1 && len - (j - 1) < need) {
        s[j - 1] = '\0';
        return j - 1;
    }
    return len;
}
