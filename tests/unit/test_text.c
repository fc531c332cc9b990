/* core/base/text.c: strict UTF-8 (checked exhaustively against a reference encoder), control
 * characters, bidi overrides, zalgo, length in code points, trimming, collapsing, digit
 * folding, and hostile strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/common.h"
#include "base/text.h"

#define LIT(s) (s), (sizeof(s) - 1) /* string literal with its length, NULs included */

/* Reference UTF-8 encoder (RFC 3629), independent of the decoder under test. */
static size_t enc(uint32_t cp, unsigned char *o)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Appends code point cp to buf at *n. */
static void put(char *buf, size_t *n, uint32_t cp)
{
    *n += enc(cp, (unsigned char *)buf + *n);
}

static int check(const char *s, size_t len, size_t max, unsigned flags, const char **why)
{
    *why = NULL;
    return rb_text_check(s, len, max, flags, why);
}

static void expect_refused(const char *s, size_t len, size_t max, unsigned flags,
                           const char *reason)
{
    const char *why;
    int rc = check(s, len, max, flags, &why);

    if (rc != RB_EINVAL)
        fail_msg("expected refusal \"%s\" for %zu bytes, got %d", reason, len, rc);
    if (!why || strcmp(why, reason) != 0)
        fail_msg("expected reason \"%s\", got \"%s\"", reason, why ? why : "(null)");
}

static void expect_ok(const char *s, size_t len, size_t max, unsigned flags)
{
    const char *why;
    int rc = check(s, len, max, flags, &why);

    if (rc != RB_OK)
        fail_msg("expected OK for %zu bytes, refused: %s", len, why ? why : "(null)");
}

/* Cleans a copy of s and compares with want. */
static void expect_clean(const char *s, size_t len, unsigned flags, const char *want)
{
    char *buf = rb_malloc(len + 1);
    size_t n = len;
    const char *why = NULL;

    memcpy(buf, s, len);
    buf[len] = '\0';
    assert_int_equal(rb_text_clean(buf, &n, flags, &why), RB_OK);
    assert_int_equal(buf[n], '\0');
    if (n != strlen(want) || memcmp(buf, want, n) != 0)
        fail_msg("clean gave \"%.*s\" (%zu bytes), wanted \"%s\"", (int)n, buf, n, want);
    free(buf);
}

/* ---- strict UTF-8 ---------------------------------------------------------------------- */

static void every_scalar_value_round_trips(void **state)
{
    (void)state;
    unsigned char b[4];

    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        size_t n = enc(cp, b), pos = 0;
        uint32_t got = 0xFFFFFFFF;
        int rc = rb_text_decode((const char *)b, n, &pos, &got);

        if (cp >= 0xD800 && cp <= 0xDFFF) {
            if (rc != RB_EINVAL || pos != 0)
                fail_msg("surrogate U+%04X accepted", (unsigned)cp);
            continue;
        }
        if (rc != RB_OK || got != cp || pos != n)
            fail_msg("U+%04X: rc %d, got U+%04X, advanced %zu of %zu", (unsigned)cp, rc,
                     (unsigned)got, pos, n);
    }
}

