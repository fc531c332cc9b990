/* Unit tests of the pace (core/base/pace.c): the burst at once and then one turn per interval,
 * long queues spaced over their whole length, the count of turns in a window agreeing with
 * the turns taken, an idle spell refilling the burst, and a changed rate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/pace.h"

static void the_burst_goes_at_once_then_one_turn_per_interval(void **state)
{
    (void)state;
    struct rb_pace p = {0};
    rb_pace_set(&p, 50, 5);
    double now = 1000;
    for (int k = 0; k < 5; k++)
        assert_true(rb_pace_take(&p, now) == now);
    double prev = now;
    for (int k = 5; k < 15; k++) { /* 20 ms apart, in order */
        double at = rb_pace_take(&p, now);
        assert_true(at > prev);
        assert_true(at - now > (k - 4) * 0.02 - 1e-9 && at - now < (k - 4) * 0.02 + 1e-9);
        prev = at;
    }
}

static void thousands_of_turns_are_spaced_over_the_whole_queue(void **state)
{
    (void)state;
    struct rb_pace p = {0};
    rb_pace_set(&p, 50, 1);
    double now = 5, last = 0;
    for (int k = 0; k < 3000; k++)
        last = rb_pace_take(&p, now);
    /* 3,000 at 50/s: the last starts 59.98 s after the first */
    assert_true(last - now > 59.97 && last - now < 59.99);
}

static void turns_in_a_window_are_the_turns_that_start_in_it(void **state)
{
    (void)state;
    const double rates[] = {0.5, 10, 50, 333};
    const int bursts[] = {1, 3, 10};
    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
        for (size_t j = 0; j < sizeof(bursts) / sizeof(bursts[0]); j++) {
            struct rb_pace p = {0};
            rb_pace_set(&p, rates[i], bursts[j]);
            double now = 77;
            (void)rb_pace_take(&p, now); /* part of the schedule used already */
            (void)rb_pace_take(&p, now);
            double n = rb_pace_turns(&p, now, 1.0);
            struct rb_pace q = p;
            for (int k = 0; k < (int)n; k++)
                assert_true(rb_pace_take(&q, now) <= now + 1.0 + 1e-9);
            assert_true(rb_pace_take(&q, now) > now + 1.0 - 1e-9);
        }
}

static void an_idle_spell_gives_the_burst_back_and_no_more(void **state)
{
    (void)state;
    struct rb_pace p = {0};
    rb_pace_set(&p, 10, 3);
    for (int k = 0; k < 30; k++)
        (void)rb_pace_take(&p, 0);
    /* the schedule runs 3 s ahead: nothing starts now */
    assert_true(rb_pace_turns(&p, 0, 0) == 0);
    /* a minute later: the burst again, then the rate */
    double now = 60;
    assert_true(rb_pace_turns(&p, now, 0) == 3);
    for (int k = 0; k < 3; k++)
        assert_true(rb_pace_take(&p, now) == now);
    assert_true(rb_pace_take(&p, now) > now + 0.099);
}

static void a_new_rate_applies_to_the_turns_after_it(void **state)
{
    (void)state;
    struct rb_pace p = {0};
    rb_pace_set(&p, 1, 1);
    assert_true(rb_pace_take(&p, 0) == 0);
    assert_true(rb_pace_take(&p, 0) == 1); /* taken at the old rate */
    rb_pace_set(&p, 100, 1);
    double at = rb_pace_take(&p, 0);
    assert_true(at == 2);                  /* after the turns already given out */
    assert_true(rb_pace_take(&p, 0) > 2.0099 && rb_pace_take(&p, 0) < 2.0201);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_burst_goes_at_once_then_one_turn_per_interval),
        cmocka_unit_test(thousands_of_turns_are_spaced_over_the_whole_queue),
        cmocka_unit_test(turns_in_a_window_are_the_turns_that_start_in_it),
        cmocka_unit_test(an_idle_spell_gives_the_burst_back_and_no_more),
        cmocka_unit_test(a_new_rate_applies_to_the_turns_after_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
