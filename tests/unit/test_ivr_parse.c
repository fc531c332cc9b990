/* Unit tests of the IVR plugin's wire parsers (plugins/ivr_asterisk/ivr_parse.c): FastAGI
 * header lines and every reply shape res_agi.c writes (200 with result, data and endpos, the
 * HANGUP notice, 510, 511, the 520 usage block, garbage), and AMI's banner and blank-line
 * framed messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/ivr_asterisk/ivr_parse.c"

static void agi_headers(void **state)
{
    (void)state;
    const char *k, *v;
    size_t kl;
    assert_int_equal(rb_agi_header("agi_callerid: +923001234567", &k, &kl, &v), 1);
    assert_int_equal(kl, strlen("agi_callerid"));
    assert_string_equal(v, "+923001234567");
    assert_int_equal(rb_agi_header("agi_accountcode: ", &k, &kl, &v), 1);
    assert_string_equal(v, "");
    assert_int_equal(rb_agi_header("agi_arg_1:x", &k, &kl, &v), 1);
    assert_string_equal(v, "x");
    assert_int_equal(rb_agi_header("", &k, &kl, &v), 0);
    assert_int_equal(rb_agi_header("callerid: 1", &k, &kl, &v), -1);
    assert_int_equal(rb_agi_header("agi_: 1", &k, &kl, &v), -1);
    assert_int_equal(rb_agi_header("agi_Caller: 1", &k, &kl, &v), -1);
    assert_int_equal(rb_agi_header("agi_callerid 1", &k, &kl, &v), -1);
}

static void agi_replies(void **state)
{
    (void)state;
    struct rb_agi_reply r;
    assert_int_equal(rb_agi_reply_parse("200 result=0", &r), RB_AGI_REPLY);
    assert_int_equal(r.code, 200);
    assert_true(r.is_num && r.num == 0 && r.endpos == -1);
    assert_int_equal(rb_agi_reply_parse("200 result=49 endpos=4000", &r), RB_AGI_REPLY);
    assert_true(r.num == 49 && r.endpos == 4000);
    assert_int_equal(rb_agi_reply_parse("200 result= (timeout)", &r), RB_AGI_REPLY);
    assert_string_equal(r.result, "");
    assert_false(r.is_num);
    assert_string_equal(r.data, "timeout");
    assert_int_equal(rb_agi_reply_parse("200 result=*12 (timeout)", &r), RB_AGI_REPLY);
    assert_string_equal(r.result, "*12");
    assert_int_equal(rb_agi_reply_parse("200 result=-1 (hangup) endpos=8000", &r), RB_AGI_REPLY);
    assert_true(r.is_num && r.num == -1 && r.endpos == 8000);
    assert_string_equal(r.data, "hangup");
    assert_int_equal(rb_agi_reply_parse("200 result=1 (MACHINE)", &r), RB_AGI_REPLY);
    assert_string_equal(r.data, "MACHINE");
    assert_int_equal(rb_agi_reply_parse("200 result=35 (dtmf) endpos=1234", &r), RB_AGI_REPLY);
    assert_int_equal(r.num, 35);
    assert_int_equal(rb_agi_reply_parse("200", &r), RB_AGI_REPLY);
    assert_false(r.has_result);
    assert_int_equal(rb_agi_reply_parse("HANGUP", &r), RB_AGI_HANGUP);
    assert_int_equal(rb_agi_reply_parse("510 Invalid or unknown command", &r), RB_AGI_REPLY);
    assert_int_equal(r.code, 510);
    assert_int_equal(rb_agi_reply_parse("511 Command Not Permitted on a dead channel or "
                                        "intercept routine", &r), RB_AGI_REPLY);
    assert_int_equal(r.code, 511);
    assert_int_equal(rb_agi_reply_parse("520-Invalid command syntax.  Proper usage follows:", &r),
                     RB_AGI_USAGE);
    assert_int_equal(rb_agi_reply_parse("520 End of proper usage.", &r), RB_AGI_REPLY);
    assert_int_equal(r.code, 520);
    assert_int_equal(rb_agi_reply_parse("299 result=0", &r), RB_AGI_BAD);
    assert_int_equal(rb_agi_reply_parse("200 result=1 (unclosed", &r), RB_AGI_BAD);
    assert_int_equal(rb_agi_reply_parse("200 resalt=1", &r), RB_AGI_BAD);
    assert_int_equal(rb_agi_reply_parse("2000 result=1", &r), RB_AGI_BAD);
    assert_int_equal(rb_agi_reply_parse("hello", &r), RB_AGI_BAD);
    assert_int_equal(rb_agi_reply_parse("", &r), RB_AGI_BAD);
    assert_true(rb_agi_arg_ok("rabta/ur/main-menu"));
    assert_false(rb_agi_arg_ok("a\nHANGUP"));
}

static void ami_banner_and_messages(void **state)
{
    (void)state;
    char ver[16];
    assert_int_equal(rb_ami_banner("Asterisk Call Manager/7.0.3", ver, sizeof(ver)), 1);
    assert_string_equal(ver, "7.0.3");
    assert_int_equal(rb_ami_banner("SSH-2.0-OpenSSH", ver, sizeof(ver)), 0);
    assert_int_equal(rb_ami_banner("Asterisk Call Manager/", ver, sizeof(ver)), 0);

    static struct rb_ami_msg m;
    rb_ami_msg_reset(&m);
    assert_int_equal(rb_ami_msg_line(&m, ""), 0); /* a stray blank line */
    assert_int_equal(rb_ami_msg_line(&m, "Event: OriginateResponse"), 0);
    assert_int_equal(rb_ami_msg_line(&m, "ActionID: rabta-12"), 0);
    assert_int_equal(rb_ami_msg_line(&m, "Response: Failure"), 0);
    assert_int_equal(rb_ami_msg_line(&m, "Reason: 5"), 0);
    assert_int_equal(rb_ami_msg_line(&m, "Uniqueid: <null>"), 0);
    assert_int_equal(rb_ami_msg_line(&m, "CallerIDNum:"), 0);
    assert_int_equal(rb_ami_msg_line(&m, ""), 1);
    assert_string_equal(rb_ami_get(&m, "event"), "OriginateResponse");
    assert_string_equal(rb_ami_get(&m, "ActionID"), "rabta-12");
    assert_string_equal(rb_ami_get(&m, "Reason"), "5");
    assert_string_equal(rb_ami_get(&m, "CallerIDNum"), "");
    assert_null(rb_ami_get(&m, "Cause"));
    rb_ami_msg_reset(&m);
    assert_int_equal(rb_ami_msg_line(&m, "no colon here"), -1);
    assert_int_equal(rb_ami_msg_line(&m, ": value"), -1);
    assert_int_equal(rb_ami_msg_line(&m, "Bad Key: v"), -1);
    rb_ami_msg_reset(&m);
    char line[200];
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    line[3] = ':';
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = rb_ami_msg_line(&m, line);
    assert_int_equal(rc, -1); /* a message too big for the buffer is refused, not overrun */
    assert_true(rb_ami_value_ok("PJSIP/+923001234567@pstn"));
    assert_false(rb_ami_value_ok("x\r\nAction: Logoff"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(agi_headers),
        cmocka_unit_test(agi_replies),
        cmocka_unit_test(ami_banner_and_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
