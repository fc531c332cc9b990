/* core/staff/reports.c: the CSV field writer (RFC 4180 quoting: commas, quotes, line breaks;
 * formula-looking cells neutralised) and
 * the strict date parser of report periods (real calendar dates only, day numbers that
 * subtract to the length of a period). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/common.h"
#include "staff/reports.h"

/* The field as rb_reports_csv_field writes it. Returns a new string. */
static char *field(const char *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    rb_reports_csv_field(out, s);
    fclose(out);
    return text;
}

static void expect_field(const char *in, const char *want)
{
    char *got = field(in);
    assert_string_equal(got, want);
    free(got);
}

static void csv_fields_are_quoted_only_when_needed(void **state)
{
    (void)state;
    expect_field("police", "police");
    expect_field("", "");
    expect_field(NULL, "");
    expect_field("Revenue, Board of", "\"Revenue, Board of\"");
    expect_field("the \"Patwari\" office", "\"the \"\"Patwari\"\" office\"");
    expect_field("two\nlines", "\"two\nlines\"");
    expect_field("cr\rhere", "\"cr\rhere\"");
    expect_field("\"", "\"\"\"\"");
    expect_field("محکمہ مال، لاہور", "محکمہ مال، لاہور"); /* the Arabic comma is not a separator */
}

static void csv_fields_that_a_spreadsheet_would_run_are_neutralised(void **state)
{
    (void)state;
    expect_field("=HYPERLINK(\"http://x.invalid\")", "\"'=HYPERLINK(\"\"http://x.invalid\"\")\"");
    expect_field("=1+1", "'=1+1");
    expect_field("+92300", "'+92300");
    expect_field("-2+3", "'-2+3");
    expect_field("@SUM(A1:A9)", "'@SUM(A1:A9)");
    expect_field("\tcmd", "'\tcmd");
    expect_field("\rcmd", "\"'\rcmd\"");
    expect_field("=a,b", "\"'=a,b\"");
    /* numbers stay numbers; the characters elsewhere are harmless */
    expect_field("-3", "-3");
    expect_field("-12.5", "-12.5");
    expect_field("12", "12");
    expect_field("a=b", "a=b");
    expect_field("-", "'-");
}

static void dates_are_real_calendar_dates(void **state)
{
    (void)state;
    long a = -1, b = -1;
    assert_int_equal(rb_reports_parse_date("1970-01-01", &a), 0);
    assert_int_equal(a, 0);
    assert_int_equal(rb_reports_parse_date("2026-01-01", &a), 0);
    assert_int_equal(rb_reports_parse_date("2026-12-31", &b), 0);
    assert_int_equal(b - a, 364);
    assert_int_equal(rb_reports_parse_date("2024-02-29", &a), 0); /* leap year */
    assert_int_equal(rb_reports_parse_date("2024-03-01", &b), 0);
    assert_int_equal(b - a, 1);
    assert_int_equal(rb_reports_parse_date("2000-02-29", &a), 0); /* divisible by 400 */
    static const char *const bad[] = {
        "2026-02-29", "1900-02-29", "2026-13-01", "2026-00-10", "2026-04-31", "2026-01-00",
        "2026-1-01",  "26-01-01",   "2026/01/01", "2026-01-01T00:00:00", " 2026-01-01",
        "2026-01-0x", "",           "1899-12-31", "+026-01-01", "2026-01-01\n", "2026--1-01",
    };
    for (size_t i = 0; i < RB_ARRAY_LEN(bad); i++) {
        long d = 12345;
        assert_int_equal(rb_reports_parse_date(bad[i], &d), -1);
        assert_int_equal(d, 12345);
    }
    assert_int_equal(rb_reports_parse_date(NULL, &a), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(csv_fields_are_quoted_only_when_needed),
        cmocka_unit_test(csv_fields_that_a_spreadsheet_would_run_are_neutralised),
        cmocka_unit_test(dates_are_real_calendar_dates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