/* A byte sequence is valid exactly when it is the reference encoding of a scalar value. */
static int reference_valid(const unsigned char *b, size_t n)
{
    uint32_t cp;
    unsigned char r[4];

    if (n == 2)
        cp = ((uint32_t)(b[0] & 0x1F) << 6) | (b[1] & 0x3F);
    else if (n == 3)
        cp = ((uint32_t)(b[0] & 0x0F) << 12) | ((uint32_t)(b[1] & 0x3F) << 6) | (b[2] & 0x3F);
    else
        cp = ((uint32_t)(b[0] & 0x07) << 18) | ((uint32_t)(b[1] & 0x3F) << 12) |
             ((uint32_t)(b[2] & 0x3F) << 6) | (b[3] & 0x3F);
    for (size_t i = 1; i < n; i++) {
        if ((b[i] & 0xC0) != 0x80)
            return 0;
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return enc(cp, r) == n && memcmp(r, b, n) == 0;
}

static void decode_one(const unsigned char *b, size_t n, int want_valid)
{
    size_t pos = 0;
    uint32_t cp;
    int rc = rb_text_decode((const char *)b, n, &pos, &cp);

    if (want_valid && (rc != RB_OK || pos != n))
        fail_msg("refused valid %02X %02X ...", b[0], b[1]);
    if (!want_valid && rc == RB_OK && pos == n)
        fail_msg("accepted invalid %02X %02X %02X %02X (n=%zu)", b[0], b[1],
                 n > 2 ? b[2] : 0, n > 3 ? b[3] : 0, n);
}

static void every_multibyte_sequence_matches_the_reference(void **state)
{
    (void)state;
    unsigned char b[4];

    /* All two-byte sequences with a two-byte lead (C0..DF), all three-byte sequences with a
     * three-byte lead (E0..EF), four-byte leads F0..F7 with every second byte. */
    for (unsigned x = 0xC0; x <= 0xDF; x++)
        for (unsigned y = 0; y < 256; y++) {
            b[0] = (unsigned char)x, b[1] = (unsigned char)y;
            decode_one(b, 2, reference_valid(b, 2));
        }
    for (unsigned x = 0xE0; x <= 0xEF; x++)
        for (unsigned y = 0; y < 256; y++)
            for (unsigned z = 0; z < 256; z++) {
                b[0] = (unsigned char)x, b[1] = (unsigned char)y, b[2] = (unsigned char)z;
                decode_one(b, 3, reference_valid(b, 3));
            }
    static const unsigned char edges[] = {0x00, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
    for (unsigned x = 0xF0; x <= 0xF7; x++)
        for (unsigned y = 0; y < 256; y++)
            for (size_t z = 0; z < sizeof(edges); z++) /* around the continuation range */
                for (size_t w = 0; w < sizeof(edges); w++) {
                    b[0] = (unsigned char)x, b[1] = (unsigned char)y;
                    b[2] = edges[z], b[3] = edges[w];
                    decode_one(b, 4, x <= 0xF4 && reference_valid(b, 4));
                }
    /* Lead bytes that can never start a character. */
    for (unsigned x = 0x80; x <= 0xC1; x++) {
        b[0] = (unsigned char)x, b[1] = 0x80, b[2] = 0x80, b[3] = 0x80;
        for (size_t n = 1; n <= 4; n++)
            decode_one(b, n, 0);
    }
    for (unsigned x = 0xF5; x <= 0xFF; x++) {
        b[0] = (unsigned char)x, b[1] = 0x80, b[2] = 0x80, b[3] = 0x80;
        decode_one(b, 4, 0);
    }
}

static void named_invalid_sequences_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len;
        size_t bad_at;
    } bad[] = {
        {LIT("a\xC0\x80"), 1},              /* overlong NUL ("modified UTF-8") */
        {LIT("\xC0\xAF"), 0},               /* overlong "/" */
        {LIT("ab\xE0\x80\xAF"), 2},         /* overlong "/" in three bytes */
        {LIT("\xF0\x80\x80\xAF"), 0},       /* overlong "/" in four bytes */
        {LIT("\xF0\x8F\xBF\xBF"), 0},       /* overlong U+FFFF */
        {LIT("\xED\xA0\x80"), 0},           /* lone high surrogate */
        {LIT("x\xED\xBF\xBF"), 1},          /* lone low surrogate */
        {LIT("\xED\xA0\xBD\xED\xB8\x80"), 0}, /* CESU-8 surrogate pair for U+1F600 */
        {LIT("\xF4\x90\x80\x80"), 0},       /* U+110000 */
        {LIT("\xF7\xBF\xBF\xBF"), 0},       /* U+1FFFFF */
        {LIT("\xF8\x88\x80\x80\x80"), 0},   /* five-byte form */
        {LIT("\xFE"), 0},
        {LIT("\xFF"), 0},
        {LIT("abc\x80"), 3},                /* stray continuation byte */
        {LIT("\xE2\x82"), 0},               /* truncated euro sign */
        {LIT("ok \xF0\x9F\x98"), 3},        /* emoji cut off at the end */
        {LIT("\xE2\x28\xA1"), 0},           /* lead byte followed by ASCII */
        {LIT("\xC3"), 0},
    };

    for (size_t i = 0; i < RB_ARRAY_LEN(bad); i++) {
        size_t at = 999;
        if (rb_text_valid_utf8(bad[i].s, bad[i].len, &at) != RB_EINVAL)
            fail_msg("sequence %zu accepted", i);
        if (at != bad[i].bad_at)
            fail_msg("sequence %zu: bad_at %zu, want %zu", i, at, bad[i].bad_at);
        expect_refused(bad[i].s, bad[i].len, 0, 0, "is not valid UTF-8");
    }
    /* Boundaries that are valid. */
    assert_int_equal(rb_text_valid_utf8(LIT("\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBD"
                                            "\xF0\x90\x80\x80\xF4\x8F\xBF\xBF"), NULL),
                     RB_OK);
    assert_int_equal(rb_text_valid_utf8("", 0, NULL), RB_OK);
}

