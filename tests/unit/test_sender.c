/* Unit tests of core/messages/sender.c: the registry of senders by channel (no jobs, no
 * database: as under --check). One sender per channel, with a sentence naming both plugins;
 * channel names checked; a channel nobody sends refused with the channels there are. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/common.h"
#include "base/process.h"
#include "messages/sender.h"

static void send_nothing(struct rb_message_send *send, const struct rb_message_info *m,
                         void *arg)
{
    (void)send;
    (void)m;
    (void)arg;
}

static void one_sender_per_channel_naming_both_plugins(void **state)
{
    (void)state;
    struct rb_server srv = {0};
    srv.senders = rb_senders_new();
    char why[400];
    assert_int_equal(rb_sender_register(&srv, "sms", "sms_kannel", send_nothing, NULL, why,
                                        sizeof(why)),
                     RB_OK);
    assert_int_equal(rb_sender_register(&srv, "email", "email_smtp", send_nothing, NULL, why,
                                        sizeof(why)),
                     RB_OK);
    assert_int_equal(rb_sender_register(&srv, "sms", "other_sms", send_nothing, NULL, why,
                                        sizeof(why)),
                     RB_EEXIST);
    assert_non_null(strstr(why, "plugin other_sms cannot send channel \"sms\""));
    assert_non_null(strstr(why, "plugin sms_kannel sends it already"));
    assert_true(rb_sender_has(&srv, "sms"));
    assert_true(rb_sender_has(&srv, "email"));
    assert_false(rb_sender_has(&srv, "call"));
    char list[64];
    rb_sender_list(&srv, list, sizeof(list));
    assert_string_equal(list, "sms, email");
    rb_senders_free(srv.senders);
}

static void channel_names_are_checked(void **state)
{
    (void)state;
    struct rb_server srv = {0};
    srv.senders = rb_senders_new();
    char why[400];
    const char *bad[] = {"", "SMS", "1sms", "sms-x", "a b",
                         "a_channel_name_longer_than_32_chars", NULL};
    for (const char **b = bad; *b; b++)
        assert_int_equal(rb_sender_register(&srv, *b, "p", send_nothing, NULL, why, sizeof(why)),
                         RB_EINVAL);
    assert_int_equal(rb_sender_register(&srv, NULL, "p", send_nothing, NULL, why, sizeof(why)),
                     RB_EINVAL);
    assert_int_equal(rb_sender_register(&srv, "fax", "p", NULL, NULL, why, sizeof(why)),
                     RB_EINVAL);
    assert_int_equal(rb_sender_register(&srv, "fax_2", "p", send_nothing, NULL, why,
                                        sizeof(why)),
                     RB_OK);
    rb_senders_free(srv.senders);
}

static void a_channel_nobody_sends_is_refused_with_the_channels_there_are(void **state)
{
    (void)state;
    struct rb_server srv = {0};
    srv.senders = rb_senders_new();
    char why[400];
    assert_int_equal(rb_sender_check(&srv, "sms", why, sizeof(why)), RB_EINVAL);
    assert_non_null(strstr(why, "(channels with a sender: none)"));
    rb_sender_register(&srv, "sms", "sms_kannel", send_nothing, NULL, why, sizeof(why));
    assert_int_equal(rb_sender_check(&srv, "sms", why, sizeof(why)), RB_OK);
    assert_int_equal(rb_sender_check(&srv, "pigeon", why, sizeof(why)), RB_EINVAL);
    assert_non_null(strstr(why, "no loaded plugin sends messages of channel \"pigeon\""));
    assert_non_null(strstr(why, "(channels with a sender: sms)"));
    rb_senders_free(srv.senders);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_sender_per_channel_naming_both_plugins),
        cmocka_unit_test(channel_names_are_checked),
        cmocka_unit_test(a_channel_nobody_sends_is_refused_with_the_channels_there_are),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
