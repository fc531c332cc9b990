/* Logging: one JSON line per call; a flood of one warning (same call site, same text) written
 * as its first RB_LOG_REPEAT_BURST lines plus ONE line with the count of the rest; different
 * lines of one call site all written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/log.h"

/* Runs fn with the log going to a temporary file; returns what was written (caller frees). */
static char *capture(void (*fn)(void))
{
    FILE *f = tmpfile();
    assert_non_null(f);
    int old = rb_log_set_fd(fileno(f));
    fn();
    rb_log_set_fd(old);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *s = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return s;
}

static size_t count(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void flood(void)
{
    for (int i = 0; i < 100000; i++)
        rb_warn("message", "not queued (sla.escalated, ur): no sender for channel %s", "sms");
    rb_warn("other", "a different call site is written at once");
    rb_log_flush();
}

static void a_flood_is_counted_not_written(void **state)
{
    (void)state;
    char *s = capture(flood);
    /* the first lines of the burst, in full ... */
    assert_int_equal(count(s, "no sender for channel sms"), RB_LOG_REPEAT_BURST + 1);
    /* ... then one line with the count of the rest and the last of them */
    assert_int_equal(count(s, "\"suppressed\":"), 1);
    char want[96];
    snprintf(want, sizeof(want), "\"suppressed\":%d", 100000 - RB_LOG_REPEAT_BURST);
    assert_non_null(strstr(s, want));
    assert_non_null(strstr(s, "the last: not queued (sla.escalated, ur): no sender for "
                              "channel sms\""));
    assert_non_null(strstr(s, "a different call site is written at once"));
    assert_int_equal(count(s, "\n"), RB_LOG_REPEAT_BURST + 2);
    free(s);
}

static void distinct(void)
{
    for (int i = 0; i < 3 * RB_LOG_REPEAT_BURST; i++)
        rb_warn("webhook", "callback refused (%d): reason %d", 400 + i, i);
    rb_log_flush();
}

static void different_lines_of_one_site_are_all_written(void **state)
{
    (void)state;
    char *s = capture(distinct);
    assert_int_equal(count(s, "\n"), 3 * RB_LOG_REPEAT_BURST);
    assert_non_null(strstr(s, "callback refused (429): reason 29"));
    assert_null(strstr(s, "suppressed"));
    free(s);
}

static void info_lines(void)
{
    for (int i = 0; i < 3 * RB_LOG_REPEAT_BURST; i++)
        rb_info("x", "info line %d", i);
    rb_log_flush();
}

static void info_is_never_held_back(void **state)
{
    (void)state;
    char *s = capture(info_lines);
    assert_int_equal(count(s, "\n"), 3 * RB_LOG_REPEAT_BURST);
    assert_null(strstr(s, "suppressed"));
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_flood_is_counted_not_written),
        cmocka_unit_test(different_lines_of_one_site_are_all_written),
        cmocka_unit_test(info_is_never_held_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