static void characters_are_counted_as_code_points(void **state)
{
    (void)state;
    assert_int_equal(rb_text_chars(LIT("")), 0);
    assert_int_equal(rb_text_chars(LIT("abc")), 3);
    assert_int_equal(rb_text_chars(LIT("میری شکایت")), 10); /* Urdu: 2 bytes per letter */
    assert_int_equal(rb_text_chars(LIT("€")), 1);
    assert_int_equal(rb_text_chars(LIT("😀")), 1);
    assert_int_equal(rb_text_chars(LIT("👍🏽")), 2); /* base + skin tone modifier */
    /* man ZWJ woman ZWJ girl: 3 people + 2 joiners */
    assert_int_equal(rb_text_chars(LIT("👨\u200D👩\u200D👧")), 5);
    /* The length limit counts the same way: 5 passes at 5, not at 4. */
    expect_ok(LIT("👨\u200D👩\u200D👧"), 5, 0);
    expect_refused(LIT("👨\u200D👩\u200D👧"), 4, 0, "is too long");
    expect_ok(LIT("میری شکایت"), 10, 0);
    expect_refused(LIT("میری شکایت"), 9, 0, "is too long");
}

/* ---- digits and spaces ----------------------------------------------------------------- */

static void all_thirty_digits_have_their_value(void **state)
{
    (void)state;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(rb_text_digit((uint32_t)('0' + i)), i);
        assert_int_equal(rb_text_digit(0x0660u + (uint32_t)i), i); /* ٠..٩ */
        assert_int_equal(rb_text_digit(0x06F0u + (uint32_t)i), i); /* ۰..۹ */
    }
    static const uint32_t not_digits[] = {'/', ':', 'a', 0x065F, 0x066A, 0x066B, 0x06EF, 0x06FA,
                                          0x0966 /* Devanagari zero: not ours */, 0xFF10, 0};
    for (size_t i = 0; i < RB_ARRAY_LEN(not_digits); i++)
        assert_int_equal(rb_text_digit(not_digits[i]), -1);
}

static void unicode_spaces_are_spaces(void **state)
{
    (void)state;
    static const uint32_t spaces[] = {' ', '\t', '\n', 0x0B, 0x0C, '\r', 0x85, 0xA0, 0x1680,
                                      0x2000, 0x2005, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F,
                                      0x3000};
    static const uint32_t not_spaces[] = {'a', 0, 0x08, 0x0E, 0x1F, 0x200B, 0x200C, 0x200D,
                                          0xFEFF, 0x180E, 0x3001, 0x2060};
    for (size_t i = 0; i < RB_ARRAY_LEN(spaces); i++)
        if (!rb_text_is_space(spaces[i]))
            fail_msg("U+%04X should be a space", (unsigned)spaces[i]);
    for (size_t i = 0; i < RB_ARRAY_LEN(not_spaces); i++)
        if (rb_text_is_space(not_spaces[i]))
            fail_msg("U+%04X should not be a space", (unsigned)not_spaces[i]);
}

static void urdu_and_arabic_digits_fold_to_ascii(void **state)
{
    (void)state;
    char buf[64];
    size_t n;

    strcpy(buf, "۰۱۲۳۴۵۶۷۸۹");
    n = strlen(buf);
    rb_text_fold_digits(buf, &n);
    assert_int_equal(n, 10);
    assert_string_equal(buf, "0123456789");

    strcpy(buf, "٠١٢٣٤٥٦٧٨٩");
    n = strlen(buf);
    rb_text_fold_digits(buf, &n);
    assert_string_equal(buf, "0123456789");

    /* Mixed with Urdu letters (ہ is DB 81: same lead byte as ۰..۹) and ASCII. */
    strcpy(buf, "نمبر ۳۵۲۰۲-ہ x٧");
    n = strlen(buf);
    rb_text_fold_digits(buf, &n);
    assert_string_equal(buf, "نمبر 35202-ہ x7");
    assert_int_equal(n, strlen("نمبر 35202-ہ x7"));

    /* Nothing to fold: untouched, length the same. */
    strcpy(buf, "abc 123");
    n = 7;
    rb_text_fold_digits(buf, &n);
    assert_int_equal(n, 7);
    assert_string_equal(buf, "abc 123");

    /* A lead byte at the very end is left alone (no read past len). */
    memcpy(buf, "1\xDB", 2);
    n = 2;
    rb_text_fold_digits(buf, &n);
    assert_int_equal(n, 2);
    assert_memory_equal(buf, "1\xDB", 2);
}

