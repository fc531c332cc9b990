/* Unit tests of the SMS plugin's sending schedule (plugins/sms_kannel/sms_mt.c): the rate a
 * second and the burst, slots kept for the jobs told to come back, and many jobs at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/sms_kannel/sms_mt.c"
#include "../../plugins/sms_kannel/sms_text.c"

/* What sms_kannel.c defines for the plugin; slot_take reads only the rate and the burst. */
const struct rb_host_api *rb_sms_api;
struct rb_sms_conf rb_sms_conf;

static void reset(double rate, long long burst)
{
    rb_sms_slots_free();
    next_at = 0;
    rb_sms_conf.rate = rate;
    rb_sms_conf.burst = burst;
}

static void the_burst_goes_at_once_then_one_slot_per_interval(void **state)
{
    (void)state;
    reset(50, 5);
    for (long long j = 1; j <= 5; j++)
        assert_true(slot_take(j) == 0);
    /* the 6th .. 15th: 20 ms apart, in order */
    double prev = 0;
    for (long long j = 6; j <= 15; j++) {
        double w = slot_take(j);
        assert_true(w > prev);
        assert_true(w < (double)(j - 5) * 0.02 + 0.005);
        prev = w;
    }
    assert_true(prev > 0.18 && prev < 0.205);
    rb_sms_slots_free();
}

static void a_job_that_comes_back_goes_at_once_and_keeps_its_place(void **state)
{
    (void)state;
    reset(10, 1);
    assert_true(slot_take(100) == 0);
    double w1 = slot_take(101), w2 = slot_take(102);
    assert_true(w1 > 0.05 && w1 <= 0.1);
    assert_true(w2 > 0.15 && w2 <= 0.2);
    /* 101 returns (the queue ran it at its slot): it goes, and takes no new slot */
    assert_true(slot_take(101) == 0);
    /* its slot is used up: a second return is a new job asking again */
    double w3 = slot_take(103);
    assert_true(w3 > 0.25 && w3 <= 0.3);
    /* 102 is still owed its place */
    assert_true(slot_take(102) == 0);
    rb_sms_slots_free();
}

static void thousands_of_jobs_are_spaced_over_the_whole_queue(void **state)
{
    (void)state;
    reset(50, 1);
    assert_true(slot_take(1) == 0);
    double last = 0;
    for (long long j = 2; j <= 3000; j++)
        last = slot_take(j);
    /* 3,000 messages at 50/s: the last slot is about 60 s out */
    assert_true(last > 59.9 && last < 60.1);
    /* every one of them finds its slot on return */
    for (long long j = 2; j <= 3000; j++)
        assert_true(slot_take(j) == 0);
    assert_int_equal(n_slots, 0);
    rb_sms_slots_free();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_burst_goes_at_once_then_one_slot_per_interval),
        cmocka_unit_test(a_job_that_comes_back_goes_at_once_and_keeps_its_place),
        cmocka_unit_test(thousands_of_jobs_are_spaced_over_the_whole_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
