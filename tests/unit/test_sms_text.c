/* Unit tests of the SMS plugin's text work (plugins/sms_kannel/sms_text.c): UTF-8 checks,
 * Urdu detection, command recognition (with Urdu/Arabic digits), reply texts, URL encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/sms_kannel/sms_text.c"

#define S(x) x, strlen(x)

static void utf8_valid_accepts_urdu_and_refuses_malformed(void **state)
{
    (void)state;
    assert_true(rb_sms_utf8_valid(S("سڑک ٹوٹی ہوئی ہے")));
    assert_true(rb_sms_utf8_valid(S("plain ascii")));
    assert_true(rb_sms_utf8_valid(S("emoji \xF0\x9F\x98\x80")));
    assert_false(rb_sms_utf8_valid(S("bad \xFF byte")));
    assert_false(rb_sms_utf8_valid(S("overlong \xC0\x80")));
    assert_false(rb_sms_utf8_valid(S("surrogate \xED\xA0\x80")));
    assert_false(rb_sms_utf8_valid(S("truncated \xD8")));
    assert_false(rb_sms_utf8_valid("nul\0inside", 10));
}

static void field_valid_refuses_control_characters_and_malformed(void **state)
{
    (void)state;
    assert_true(rb_sms_field_valid(S("0f3c9b2e-1a4d-4e8b-9c1f-7d2a6b5e4c3a")));
    assert_true(rb_sms_field_valid(S("8080")));
    assert_true(rb_sms_field_valid(S("۸۰۸۰")));
    assert_false(rb_sms_field_valid(S("line\nbreak")));
    assert_false(rb_sms_field_valid(S("tab\there")));
    assert_false(rb_sms_field_valid(S("del\x7f")));
    assert_false(rb_sms_field_valid(S("bad \xFF byte")));
    assert_false(rb_sms_field_valid("nul\0inside", 10));
}

static void language_is_urdu_for_arabic_script_letters(void **state)
{
    (void)state;
    assert_string_equal(rb_sms_language(S("پانی نہیں آ رہا")), "ur");
    assert_string_equal(rb_sms_language(S("no water since Monday")), "en");
    assert_string_equal(rb_sms_language(S("mixed text with پانی")), "ur");
    /* digits alone are not letters */
    assert_string_equal(rb_sms_language(S("۱۲۳ 456")), "en");
}

static void commands_are_recognised(void **state)
{
    (void)state;
    char arg[48];
    const char *lang;
    assert_int_equal(rb_sms_command(S("STATUS RB-9T1SG-GK0QM-9"), arg, sizeof(arg), &lang),
                     RB_SMS_STATUS);
    assert_string_equal(arg, "RB-9T1SG-GK0QM-9");
    assert_string_equal(lang, "en");
    assert_int_equal(rb_sms_command(S("  status   rb 9t1sg gk0qm 9 \n"), arg, sizeof(arg), &lang),
                     RB_SMS_STATUS);
    assert_string_equal(arg, "rb9t1sggk0qm9");
    assert_int_equal(rb_sms_command(S("حالت ۱۲۳٤٥"), arg, sizeof(arg), &lang), RB_SMS_STATUS);
    assert_string_equal(arg, "12345");
    assert_string_equal(lang, "ur");
    assert_int_equal(rb_sms_command(S("STATUS"), arg, sizeof(arg), &lang), RB_SMS_STATUS);
    assert_string_equal(arg, "");
    assert_int_equal(rb_sms_command(S("help"), arg, sizeof(arg), &lang), RB_SMS_HELP);
    assert_int_equal(rb_sms_command(S("مدد"), arg, sizeof(arg), &lang), RB_SMS_HELP);
    assert_string_equal(lang, "ur");
    assert_int_equal(rb_sms_command(S("Stop"), arg, sizeof(arg), &lang), RB_SMS_STOP);
    assert_int_equal(rb_sms_command(S(" START "), arg, sizeof(arg), &lang), RB_SMS_START);
}