/* ---- rb_text_check ---------------------------------------------------------------------- */

static void ordinary_text_passes(void **state)
{
    (void)state;
    expect_ok(LIT("Street light broken near house 14"), 0, 0);
    expect_ok(LIT("میری گلی میں کوڑا پڑا ہے"), 0, 0);
    expect_ok(LIT("مُحَمَّد"), 0, 0); /* Urdu/Arabic harakat and shadda */
    expect_ok(LIT("خوش‌آمدید"), 0, 0); /* ZWNJ inside a word */
    expect_ok(LIT("\u200F+92 300 1234567\u200E"), 0, 0); /* RLM / LRM marks */
    expect_ok(LIT("Ünïcödé ☕ 漢字 \U0001F1F5\U0001F1F0"), 0, 0);
    expect_ok(LIT("\xEE\x80\x80"), 0, 0); /* private use U+E000 */
    expect_ok(LIT("🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"), 0, 0);
    expect_ok(LIT(""), 0, 0); /* empty is fine unless RB_TEXT_REQUIRED */
    expect_ok(LIT("\xEF\xBF\xBD"), 0, 0); /* U+FFFD REPLACEMENT CHARACTER */
}

static void nul_in_the_middle_is_refused(void **state)
{
    (void)state;
    expect_refused(LIT("abc\0def"), 0, 0, "contains a NUL byte");
    expect_refused(LIT("\0"), 0, RB_TEXT_BODY, "contains a NUL byte");
    /* The length governs, not the terminator: the NUL after len is not looked at. */
    expect_ok("abc\0def", 3, 0, 0);
}

static void control_characters_are_refused(void **state)
{
    (void)state;
    char buf[8];
    size_t n;

    for (uint32_t c = 1; c < 0x20; c++) {
        if (c == '\t' || c == '\n')
            continue;
        n = 0;
        buf[n++] = 'a';
        put(buf, &n, c);
        buf[n++] = 'b';
        expect_refused(buf, n, 0, RB_TEXT_NEWLINES | RB_TEXT_TABS | RB_TEXT_BIDI,
                       "contains a control character");
    }
    for (uint32_t c = 0x7F; c <= 0x9F; c++) { /* DEL and C1 (NEL, CSI, ...) */
        n = 0;
        put(buf, &n, c);
        expect_refused(buf, n, 0, RB_TEXT_NEWLINES | RB_TEXT_TABS,
                       "contains a control character");
    }
    /* Escape sequences that would colour or clear a terminal reading the logs. */
    expect_refused(LIT("ok\x1b[2J"), 0, 0, "contains a control character");
    /* A lone CR is a control character even in multi-line text. */
    expect_refused(LIT("a\rb"), 0, RB_TEXT_NEWLINES, "contains a control character");
    expect_refused(LIT("a\r"), 0, RB_TEXT_NEWLINES, "contains a control character");
}

static void tabs_and_newlines_follow_the_flags(void **state)
{
    (void)state;
    expect_refused(LIT("a\tb"), 0, 0, "contains a tab");
    expect_ok(LIT("a\tb"), 0, RB_TEXT_TABS);
    expect_refused(LIT("a\nb"), 0, 0, "must be a single line");
    expect_refused(LIT("a\nb"), 0, RB_TEXT_TABS, "must be a single line");
    expect_ok(LIT("a\nb"), 0, RB_TEXT_NEWLINES);
    expect_ok(LIT("a\r\nb\r\n"), 0, RB_TEXT_NEWLINES);
    expect_refused(LIT("a\r\nb"), 0, 0, "must be a single line");
    expect_ok(LIT("a\u2028b\u2029c"), 0, RB_TEXT_NEWLINES);
    expect_refused(LIT("a\u2028b"), 0, 0, "must be a single line");
    expect_refused(LIT("a\u2029b"), 0, RB_TEXT_TABS, "must be a single line");
}

