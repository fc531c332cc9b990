/* Unit tests of core/cases/case_comment.c: the requests refused before anything is sent to the
 * database (the statement itself runs in tests/integration/test_app_cases.py and
 * test_sms.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cases/case_comment.h"

static void never_called(PGresult *res, const char *err, void *arg)
{
    (void)res, (void)err, (void)arg;
    fail_msg("the callback ran for a refused comment");
}

static void incomplete_requests_are_refused_before_the_database(void **state)
{
    (void)state;
    const struct rb_case_comment ok = {
        .size = sizeof(ok), .tracking = "RB-9T1SG-GK0QM-9", .citizen_id = 7, .text = "Street 7",
        .channel = "sms", .idem_scope = "sms_kannel", .idem_key = "k1", .idem_hash = "00",
        .reply_body = "thanks", .reply_channel = "sms", .reply_to = "+923001234567",
    };
    struct rb_case_comment c;
    /* A NULL pool: any request that got as far as the database would crash here. */
    c = ok, c.tracking = NULL;
    assert_int_equal(rb_case_comment(NULL, &c, never_called, NULL), RB_EINVAL);
    c = ok, c.text = NULL;
    assert_int_equal(rb_case_comment(NULL, &c, never_called, NULL), RB_EINVAL);
    c = ok, c.citizen_id = 0;
    assert_int_equal(rb_case_comment(NULL, &c, never_called, NULL), RB_EINVAL);
    c = ok, c.idem_hash = NULL; /* a key without its hash */
    assert_int_equal(rb_case_comment(NULL, &c, never_called, NULL), RB_EINVAL);
    c = ok, c.idem_scope = NULL;
    assert_int_equal(rb_case_comment(NULL, &c, never_called, NULL), RB_EINVAL);
    c = ok, c.reply_to = NULL; /* a confirmation with nowhere to go */
    assert_int_equal(rb_case_comment(NULL, &c, never_called, NULL), RB_EINVAL);
    c = ok, c.reply_channel = NULL;
    assert_int_equal(rb_case_comment(NULL, &c, never_called, NULL), RB_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(incomplete_requests_are_refused_before_the_database),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