static void free_text_that_starts_like_a_command_is_a_complaint(void **state)
{
    (void)state;
    char arg[48];
    const char *lang;
    assert_int_equal(rb_sms_command(S("stop the noise from the factory"), arg, sizeof(arg),
                                    &lang), RB_SMS_COMPLAINT);
    assert_int_equal(rb_sms_command(S("Status of my domicile is pending for months, please"),
                                    arg, sizeof(arg), &lang), RB_SMS_COMPLAINT);
    assert_int_equal(rb_sms_command(S("STATUSES"), arg, sizeof(arg), &lang), RB_SMS_COMPLAINT);
    assert_int_equal(rb_sms_command(S("help me, the road is broken"), arg, sizeof(arg), &lang),
                     RB_SMS_COMPLAINT);
    assert_int_equal(rb_sms_command(S("حالت بہت خراب ہے"), arg, sizeof(arg), &lang),
                     RB_SMS_COMPLAINT);
    assert_string_equal(lang, "ur");
}

static void urdu_stop_start_and_rating_digits(void **state)
{
    (void)state;
    char arg[48];
    const char *lang;
    assert_int_equal(rb_sms_command(S(" بند "), arg, sizeof(arg), &lang), RB_SMS_STOP);
    assert_string_equal(lang, "ur");
    assert_int_equal(rb_sms_command(S("شروع"), arg, sizeof(arg), &lang), RB_SMS_START);
    assert_string_equal(lang, "ur");
    assert_int_equal(rb_sms_command(S("بند سڑک کھولیں"), arg, sizeof(arg), &lang),
                     RB_SMS_COMPLAINT);
    /* "reply 1 / 2" in ASCII, Urdu (U+06F1/2) and Arabic (U+0661/2) digits */
    static const char *const ones[] = {"1", " 1\n", "\xDB\xB1", "\xD9\xA1"};
    static const char *const twos[] = {"2", "\xDB\xB2", "\xD9\xA2 "};
    for (size_t i = 0; i < sizeof(ones) / sizeof(ones[0]); i++) {
        assert_int_equal(rb_sms_command(S(ones[i]), arg, sizeof(arg), &lang), RB_SMS_RATING);
        assert_string_equal(arg, "1");
    }
    for (size_t i = 0; i < sizeof(twos) / sizeof(twos[0]); i++) {
        assert_int_equal(rb_sms_command(S(twos[i]), arg, sizeof(arg), &lang), RB_SMS_RATING);
        assert_string_equal(arg, "2");
    }
    assert_int_equal(rb_sms_command(S("3"), arg, sizeof(arg), &lang), RB_SMS_COMPLAINT);
    assert_int_equal(rb_sms_command(S("12"), arg, sizeof(arg), &lang), RB_SMS_COMPLAINT);
    assert_int_equal(rb_sms_command(S("1 street lights out"), arg, sizeof(arg), &lang),
                     RB_SMS_COMPLAINT);
    assert_string_equal(rb_sms_cmd_name(RB_SMS_RATING), "rating");
    assert_string_equal(rb_sms_cmd_name(RB_SMS_FLOOD), "flood");
}

static void flood_limit_replies_once_then_silence_until_the_window_passes(void **state)
{
    (void)state;
    rb_sms_flood_reset();
    for (int i = 0; i < 3; i++)
        assert_int_equal(rb_sms_flood_check("+923001234567", 100.0 + i, 3, 60), RB_SMS_FLOOD_OK);
    assert_int_equal(rb_sms_flood_check("+923001234567", 104, 3, 60), RB_SMS_FLOOD_REPLY);
    assert_int_equal(rb_sms_flood_check("+923001234567", 105, 3, 60), RB_SMS_FLOOD_SILENT);
    assert_int_equal(rb_sms_flood_check("+923001234567", 159, 3, 60), RB_SMS_FLOOD_SILENT);
    /* another phone is not affected */
    assert_int_equal(rb_sms_flood_check("+923009999999", 106, 3, 60), RB_SMS_FLOOD_OK);
    /* the window has passed: a fresh start */
    assert_int_equal(rb_sms_flood_check("+923001234567", 160.5, 3, 60), RB_SMS_FLOOD_OK);
    /* 0: no limit */
    for (int i = 0; i < 100; i++)
        assert_int_equal(rb_sms_flood_check("+923001111111", 1, 0, 60), RB_SMS_FLOOD_OK);
    /* many phones at once (more than the table holds) never crash nor block a new phone */
    char phone[20];
    for (int i = 0; i < 20000; i++) {
        snprintf(phone, sizeof(phone), "+9230%08d", i);
        assert_int_equal(rb_sms_flood_check(phone, 200, 3, 60), RB_SMS_FLOOD_OK);
    }
}