static void bidi_overrides_are_refused_unless_allowed(void **state)
{
    (void)state;
    static const uint32_t bidi[] = {0x202A, 0x202B, 0x202C, 0x202D, 0x202E,
                                    0x2066, 0x2067, 0x2068, 0x2069};
    char buf[16];
    size_t n;

    /* The classic: "invoice_\u202Efdp.exe" shows as "invoice_exe.pdf". */
    expect_refused(LIT("invoice_\u202Efdp.exe"), 0, 0,
                   "contains a bidirectional override character");
    expect_ok(LIT("invoice_\u202Efdp.exe"), 0, RB_TEXT_BIDI);
    for (size_t i = 0; i < RB_ARRAY_LEN(bidi); i++) {
        n = 0;
        buf[n++] = 'x';
        put(buf, &n, bidi[i]);
        expect_refused(buf, n, 0, RB_TEXT_NEWLINES,
                       "contains a bidirectional override character");
        expect_ok(buf, n, 0, RB_TEXT_BIDI);
    }
    /* Marks are not overrides. */
    expect_ok(LIT("a\u200Eb\u200Fc\u061Cd"), 0, 0);
}

static void noncharacters_are_refused(void **state)
{
    (void)state;
    static const uint32_t nonchars[] = {0xFDD0, 0xFDEF, 0xFFFE, 0xFFFF, 0x1FFFE, 0x1FFFF,
                                        0x10FFFE, 0x10FFFF};
    static const uint32_t fine[] = {0xFDCF, 0xFDF0, 0xFFFD, 0x1FFFD, 0x10FFFD};
    char buf[8];
    size_t n;

    for (size_t i = 0; i < RB_ARRAY_LEN(nonchars); i++) {
        n = 0;
        put(buf, &n, nonchars[i]);
        expect_refused(buf, n, 0, 0, "contains a Unicode noncharacter");
    }
    for (size_t i = 0; i < RB_ARRAY_LEN(fine); i++) {
        n = 0;
        put(buf, &n, fine[i]);
        expect_ok(buf, n, 0, 0);
    }
}

static void zalgo_is_refused_but_diacritics_pass(void **state)
{
    (void)state;
    char buf[256];
    size_t n = 0;

    buf[n++] = 'Z';
    for (int i = 0; i < RB_TEXT_MAX_MARKS; i++)
        put(buf, &n, 0x0300u + (uint32_t)i);
    expect_ok(buf, n, 0, 0); /* exactly the limit */
    put(buf, &n, 0x036Fu);
    expect_refused(buf, n, 0, 0, "has too many accents stacked on one letter");

    /* The limit is per base character: many letters each with a few marks pass. */
    n = 0;
    for (int i = 0; i < 20; i++) {
        buf[n++] = 'a';
        put(buf, &n, 0x0301);
        put(buf, &n, 0x0323);
        put(buf, &n, 0x0308);
    }
    expect_ok(buf, n, 0, 0);

    /* Real zalgo, Arabic marks stacked and combining marks with no base at all. */
    expect_refused(LIT("H̸̡̪̯ͨ͊̽̅̾̎Ȩ̬̩̾͛ͪ̈́̀́͘ ̶̧̨̱̹̭̯ͧ̾ͬC̷̙̲̝͖ͭ̏ͥͮ͟Oͮ͏̮̪̝͍"), 0, 0,
                   "has too many accents stacked on one letter");
    n = 0;
    put(buf, &n, 0x0628); /* ب */
    for (int i = 0; i < 12; i++)
        put(buf, &n, 0x064Eu + (uint32_t)(i % 3));
    expect_refused(buf, n, 0, 0, "has too many accents stacked on one letter");
    n = 0;
    for (int i = 0; i < 30; i++)
        put(buf, &n, 0x20D0u + (uint32_t)(i % 16));
    expect_refused(buf, n, 0, 0, "has too many accents stacked on one letter");
}

static void ten_kilobytes_of_emoji(void **state)
{
    (void)state;
    size_t n = 0;
    char *buf = rb_malloc(10 * 1024 + 8);

    while (n + 4 <= 10 * 1024)
        put(buf, &n, 0x1F600u + (uint32_t)(n % 80)); /* 😀 and friends, 4 bytes each */
    assert_int_equal(n, 10240);
    assert_int_equal(rb_text_chars(buf, n), 2560);
    expect_ok(buf, n, 2560, 0);
    expect_ok(buf, n, 0, 0);
    expect_refused(buf, n, 2559, 0, "is too long");
    expect_refused(buf, n, 2000, RB_TEXT_BODY, "is too long");
    /* Cut in the middle of the last emoji: invalid, whatever the limit. */
    expect_refused(buf, n - 1, 0, 0, "is not valid UTF-8");
    free(buf);
}

