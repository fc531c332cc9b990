/* core/base/phone.c: every way Pakistanis write a mobile number becomes "+923001234567";
 * landlines keep their area code; other countries pass as E.164; letters, control
 * characters and wrong lengths are refused with a reason; Urdu digits are read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/common.h"
#include "base/phone.h"

static void expect_phone(const char *in, const char *want)
{
    char out[RB_PHONE_MAX];
    const char *why = NULL;

    if (rb_phone_normalize(in, out, &why) != RB_OK)
        fail_msg("\"%s\" refused: %s", in, why ? why : "(null)");
    if (strcmp(out, want) != 0)
        fail_msg("\"%s\" → \"%s\", want \"%s\"", in, out, want);
}

static void expect_refused(const char *in, const char *reason)
{
    char out[RB_PHONE_MAX] = "junk";
    const char *why = NULL;

    if (rb_phone_normalize(in, out, &why) != RB_EINVAL)
        fail_msg("\"%s\" accepted as \"%s\"", in ? in : "(null)", out);
    assert_string_equal(out, "");
    if (!why || strcmp(why, reason) != 0)
        fail_msg("\"%s\": reason \"%s\", want \"%s\"", in ? in : "(null)",
                 why ? why : "(null)", reason);
}

/* "+" then 8..15 digits, the first not 0. */
static int is_e164(const char *s)
{
    size_t n = strlen(s);

    if (n < 9 || n > 16 || s[0] != '+' || s[1] == '0')
        return 0;
    for (size_t i = 1; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static void pakistani_mobile_forms_all_agree(void **state)
{
    (void)state;
    static const char *const forms[] = {
        "03001234567",
        "0300-1234567",
        "0300 1234567",
        "0300 123 4567",
        "0300.123.4567",
        "(0300) 1234567",
        "(0300)-1234567",
        "+92 300 1234567",
        "+92-300-1234567",
        "+92 (0)300 1234567",
        "+920300 1234567",
        "+923001234567",
        "+92 300 123 45 67",
        "923001234567",
        "92 300 1234567",
        "00923001234567",
        "0092 300 1234567",
        "3001234567",
        "  0300-1234567  ",
        "0300\u20131234567",                   /* en dash */
        "+92\u00A0300\u00A01234567",            /* no-break spaces */
        "\u202A+92 300 1234567\u202C",          /* WhatsApp's LRE ... PDF wrapping */
        "\u200F0300-1234567\u200E",             /* RLM / LRM from Urdu text */
        "\xEF\xBC\x8B" "92 300 1234567",        /* fullwidth plus */
        "۰۳۰۰۱۲۳۴۵۶۷",                          /* Urdu digits */
        "۰۳۰۰-۱۲۳۴۵۶۷",
        "+۹۲ ۳۰۰ ۱۲۳۴۵۶۷",
        "٠٣٠٠١٢٣٤٥٦٧",                          /* Arabic-Indic digits */
        "0300-۱۲۳٤٥٦٧",                         /* mixed scripts */
    };
    for (size_t i = 0; i < RB_ARRAY_LEN(forms); i++)
        expect_phone(forms[i], "+923001234567");
}

static void every_mobile_prefix_is_accepted(void **state)
{
    (void)state;
    char in[32], want[32];

    for (int p = 300; p <= 399; p++) {
        snprintf(in, sizeof(in), "0%d-7654321", p);
        snprintf(want, sizeof(want), "+92%d7654321", p);
        expect_phone(in, want);
        assert_true(rb_phone_is_pk_mobile(want));
    }
}

static void landlines_keep_their_area_code(void **state)
{
    (void)state;
    expect_phone("042-35761234", "+924235761234");     /* Lahore, 8-digit subscriber */
    expect_phone("(042) 3576 1234", "+924235761234");
    expect_phone("+92 42 3576 1234", "+924235761234");
    expect_phone("0092 42 35761234", "+924235761234");
    expect_phone("924235761234", "+924235761234");
    expect_phone("021-34567890", "+922134567890");     /* Karachi */
    expect_phone("051-1234567", "+92511234567");       /* Islamabad, 7-digit subscriber */
    expect_phone("92511234567", "+92511234567");
    expect_phone("0992-123456", "+92992123456");       /* Abbottabad, 3-digit area code */
    expect_phone("091 9212345", "+92919212345");       /* Peshawar */
    expect_phone("۰۴۲-۳۵۷۶۱۲۳۴", "+924235761234");
    assert_false(rb_phone_is_pk_mobile("+924235761234"));
}

static void other_countries_pass_as_e164(void **state)
{
    (void)state;
    expect_phone("+44 20 7946 0958", "+442079460958");
    expect_phone("0044 20 7946 0958", "+442079460958");
    expect_phone("+1 (202) 555-0143", "+12025550143");
    expect_phone("+971 50 123 4567", "+971501234567");
    expect_phone("+966-55-123-4567", "+966551234567");
    expect_phone("+35612345", "+35612345");             /* 8 digits: the shortest */
    expect_phone("+123456789012345", "+123456789012345"); /* 15 digits: the longest */
    expect_refused("+3561234", "is too short");
    expect_refused("+1234567890123456", "is too long");
    expect_refused("+0441632960961", "has a country code starting with 0");
    expect_refused("000441632960961", "has a country code starting with 0");
}

static void refusals_say_why(void **state)
{
    (void)state;
    char big[128];

    expect_refused(NULL, "is empty");
    expect_refused("", "is empty");
    expect_refused("   ", "is empty");
    expect_refused(" - ( ) ", "is empty");
    expect_refused("+", "has no digits");
    expect_refused("00", "has no digits");
    expect_refused("0", "is too short");
    expect_refused("+92", "is too short");
    expect_refused("call 03001234567", "contains letters");
    expect_refused("0300-1234567 ext 5", "contains letters");
    expect_refused("O3OO1234567", "contains letters"); /* letter O for zero */
    expect_refused("0300\t1234567", "contains a control character");
    expect_refused("0300\n1234567", "contains a control character");
    expect_refused("0300-1234567\r", "contains a control character");
    expect_refused("\x1b[31m03001234567", "contains a control character");
    expect_refused("0300\xC2\x85" "1234567", "contains a control character"); /* NEL */
    expect_refused("0300+1234567", "has a + that is not at the start");
    expect_refused("++923001234567", "has a + that is not at the start");
    expect_refused("0300#1234567", "contains a character that is not a digit");
    expect_refused("0300*1234567", "contains a character that is not a digit");
    expect_refused("03001234567 😀", "contains a character that is not a digit");
    expect_refused("۰۳۰۰ شکریہ", "contains a character that is not a digit");
    expect_refused("0300\xC0\xAF" "1234567", "is not valid UTF-8");
    expect_refused("0300\xED\xA0\x80", "is not valid UTF-8");
    expect_refused("0300123456", "is too short for a mobile number (03xx xxxxxxx)");
    expect_refused("+92 300 123456", "is too short for a mobile number (03xx xxxxxxx)");
    expect_refused("030012345678", "is too long for a mobile number (03xx xxxxxxx)");
    expect_refused("+92 3001 2345678", "is too long for a mobile number (03xx xxxxxxx)");
    expect_refused("042-123456", "is too short; a landline number needs its area code");
    expect_refused("+92 42 123456789", "is too long");
    expect_refused("+92 1234567890", "is not a Pakistani number");
    expect_refused("0123456789", "is not a Pakistani number");
    expect_refused("1234567", "is too short; include the area code (0xx)");
    expect_refused("35761234", "is too short; include the area code (0xx)");
    expect_refused("12345678901", "needs a + and the country code");
    expect_refused("4420794609580", "needs a + and the country code");
    expect_refused("12345678901234567", "is too long");
    expect_refused("000000000000000000000", "is too long"); /* more digits than we keep */
    memset(big, ' ', sizeof(big));
    memcpy(big + 100, "03001234567", 12); /* decoration beyond 64 bytes */
    expect_refused(big, "is too long");
}

static void failure_clears_output_and_why_is_optional(void **state)
{
    (void)state;
    char out[RB_PHONE_MAX] = "+923001234567";

    assert_int_equal(rb_phone_normalize("abc", out, NULL), RB_EINVAL);
    assert_string_equal(out, "");
    assert_int_equal(rb_phone_normalize("03001234567", out, NULL), RB_OK);
    assert_string_equal(out, "+923001234567");
}

static void last4_and_mask(void **state)
{
    (void)state;
    char l4[RB_PHONE_LAST4_LEN], m[RB_PHONE_MAX];

    assert_int_equal(rb_phone_last4("+923001234567", l4), RB_OK);
    assert_string_equal(l4, "4567");
    assert_int_equal(rb_phone_last4("0300-123 45 67", l4), RB_OK);
    assert_string_equal(l4, "4567");
    assert_int_equal(rb_phone_last4("1234", l4), RB_OK);
    assert_string_equal(l4, "1234");
    assert_int_equal(rb_phone_last4("12-3", l4), RB_EINVAL);
    assert_string_equal(l4, "");
    assert_int_equal(rb_phone_last4(NULL, l4), RB_EINVAL);

    assert_int_equal(rb_phone_mask("+923001234567", m), RB_OK);
    assert_string_equal(m, "+92******4567");
    assert_int_equal(rb_phone_mask("+441632960961", m), RB_OK);
    assert_string_equal(m, "+********0961");
    assert_int_equal(rb_phone_mask("+35612345", m), RB_OK);
    assert_string_equal(m, "+****2345");
    static const char *const not_e164[] = {"03001234567", "+0441632960961", "+1234567",
                                           "+1234567890123456", "+92300abc4567", "", "+",
                                           NULL};
    for (size_t i = 0; i < RB_ARRAY_LEN(not_e164); i++) {
        strcpy(m, "junk");
        if (rb_phone_mask(not_e164[i], m) != RB_EINVAL)
            fail_msg("mask accepted \"%s\"", not_e164[i] ? not_e164[i] : "(null)");
        assert_string_equal(m, "");
    }

    assert_true(rb_phone_is_pk_mobile("+923001234567"));
    assert_false(rb_phone_is_pk_mobile("+92300123456"));
    assert_false(rb_phone_is_pk_mobile("+9230012345678"));
    assert_false(rb_phone_is_pk_mobile("+441632960961"));
    assert_false(rb_phone_is_pk_mobile("03001234567"));
    assert_false(rb_phone_is_pk_mobile(NULL));
}

/* Random strings from digits and decoration: every result is either refused with a reason
 * and an empty output, or a valid E.164 number that normalises to itself. */
static void results_are_e164_and_stable_on_random_input(void **state)
{
    (void)state;
    static const char *const pool[] = {"0", "3", "9", "2", "4", "1", "5", "7", "+", "-", " ",
                                       "(", ")", "00", "92", "۳", "٠", "x", "\t", "\u00A0",
                                       "\u202A", "."};
    unsigned seed = 99, ok = 0, refused = 0;
    char in[128], out[RB_PHONE_MAX], again[RB_PHONE_MAX];

    for (int iter = 0; iter < 100000; iter++) {
        size_t n = 0;
        const char *why = NULL;
        int parts;

        seed = seed * 1103515245u + 12345u;
        parts = 4 + (int)((seed >> 16) % 16);
        in[0] = '\0';
        for (int i = 0; i < parts; i++) {
            const char *piece;
            seed = seed * 1103515245u + 12345u;
            piece = pool[(seed >> 16) % RB_ARRAY_LEN(pool)];
            if (n + strlen(piece) >= sizeof(in))
                break;
            memcpy(in + n, piece, strlen(piece) + 1);
            n += strlen(piece);
        }
        if (rb_phone_normalize(in, out, &why) == RB_OK) {
            ok++;
            if (!is_e164(out))
                fail_msg("\"%s\" → \"%s\" is not E.164", in, out);
            assert_int_equal(rb_phone_normalize(out, again, NULL), RB_OK);
            assert_string_equal(again, out);
        } else {
            refused++;
            assert_string_equal(out, "");
            assert_non_null(why);
        }
    }
    /* The generator exercises both outcomes. */
    assert_true(ok > 1000);
    assert_true(refused > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pakistani_mobile_forms_all_agree),
        cmocka_unit_test(every_mobile_prefix_is_accepted),
        cmocka_unit_test(landlines_keep_their_area_code),
        cmocka_unit_test(other_countries_pass_as_e164),
        cmocka_unit_test(refusals_say_why),
        cmocka_unit_test(failure_clears_output_and_why_is_optional),
        cmocka_unit_test(last4_and_mask),
        cmocka_unit_test(results_are_e164_and_stable_on_random_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
