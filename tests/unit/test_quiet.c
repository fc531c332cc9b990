/* Unit tests of core/config/quiet.c: parsing quiet hours and the wait they impose (a window
 * crossing midnight, a zone with daylight saving time). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/common.h"
#include "config/quiet.h"
#include "config/tz.h"

static void quiet_hours_parse(void **state)
{
    (void)state;
    struct rb_quiet q;
    assert_int_equal(rb_quiet_parse("21:00-08:00", &q), RB_OK);
    assert_int_equal(q.start, 21 * 3600);
    assert_int_equal(q.end, 8 * 3600);
    assert_int_equal(rb_quiet_parse("00:00-23:59", &q), RB_OK);
    assert_int_equal(rb_quiet_parse("24:00-08:00", &q), RB_EINVAL);
    assert_int_equal(rb_quiet_parse("21:60-08:00", &q), RB_EINVAL);
    assert_int_equal(rb_quiet_parse("21:00", &q), RB_EINVAL);
    assert_int_equal(rb_quiet_parse("9:00-08:00", &q), RB_EINVAL);
    assert_int_equal(rb_quiet_parse("21:00-08:00x", &q), RB_EINVAL);
    assert_int_equal(rb_quiet_parse(NULL, &q), RB_EINVAL);
    /* with seconds, on either end */
    assert_int_equal(rb_quiet_parse("07:59:30-08:00:05", &q), RB_OK);
    assert_int_equal(q.start, 7 * 3600 + 59 * 60 + 30);
    assert_int_equal(q.end, 8 * 3600 + 5);
    assert_int_equal(rb_quiet_parse("21:00-08:00:05", &q), RB_OK);
    assert_int_equal(q.end, 8 * 3600 + 5);
    assert_int_equal(rb_quiet_parse("21:00:60-08:00", &q), RB_EINVAL);
    assert_int_equal(rb_quiet_parse("21:00:5-08:00", &q), RB_EINVAL);
    assert_int_equal(rb_quiet_parse("21:00-08:00:", &q), RB_EINVAL);
}

/* 2026-01-15 00:00 UTC */
#define JAN15 INT64_C(1768435200)

static void quiet_window_crossing_midnight_in_karachi(void **state)
{
    (void)state;
    char *why = NULL;
    struct rb_tz *tz = rb_tz_load("Asia/Karachi", &why);
    assert_non_null(tz);
    struct rb_quiet q;
    rb_quiet_parse("21:00-08:00", &q);
    /* Karachi is UTC+5: 16:00 UTC is 21:00 local. */
    assert_int_equal(rb_quiet_wait(&q, tz, JAN15 + 15 * 3600 + 59 * 60), 0); /* 20:59 */
    assert_int_equal(rb_quiet_wait(&q, tz, JAN15 + 16 * 3600), 11 * 3600);   /* 21:00 */
    assert_int_equal(rb_quiet_wait(&q, tz, JAN15 + 19 * 3600 + 30 * 60),     /* 00:30 next day */
                     7 * 3600 + 30 * 60);
    assert_int_equal(rb_quiet_wait(&q, tz, JAN15 + 27 * 3600 - 1), 1);       /* 07:59:59 */
    assert_int_equal(rb_quiet_wait(&q, tz, JAN15 + 27 * 3600), 0);           /* 08:00 */
    assert_int_equal(rb_quiet_wait(&q, tz, JAN15 + 7 * 3600), 0);            /* 12:00 */
    /* a window within one day */
    rb_quiet_parse("13:00-14:00", &q);
    assert_int_equal(rb_quiet_wait(&q, tz, JAN15 + 8 * 3600 + 15 * 60), 45 * 60); /* 13:15 */
    assert_int_equal(rb_quiet_wait(&q, tz, JAN15 + 9 * 3600), 0);                 /* 14:00 */
    /* start == end: none */
    rb_quiet_parse("08:00-08:00", &q);
    assert_int_equal(rb_quiet_wait(&q, tz, JAN15 + 3 * 3600), 0);
    rb_tz_free(tz);
}

static void quiet_window_over_a_clock_change_in_london(void **state)
{
    (void)state;
    char *why = NULL;
    struct rb_tz *tz = rb_tz_load("Europe/London", &why);
    assert_non_null(tz);
    struct rb_quiet q;
    rb_quiet_parse("22:00-03:00", &q);
    /* 2026-03-29: at 01:00 UTC the clocks go from 01:00 GMT to 02:00 BST. The night of the
     * 28th: 22:00 GMT (= 22:00 UTC) to 03:00 BST (= 02:00 UTC) lasts 4 hours, not 5. */
    int64_t mar28 = rb_tz_days_from_civil(2026, 3, 28) * 86400;
    assert_int_equal(rb_quiet_wait(&q, tz, mar28 + 22 * 3600), 4 * 3600);
    assert_int_equal(rb_quiet_wait(&q, tz, mar28 + 25 * 3600), 3600); /* 02:00 BST */
    assert_int_equal(rb_quiet_wait(&q, tz, mar28 + 26 * 3600), 0);    /* 03:00 BST */
    /* 2026-10-25: at 01:00 UTC 02:00 BST goes back to 01:00 GMT; 22:00 BST (21:00 UTC) to
     * 03:00 GMT (03:00 UTC) lasts 6 hours. */
    int64_t oct24 = rb_tz_days_from_civil(2026, 10, 24) * 86400;
    assert_int_equal(rb_quiet_wait(&q, tz, oct24 + 21 * 3600), 6 * 3600);
    assert_int_equal(rb_quiet_wait(&q, tz, oct24 + 20 * 3600 + 59 * 60), 0);
    rb_tz_free(tz);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quiet_hours_parse),
        cmocka_unit_test(quiet_window_crossing_midnight_in_karachi),
        cmocka_unit_test(quiet_window_over_a_clock_change_in_london),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