static void required_text_needs_something_visible(void **state)
{
    (void)state;
    expect_refused(LIT(""), 0, RB_TEXT_REQUIRED, "is empty");
    expect_refused(LIT("   "), 0, RB_TEXT_REQUIRED, "is empty");
    expect_refused(LIT("\u00A0\u3000\u200B\u200C\uFEFF"), 0, RB_TEXT_REQUIRED, "is empty");
    expect_refused(LIT("\u202E"), 0, RB_TEXT_REQUIRED | RB_TEXT_BIDI, "is empty");
    expect_refused(LIT("\n\n"), 0, RB_TEXT_REQUIRED | RB_TEXT_NEWLINES, "is empty");
    expect_ok(LIT("  .  "), 0, RB_TEXT_REQUIRED);
    expect_ok(LIT("۱"), 0, RB_TEXT_REQUIRED);
}

static void why_may_be_null(void **state)
{
    (void)state;
    assert_int_equal(rb_text_check(LIT("\x01"), 0, 0, NULL), RB_EINVAL);
    assert_int_equal(rb_text_check(LIT("ok"), 0, 0, NULL), RB_OK);
}

/* ---- rb_text_clean ---------------------------------------------------------------------- */

static void clean_trims_ascii_and_unicode_whitespace(void **state)
{
    (void)state;
    expect_clean(LIT("  hello  "), 0, "hello");
    expect_clean(LIT("\u00A0\u3000\t hello\u2003\u00A0\u3000"), 0, "hello");
    expect_clean(LIT("\uFEFF\u200Bhello\u200B\u200D"), 0, "hello"); /* BOM, ZWSP, ZWJ */
    expect_clean(LIT("\r\n\n  two words \n"), RB_TEXT_NEWLINES, "two words");
    expect_clean(LIT("   "), 0, "");
    expect_clean(LIT(""), RB_TEXT_BODY, "");
    /* Inside, nothing changes without RB_TEXT_COLLAPSE. */
    expect_clean(LIT(" a  \u00A0 b "), 0, "a  \u00A0 b");
    /* ZWNJ inside an Urdu word stays; ZWJ inside an emoji sequence stays. */
    expect_clean(LIT(" خوش‌آمدید "), RB_TEXT_LINE, "خوش‌آمدید");
    expect_clean(LIT("👨\u200D👩 "), RB_TEXT_LINE, "👨\u200D👩");
}

static void clean_collapses_whitespace(void **state)
{
    (void)state;
    expect_clean(LIT("a \t\u00A0\u3000 b"), RB_TEXT_COLLAPSE, "a b");
    expect_clean(LIT("Ali\nKhan"), RB_TEXT_LINE, "Ali Khan");
    expect_clean(LIT("Ali \r\n Khan"), RB_TEXT_LINE, "Ali Khan");
    expect_clean(LIT("para one  \n\n\n\n\n  para two"), RB_TEXT_BODY, "para one\n\npara two");
    expect_clean(LIT("line one \n line two"), RB_TEXT_BODY, "line one\nline two");
    expect_clean(LIT("a\r\n\r\nb"), RB_TEXT_BODY, "a\n\nb");
    expect_clean(LIT("a \u200C b"), RB_TEXT_COLLAPSE, "a \u200C b");
}

static void clean_normalises_line_breaks(void **state)
{
    (void)state;
    expect_clean(LIT("a\r\nb\rc\u2028d\u2029e\xC2\x85" "f"), RB_TEXT_NEWLINES,
                 "a\nb\nc\nd\ne\nf");
    /* Without collapsing, the newline stays even in a one-line field: check refuses it. */
    expect_clean(LIT("a\r\nb"), 0, "a\nb");
}

static void clean_strips_bidi_overrides_unless_allowed(void **state)
{
    (void)state;
    expect_clean(LIT("invoice_\u202Efdp.exe"), 0, "invoice_fdp.exe");
    expect_clean(LIT("\u202A+92 300 1234567\u202C"), 0, "+92 300 1234567");
    expect_clean(LIT("\u2066x\u2069"), 0, "x");
    expect_clean(LIT("invoice_\u202Efdp.exe"), RB_TEXT_BIDI, "invoice_\u202Efdp.exe");
    /* Marks stay. */
    expect_clean(LIT("a\u200Fb"), 0, "a\u200Fb");
}