static void urlencode_and_secret(void **state)
{
    (void)state;
    char *s = rb_sms_urlencode("a b+/ک%");
    assert_string_equal(s, "a%20b%2B%2F%DA%A9%25");
    free(s);
    assert_true(rb_sms_secret_ok("same-secret", "same-secret"));
    assert_false(rb_sms_secret_ok("same-secreT", "same-secret"));
    assert_false(rb_sms_secret_ok("same", "same-secret"));
    assert_false(rb_sms_secret_ok("", "same-secret"));
    assert_false(rb_sms_secret_ok(NULL, "same-secret"));
}

static void reply_prefix_finds_a_leading_tracking_number(void **state)
{
    (void)state;
    char out[48];
    const char *t = "RB-9T1SG-GK0QM-9 the street is Mall Road";
    size_t off = rb_sms_reply_prefix(S(t), out, sizeof(out));
    assert_string_equal(out, "RB-9T1SG-GK0QM-9");
    assert_string_equal(t + off, "the street is Mall Road");
    /* lower case, '#', no separators, a ':' after it, leading spaces */
    t = "  #rb9t1sggk0qm9: yes, still leaking";
    off = rb_sms_reply_prefix(S(t), out, sizeof(out));
    assert_string_equal(out, "RB9t1sggk0qm9");
    assert_string_equal(t + off, "yes, still leaking");
    /* Urdu and Arabic digits are read as digits; Urdu separators before the answer */
    t = "RB-۹T۱SG-GK٠QM-۹، گلی نمبر ۵";
    off = rb_sms_reply_prefix(S(t), out, sizeof(out));
    assert_string_equal(out, "RB-9T1SG-GK0QM-9");
    assert_string_equal(t + off, "گلی نمبر ۵");
    /* a mistyped number still looks like one (tracking_parse tells the typo) */
    t = "RB-9T1SG-GK0QM-8 answer";
    assert_int_not_equal(rb_sms_reply_prefix(S(t), out, sizeof(out)), 0);
    assert_string_equal(out, "RB-9T1SG-GK0QM-8");
    /* a separator right after the number, then the answer */
    t = "RB-9T1SG-GK0QM-9-answer";
    off = rb_sms_reply_prefix(S(t), out, sizeof(out));
    assert_string_equal(t + off, "answer");
}

static void reply_prefix_refuses_what_is_not_one(void **state)
{
    (void)state;
    char out[48];
    static const char *const no[] = {
        "the street is Mall Road",           /* no number */
        "RB-9T1SG-GK0QM-9",                  /* nothing after it */
        "RB-9T1SG-GK0QM-9   \n",             /* only spaces after it */
        "RB-9T1SG-GK0QM-99 answer",          /* 12 symbols */
        "RB-9T1SG-GK0QM answer",             /* 10 symbols */
        "RB 9T1SG GK0QM 9 answer",           /* not one word */
        "RB-9T1SG-GK0QM-9x answer",          /* does not end its word */
        "RB-9T1SG-GK0QM-9پانی",              /* an Urdu letter glued to it */
        "Rbx road is broken since Monday",   /* a word that starts with RB */
        "9T1SG-GK0QM-9 answer",              /* no RB: electricity, ... would look alike */
        "electricity is off since Monday",
        "",
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        strcpy(out, "x");
        if (rb_sms_reply_prefix(S(no[i]), out, sizeof(out)) != 0)
            fail_msg("\"%s\" was taken for a tracking number and an answer", no[i]);
        assert_string_equal(out, "");
    }
    /* too small a buffer: no prefix rather than a cut number */
    char small[8];
    assert_int_equal(rb_sms_reply_prefix(S("RB-9T1SG-GK0QM-9 answer"), small, sizeof(small)), 0);
    assert_string_equal(small, "");
    assert_string_equal(rb_sms_cmd_name(RB_SMS_REPLY), "reply");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8_valid_accepts_urdu_and_refuses_malformed),
        cmocka_unit_test(field_valid_refuses_control_characters_and_malformed),
        cmocka_unit_test(language_is_urdu_for_arabic_script_letters),
        cmocka_unit_test(commands_are_recognised),
        cmocka_unit_test(free_text_that_starts_like_a_command_is_a_complaint),
        cmocka_unit_test(urdu_stop_start_and_rating_digits),
        cmocka_unit_test(flood_limit_replies_once_then_silence_until_the_window_passes),
        cmocka_unit_test(urlencode_and_secret),
        cmocka_unit_test(reply_prefix_finds_a_leading_tracking_number),
        cmocka_unit_test(reply_prefix_refuses_what_is_not_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