static void clean_folds_digits_only_when_asked(void **state)
{
    (void)state;
    expect_clean(LIT("CNIC ۳۵۲۰۲-۱۲۳۴۵۶۷-۱"), RB_TEXT_DIGITS, "CNIC 35202-1234567-1");
    expect_clean(LIT("٠٣٠٠"), RB_TEXT_DIGITS | RB_TEXT_COLLAPSE, "0300");
    expect_clean(LIT("۳۵۲۰۲"), 0, "۳۵۲۰۲");
}

static void clean_refuses_invalid_utf8_untouched(void **state)
{
    (void)state;
    char buf[] = "  a\xC0\xAF  ";
    size_t n = sizeof(buf) - 1;
    const char *why = NULL;

    assert_int_equal(rb_text_clean(buf, &n, RB_TEXT_BODY, &why), RB_EINVAL);
    assert_string_equal(why, "is not valid UTF-8");
    assert_int_equal(n, sizeof(buf) - 1);
    assert_memory_equal(buf, "  a\xC0\xAF  ", sizeof(buf));
}

static void clean_leaves_controls_for_check_to_refuse(void **state)
{
    (void)state;
    char buf[] = " a\x01" "b\0c ";
    size_t n = sizeof(buf) - 1;
    const char *why = NULL;

    assert_int_equal(rb_text_sanitize(buf, &n, 0, RB_TEXT_BODY, &why), RB_EINVAL);
    assert_string_equal(why, "contains a control character");
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "a\x01" "b\0c", 5);
}

static void sanitize_cleans_then_checks(void **state)
{
    (void)state;
    char buf[128];
    size_t n;
    const char *why = NULL;

    strcpy(buf, " \u202EStreet light\r\n\r\n\r\n broken \u3000");
    n = strlen(buf);
    assert_int_equal(rb_text_sanitize(buf, &n, 50, RB_TEXT_BODY | RB_TEXT_REQUIRED, &why),
                     RB_OK);
    assert_string_equal(buf, "Street light\n\nbroken");
    assert_int_equal(n, strlen("Street light\n\nbroken"));

    /* Length is checked after cleaning: 12 visible characters pass a limit of 12. */
    strcpy(buf, "      Street light      ");
    n = strlen(buf);
    assert_int_equal(rb_text_sanitize(buf, &n, 12, RB_TEXT_LINE, &why), RB_OK);
    assert_string_equal(buf, "Street light");

    strcpy(buf, " \u00A0 ");
    n = strlen(buf);
    assert_int_equal(rb_text_sanitize(buf, &n, 0, RB_TEXT_LINE | RB_TEXT_REQUIRED, &why),
                     RB_EINVAL);
    assert_string_equal(why, "is empty");

    strcpy(buf, "two\nlines");
    n = strlen(buf);
    assert_int_equal(rb_text_sanitize(buf, &n, 0, 0, &why), RB_EINVAL);
    assert_string_equal(why, "must be a single line");
}

/* Property test: on random strings built from troublesome characters, clean never grows the
 * string, keeps it valid UTF-8, leaves no whitespace or invisible character at either end,
 * leaves no bidi override (without RB_TEXT_BIDI), no two spaces in a row and no three
 * newlines in a row (with RB_TEXT_COLLAPSE), and is idempotent. */
static void clean_properties_hold_on_random_strings(void **state)
{
    (void)state;
    static const uint32_t pool[] = {'a', 'b', ' ', ' ', '\t', '\n', '\r', 0x00A0, 0x3000,
                                    0x2028, 0x0085, 0x200B, 0x200C, 0x200D, 0xFEFF, 0x202E,
                                    0x2066, 0x06F5, 0x0665, 0x0628, 0x0301, 0x1F600, 0x01,
                                    '5', 0x200F};
    static const unsigned flagsets[] = {0, RB_TEXT_LINE, RB_TEXT_BODY, RB_TEXT_NEWLINES,
                                        RB_TEXT_COLLAPSE | RB_TEXT_DIGITS,
                                        RB_TEXT_BODY | RB_TEXT_BIDI | RB_TEXT_DIGITS};
    unsigned seed = 12345;
    char buf[256], again[256];

    for (int iter = 0; iter < 20000; iter++) {
        unsigned flags = flagsets[iter % RB_ARRAY_LEN(flagsets)];
        size_t n = 0, len0, n2;
        int parts;

        seed = seed * 1103515245u + 12345u;
        parts = (int)((seed >> 16) % 40);
        for (int i = 0; i < parts; i++) {
            seed = seed * 1103515245u + 12345u;
            put(buf, &n, pool[(seed >> 16) % RB_ARRAY_LEN(pool)]);
        }
        len0 = n;
        assert_int_equal(rb_text_clean(buf, &n, flags, NULL), RB_OK);
        assert_true(n <= len0);
        assert_int_equal(buf[n], '\0');
        assert_int_equal(rb_text_valid_utf8(buf, n, NULL), RB_OK);
        if (n > 0) {
            size_t pos = 0, last = 0;
            uint32_t first_cp, cp = 0;

            assert_int_equal(rb_text_decode(buf, n, &pos, &first_cp), RB_OK);
            pos = 0;
            while (pos < n) {
                last = pos;
                assert_int_equal(rb_text_decode(buf, n, &pos, &cp), RB_OK);
                if (!(flags & RB_TEXT_BIDI))
                    assert_false(cp == 0x202E || cp == 0x2066);
                if (flags & RB_TEXT_DIGITS)
                    assert_false(cp == 0x06F5 || cp == 0x0665);
                assert_false(cp == '\r' || cp == 0x2028 || cp == 0x0085);
            }
            (void)last;
            assert_false(rb_text_is_space(first_cp) || first_cp == 0x200B ||
                         first_cp == 0x200C || first_cp == 0x200D || first_cp == 0xFEFF);
            assert_false(rb_text_is_space(cp) || cp == 0x200B || cp == 0x200C ||
                         cp == 0x200D || cp == 0xFEFF);
        }
        if (flags & RB_TEXT_COLLAPSE) {
            assert_null(memmem(buf, n, "  ", 2));
            assert_null(memmem(buf, n, "\n\n\n", 3));
            assert_null(memmem(buf, n, "\t", 1));
            if (!(flags & RB_TEXT_NEWLINES))
                assert_null(memmem(buf, n, "\n", 1));
        }
        memcpy(again, buf, n + 1);
        n2 = n;
        assert_int_equal(rb_text_clean(again, &n2, flags, NULL), RB_OK);
        if (n2 != n || memcmp(again, buf, n) != 0)
            fail_msg("clean is not idempotent (iteration %d, flags %#x)", iter, flags);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_scalar_value_round_trips),
        cmocka_unit_test(every_multibyte_sequence_matches_the_reference),
        cmocka_unit_test(named_invalid_sequences_are_refused),
        cmocka_unit_test(characters_are_counted_as_code_points),
        cmocka_unit_test(all_thirty_digits_have_their_value),
        cmocka_unit_test(unicode_spaces_are_spaces),
        cmocka_unit_test(urdu_and_arabic_digits_fold_to_ascii),
        cmocka_unit_test(ordinary_text_passes),
        cmocka_unit_test(nul_in_the_middle_is_refused),
        cmocka_unit_test(control_characters_are_refused),
        cmocka_unit_test(tabs_and_newlines_follow_the_flags),
        cmocka_unit_test(bidi_overrides_are_refused_unless_allowed),
        cmocka_unit_test(noncharacters_are_refused),
        cmocka_unit_test(zalgo_is_refused_but_diacritics_pass),
        cmocka_unit_test(ten_kilobytes_of_emoji),
        cmocka_unit_test(required_text_needs_something_visible),
        cmocka_unit_test(why_may_be_null),
        cmocka_unit_test(clean_trims_ascii_and_unicode_whitespace),
        cmocka_unit_test(clean_collapses_whitespace),
        cmocka_unit_test(clean_normalises_line_breaks),
        cmocka_unit_test(clean_strips_bidi_overrides_unless_allowed),
        cmocka_unit_test(clean_folds_digits_only_when_asked),
        cmocka_unit_test(clean_refuses_invalid_utf8_untouched),
        cmocka_unit_test(clean_leaves_controls_for_check_to_refuse),
        cmocka_unit_test(sanitize_cleans_then_checks),
        cmocka_unit_test(clean_properties_hold_on_random_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
