/* core/config/tz.c and core/config/calendar.c: the zone reader against offsets read off `date`, against the
 * C library for random instants, against hand-built TZif files of every version; calendars
 * from YAML with every error at file:line:col; deadlines across weekends, holidays, breaks,
 * closing times, both London clock changes; pause and resume; and hundreds of random cases
 * checked against a naive minute-by-minute reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "base/common.h"
#include "config/calendar.h"
#include "config/tz.h"

#define DATA RB_TEST_DATA_DIR "/calendars/"
#define H 3600
#define MIN 60

/* ---- helpers -------------------------------------------------------------------------------- */

/* An instant from a UTC date and time (timegm: the C library's, not ours). */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    return (int64_t)timegm(&tm);
}

/* Pakistan Standard Time is UTC+5 all year since 2009. */
static int64_t pkt(int y, int mo, int d, int h, int mi)
{
    return utc(y, mo, d, h, mi) - 5 * H;
}

static char *fmt_utc(int64_t t, char *buf)
{
    if (t == RB_CAL_NEVER)
        return strcpy(buf, "NEVER");
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

#define assert_instant(got, want)                                                             \
    do {                                                                                      \
        int64_t g_ = (got), w_ = (want);                                                      \
        char bg_[32], bw_[32];                                                                \
        if (g_ != w_)                                                                         \
            fail_msg("%s is %s, expected %s", #got, fmt_utc(g_, bg_), fmt_utc(w_, bw_));      \
    } while (0)

static struct rb_calendar *load(const char *file)
{
    struct rb_errors e;
    rb_errors_init(&e);
    char *path = rb_sprintf("%s%s", DATA, file);
    struct rb_calendar *c = rb_cal_load(path, &e);
    if (!c)
        fail_msg("%s did not load: %s", path, e.n ? e.msgs[0] : "(no message)");
    assert_int_equal(e.n, 0);
    free(path);
    rb_errors_free(&e);
    return c;
}

static struct rb_tz *zone(const char *name)
{
    char *why = NULL;
    struct rb_tz *tz = rb_tz_load(name, &why);
    if (!tz)
        fail_msg("zone %s: %s", name, why);
    return tz;
}

/* ---- the zone reader: known offsets --------------------------------------------------------- */

/* Precomputed by hand with `TZ=<zone> date -d <instant> +%z` (tzdata 2025b). */
static const struct {
    const char *zone;
    int64_t t;
    int32_t off;
} known[] = {
    {"Europe/London", 1782907200, 3600},        /* 2026-07-01T12:00Z is 13:00 BST */
    {"Europe/London", 1774745999, 0},           /* 2026-03-29T00:59:59Z, still GMT */
    {"Europe/London", 1774746000, 3600},        /* 2026-03-29T01:00Z, clocks go forward */
    {"Europe/London", 1792889999, 3600},        /* 2026-10-25T00:59:59Z, still BST */
    {"Europe/London", 1792890000, 0},           /* 2026-10-25T01:00Z, clocks go back */
    {"Europe/London", 2531955599, 0},           /* 2050-03-27T00:59:59Z: the footer's rule */
    {"Europe/London", 2531955600, 3600},        /* 2050-03-27T01:00Z */
    {"Europe/London", 16740864000, 3600},       /* 2500-07-01: past the expanded table */
    {"Europe/London", 16754083200, 0},          /* 2500-12-01 */
    {"Europe/London", 32511286799, 0},          /* 3000-03-30T00:59:59Z */
    {"Europe/London", 32511286800, 3600},       /* 3000-03-30T01:00Z */
    {"Europe/London", -2208988800, 0},          /* 1900-01-01 */
    {"Asia/Karachi", 1782907200, 18000},        /* 2026-07-01T12:00Z is 17:00 PKT */
    {"Asia/Karachi", 1213531200, 21600},        /* 2008-06-15: PKST, Pakistan's last DST */
    {"Asia/Karachi", -631152000, 19800},        /* 1950-01-01: +0530 */
    {"America/New_York", 1772953199, -18000},   /* 2026-03-08T06:59:59Z */
    {"America/New_York", 1772953200, -14400},   /* 2026-03-08T07:00Z */
    {"America/New_York", 1793512799, -14400},   /* 2026-11-01T05:59:59Z */
    {"America/New_York", 1793512800, -18000},   /* 2026-11-01T06:00Z */
    {"Australia/Sydney", 1775318399, 39600},    /* 2026-04-04T15:59:59Z, AEDT */
    {"Australia/Sydney", 1775318400, 36000},    /* 2026-04-04T16:00Z, AEST */
    {"Australia/Sydney", 1791043199, 36000},    /* 2026-10-03T15:59:59Z */
    {"Australia/Sydney", 1791043200, 39600},    /* 2026-10-03T16:00Z */
    {"Australia/Lord_Howe", 1767225600, 39600}, /* half-hour DST */
    {"Australia/Lord_Howe", 1782864000, 37800},
    {"Asia/Kathmandu", 1767225600, 20700},      /* +0545 */
    {"America/St_Johns", 1782864000, -9000},    /* -0230 */
    {"Pacific/Chatham", 1767225600, 49500},     /* +1345 */
    {"America/Nuuk", 1909094400, -3600},        /* 2030: a v3 footer with time -1 */
    {"America/Nuuk", 1893456000, -7200},
};

static void tz_offsets_match_date_output(void **state)
{
    (void)state;
    for (size_t i = 0; i < RB_ARRAY_LEN(known); i++) {
        struct rb_tz *tz = zone(known[i].zone);
        int32_t got = rb_tz_offset(tz, known[i].t);
        if (got != known[i].off)
            fail_msg("%s at %lld: offset %d, date says %d", known[i].zone,
                     (long long)known[i].t, got, known[i].off);
        rb_tz_free(tz);
    }
}

static void tz_span_reports_where_the_offset_changes(void **state)
{
    (void)state;
    struct rb_tz *tz = zone("Europe/London");
    int64_t from, until;
    assert_int_equal(rb_tz_span(tz, utc(2026, 7, 1, 12, 0), &from, &until), 3600);
    assert_instant(from, utc(2026, 3, 29, 1, 0));
    assert_instant(until, utc(2026, 10, 25, 1, 0));
    /* Past the expanded table the cycle still gives exact edges. */
    assert_int_equal(rb_tz_span(tz, 16740864000, &from, &until), 3600);
    assert_instant(from, utc(2500, 3, 28, 1, 0));
    assert_instant(until, utc(2500, 10, 31, 1, 0));
    rb_tz_free(tz);

    tz = zone("Asia/Karachi");
    assert_int_equal(rb_tz_span(tz, utc(2026, 7, 1, 0, 0), &from, &until), 18000);
    assert_true(from <= utc(2009, 11, 1, 0, 0));
    assert_true(until == INT64_MAX);
    rb_tz_free(tz);
}

static void tz_local_to_utc_handles_gap_and_overlap(void **state)
{
    (void)state;
    struct rb_tz *tz = zone("Europe/London");
    /* Ordinary summer and winter times. */
    assert_instant(rb_tz_to_utc(tz, utc(2026, 7, 1, 13, 0)), utc(2026, 7, 1, 12, 0));
    assert_instant(rb_tz_to_utc(tz, utc(2026, 1, 15, 9, 0)), utc(2026, 1, 15, 9, 0));
    /* 01:30 on 29 March 2026 does not exist: it moves forward to the jump, 01:00Z. */
    assert_instant(rb_tz_to_utc(tz, utc(2026, 3, 29, 1, 30)), utc(2026, 3, 29, 1, 0));
    assert_instant(rb_tz_to_utc(tz, utc(2026, 3, 29, 1, 0)), utc(2026, 3, 29, 1, 0));
    assert_instant(rb_tz_to_utc(tz, utc(2026, 3, 29, 0, 59)), utc(2026, 3, 29, 0, 59));
    assert_instant(rb_tz_to_utc(tz, utc(2026, 3, 29, 2, 0)), utc(2026, 3, 29, 1, 0));
    assert_instant(rb_tz_to_utc(tz, utc(2026, 3, 29, 2, 1)), utc(2026, 3, 29, 1, 1));
    /* 01:30 on 25 October 2026 happens twice: the first (BST) is 00:30Z. */
    assert_instant(rb_tz_to_utc(tz, utc(2026, 10, 25, 1, 30)), utc(2026, 10, 25, 0, 30));
    assert_instant(rb_tz_to_utc(tz, utc(2026, 10, 25, 2, 0)), utc(2026, 10, 25, 2, 0));
    assert_instant(rb_tz_to_utc(tz, utc(2026, 10, 25, 0, 59)), utc(2026, 10, 24, 23, 59));
    /* Far future, through the rule: 2500-07-01 13:00 BST. */
    assert_instant(rb_tz_to_utc(tz, utc(2500, 7, 1, 13, 0)), utc(2500, 7, 1, 12, 0));
    rb_tz_free(tz);

    tz = zone("Asia/Karachi");
    assert_instant(rb_tz_to_utc(tz, utc(2026, 7, 1, 17, 0)), utc(2026, 7, 1, 12, 0));
    rb_tz_free(tz);
}

static void tz_local_to_utc_is_monotonic_and_round_trips(void **state)
{
    (void)state;
    const char *zones[] = {"Europe/London", "America/New_York", "Australia/Sydney",
                           "Australia/Lord_Howe", "America/Nuuk", "Asia/Karachi"};
    for (size_t z = 0; z < RB_ARRAY_LEN(zones); z++) {
        struct rb_tz *tz = zone(zones[z]);
        int64_t prev = INT64_MIN;
        /* Every 15 minutes of local time through 2026 and 2027. */
        for (int64_t l = utc(2026, 1, 1, 0, 0); l < utc(2028, 1, 1, 0, 0); l += 15 * MIN) {
            int64_t u = rb_tz_to_utc(tz, l);
            if (u < prev)
                fail_msg("%s: local %lld gives %lld, before %lld", zones[z], (long long)l,
                         (long long)u, (long long)prev);
            prev = u;
            /* The instant reads back as the same wall clock unless l was skipped. */
            int32_t off = rb_tz_offset(tz, u);
            if (u + off != l && rb_tz_offset(tz, u - 1) == off)
                fail_msg("%s: local %lld -> %lld reads %lld", zones[z], (long long)l,
                         (long long)u, (long long)(u + off));
        }
        rb_tz_free(tz);
    }
}

/* The C library reads the same files; its answer for random instants must be ours. Only the
 * test sets TZ, to ask glibc. */
static void tz_agrees_with_the_c_library(void **state)
{
    (void)state;
    const char *zones[] = {"Europe/London", "Asia/Karachi", "America/New_York",
                           "Australia/Sydney", "Europe/Berlin", "America/Sao_Paulo",
                           "Asia/Tehran", "Africa/Casablanca", "Pacific/Chatham",
                           "America/Santiago", "Asia/Kolkata", "Europe/Dublin"};
    uint64_t x = 0x9E3779B97F4A7C15u;
    char *old = getenv("TZ") ? rb_strdup(getenv("TZ")) : NULL;
    for (size_t z = 0; z < RB_ARRAY_LEN(zones); z++) {
        struct rb_tz *tz = zone(zones[z]);
        setenv("TZ", zones[z], 1);
        tzset();
        for (int i = 0; i < 2000; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* 1900 to 2200 */
            int64_t t = -2208988800 + (int64_t)(x % (uint64_t)(300 * 365.2425 * 86400));
            time_t tt = (time_t)t;
            struct tm tm;
            localtime_r(&tt, &tm);
            if (rb_tz_offset(tz, t) != tm.tm_gmtoff)
                fail_msg("%s at %lld: ours %d, C library %ld", zones[z], (long long)t,
                         rb_tz_offset(tz, t), tm.tm_gmtoff);
        }
        rb_tz_free(tz);
    }
    if (old)
        setenv("TZ", old, 1);
    else
        unsetenv("TZ");
    tzset();
    free(old);
}

static void tz_refuses_bad_names_and_unknown_zones(void **state)
{
    (void)state;
    const char *bad[] = {"", "/etc/passwd", "../../etc/passwd", "Asia/../../x", "Asia//Karachi",
                         "Asia/Karachi/", "Asia/Kar achi", ".hidden"};
    for (size_t i = 0; i < RB_ARRAY_LEN(bad); i++) {
        char *why = NULL;
        assert_null(rb_tz_load(bad[i], &why));
        assert_non_null(strstr(why, "is not a time zone name"));
        free(why);
    }
    char *why = NULL;
    assert_null(rb_tz_load("Asia/Karachy", &why));
    assert_non_null(strstr(why, "unknown time zone \"Asia/Karachy\""));
    free(why);
    why = NULL;
    assert_null(rb_tz_load("Asia", &why)); /* a directory */
    assert_non_null(strstr(why, "unknown time zone"));
    free(why);
}

/* ---- the zone reader: hand-built TZif files ------------------------------------------------- */

struct tzif_spec {
    int version; /* 1, 2 or 3 */
    const int64_t *at;
    const unsigned char *idx;
    size_t n;
    const int32_t *types;
    size_t ntypes;
    const char *footer; /* v2+; NULL writes none at all */
    int leap;           /* add one leap-second record */
};

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
    return p + 4;
}

static unsigned char *put_block(unsigned char *p, const struct tzif_spec *s, int wide)
{
    memcpy(p, "TZif", 4);
    p[4] = s->version == 1 ? 0 : (unsigned char)('0' + s->version);
    memset(p + 5, 0, 15);
    p += 20;
    p = put32(p, 0);                        /* isutcnt */
    p = put32(p, 0);                        /* isstdcnt */
    p = put32(p, (uint32_t)(s->leap != 0)); /* leapcnt */
    p = put32(p, (uint32_t)s->n);
    p = put32(p, (uint32_t)s->ntypes);
    p = put32(p, 4); /* charcnt: "ABC\0" */
    for (size_t i = 0; i < s->n; i++) {
        if (wide) {
            p = put32(p, (uint32_t)((uint64_t)s->at[i] >> 32));
            p = put32(p, (uint32_t)s->at[i]);
        } else {
            p = put32(p, (uint32_t)(int32_t)s->at[i]);
        }
    }
    for (size_t i = 0; i < s->n; i++)
        *p++ = s->idx[i];
    for (size_t i = 0; i < s->ntypes; i++) {
        p = put32(p, (uint32_t)s->types[i]);
        *p++ = 0;
        *p++ = 0;
    }
    memcpy(p, "ABC", 4);
    p += 4;
    if (s->leap) {
        if (wide)
            p = put32(put32(p, 0), 78796800);
        else
            p = put32(p, 78796800);
        p = put32(p, 1);
    }
    return p;
}

static size_t tzif_build(unsigned char *buf, const struct tzif_spec *s)
{
    unsigned char *p = put_block(buf, s, 0);
    if (s->version >= 2) {
        p = put_block(p, s, 1);
        if (s->footer) {
            size_t n = strlen(s->footer);
            *p++ = '\n';
            memcpy(p, s->footer, n);
            p += n;
            *p++ = '\n';
        }
    }
    return (size_t)(p - buf);
}

static void tzif_version1_uses_32_bit_data_and_the_last_type_after_it(void **state)
{
    (void)state;
    static const int64_t at[] = {1000000000, 1100000000};
    static const unsigned char idx[] = {1, 0};
    static const int32_t types[] = {3600, 7200};
    struct tzif_spec s = {1, at, idx, 2, types, 2, NULL, 0};
    unsigned char buf[512];
    size_t len = tzif_build(buf, &s);
    char *why = NULL;
    struct rb_tz *tz = rb_tz_parse("v1", buf, len, &why);
    assert_non_null(tz);
    assert_string_equal(rb_tz_name(tz), "v1");
    assert_int_equal(rb_tz_offset(tz, 0), 3600); /* before the first: type 0 */
    assert_int_equal(rb_tz_offset(tz, 999999999), 3600);
    assert_int_equal(rb_tz_offset(tz, 1000000000), 7200);
    assert_int_equal(rb_tz_offset(tz, 1100000000), 3600);
    assert_int_equal(rb_tz_offset(tz, INT64_C(1) << 40), 3600);
    rb_tz_free(tz);
}

static void tzif_version2_continues_with_the_footer_rule(void **state)
{
    (void)state;
    /* One transition in 2000 to EST, then "EST5EDT,M3.2.0,M11.1.0" rules. */
    static const int64_t at[] = {946684800};
    static const unsigned char idx[] = {1};
    static const int32_t types[] = {-14400, -18000};
    struct tzif_spec s = {2, at, idx, 1, types, 2, "EST5EDT,M3.2.0,M11.1.0", 0};
    unsigned char buf[512];
    size_t len = tzif_build(buf, &s);
    char *why = NULL;
    struct rb_tz *tz = rb_tz_parse("v2", buf, len, &why);
    assert_non_null(tz);
    assert_int_equal(rb_tz_offset(tz, 946684799), -14400);
    assert_int_equal(rb_tz_offset(tz, 1772953199), -18000); /* 2026-03-08T06:59:59Z */
    assert_int_equal(rb_tz_offset(tz, 1772953200), -14400);
    assert_int_equal(rb_tz_offset(tz, 1793512800), -18000); /* 2026-11-01T06:00Z */
    rb_tz_free(tz);

    /* An empty footer: the last type holds after the data. */
    s.footer = "";
    len = tzif_build(buf, &s);
    tz = rb_tz_parse("v2-empty", buf, len, &why);
    assert_non_null(tz);
    assert_int_equal(rb_tz_offset(tz, 1782907200), -18000);
    rb_tz_free(tz);
}

static void tzif_version3_footers_with_extended_times(void **state)
{
    (void)state;
    static const int32_t types[] = {-18000};
    unsigned char buf[512];
    char *why = NULL;
    /* Permanent DST written as a rule that never ends: always -4. */
    struct tzif_spec s = {3, NULL, NULL, 0, types, 1, "EST5EDT,0/0,J365/25", 0};
    size_t len = tzif_build(buf, &s);
    struct rb_tz *tz = rb_tz_parse("v3", buf, len, &why);
    assert_non_null(tz);
    assert_int_equal(rb_tz_offset(tz, utc(2026, 1, 1, 0, 0)), -14400);
    assert_int_equal(rb_tz_offset(tz, utc(2026, 7, 1, 0, 0)), -14400);
    assert_int_equal(rb_tz_offset(tz, utc(2027, 12, 31, 23, 0)), -14400);
    rb_tz_free(tz);

    /* Negative transition times (America/Nuuk since 2023): DST from the last Saturday of
     * March 23:00 (-1h on Sunday) to the last Sunday of October 00:00 local. */
    s.footer = "<-02>2<-01>,M3.5.0/-1,M10.5.0/0";
    len = tzif_build(buf, &s);
    tz = rb_tz_parse("v3-nuuk", buf, len, &why);
    assert_non_null(tz);
    /* 2026: last Sunday of March is the 29th; -1h local on it is Sat 28th 23:00 at -02. */
    assert_int_equal(rb_tz_offset(tz, utc(2026, 3, 29, 0, 59)), -7200);
    assert_int_equal(rb_tz_offset(tz, utc(2026, 3, 29, 1, 0)), -3600);
    /* Last Sunday of October 2026 is the 25th; 00:00 local at -01 is 01:00Z. */
    assert_int_equal(rb_tz_offset(tz, utc(2026, 10, 25, 0, 59)), -3600);
    assert_int_equal(rb_tz_offset(tz, utc(2026, 10, 25, 1, 0)), -7200);
    rb_tz_free(tz);
}

static void tzif_refuses_malformed_files(void **state)
{
    (void)state;
    static const int64_t at[] = {1000000000, 1100000000};
    static const unsigned char idx[] = {1, 0};
    static const unsigned char bad_idx[] = {1, 5};
    static const int64_t down[] = {1100000000, 1000000000};
    static const int32_t types[] = {3600, 7200};
    unsigned char buf[512];
    struct {
        struct tzif_spec s;
        size_t cut; /* bytes to drop from the end */
        const char *why;
    } cases[] = {
        {{2, at, idx, 2, types, 2, "CET-1", 1}, 0, "leap seconds"},
        {{2, at, bad_idx, 2, types, 2, "CET-1", 0}, 0, "names local time type 5"},
        {{2, down, idx, 2, types, 2, "CET-1", 0}, 0, "not ascending"},
        {{2, at, idx, 2, types, 2, NULL, 0}, 0, "footer"},
        {{2, at, idx, 2, types, 2, "CET-1", 0}, 20, "truncated"},
        {{2, at, idx, 2, types, 2, "nonsense", 0}, 0, "\"nonsense\""},
    };
    for (size_t i = 0; i < RB_ARRAY_LEN(cases); i++) {
        size_t len = tzif_build(buf, &cases[i].s) - cases[i].cut;
        char *why = NULL;
        struct rb_tz *tz = rb_tz_parse("bad", buf, len, &why);
        if (tz)
            fail_msg("case %zu was accepted", i);
        if (!strstr(why, cases[i].why))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, cases[i].why);
        free(why);
    }
    char *why = NULL;
    assert_null(rb_tz_parse("x", (const unsigned char *)"TZXf0000", 8, &why));
    assert_non_null(strstr(why, "TZif"));
    free(why);
}

static void posix_strings_of_every_date_form(void **state)
{
    (void)state;
    char *why = NULL;
    struct rb_tz *tz = rb_tz_from_posix("PKT-5", &why);
    assert_non_null(tz);
    assert_int_equal(rb_tz_offset(tz, 0), 18000);
    assert_int_equal(rb_tz_offset(tz, utc(2026, 7, 1, 0, 0)), 18000);
    rb_tz_free(tz);

    tz = rb_tz_from_posix("<+0330>-3:30", &why);
    assert_non_null(tz);
    assert_int_equal(rb_tz_offset(tz, 0), 12600);
    rb_tz_free(tz);

    /* Southern hemisphere: DST across the new year. */
    tz = rb_tz_from_posix("AEST-10AEDT,M10.1.0,M4.1.0/3", &why);
    assert_non_null(tz);
    assert_int_equal(rb_tz_offset(tz, utc(2026, 1, 15, 0, 0)), 39600);
    assert_int_equal(rb_tz_offset(tz, utc(2026, 7, 15, 0, 0)), 36000);
    assert_int_equal(rb_tz_offset(tz, 1775318399), 39600);
    assert_int_equal(rb_tz_offset(tz, 1775318400), 36000);
    rb_tz_free(tz);

    /* Jn never counts 29 February: J60 is 1 March every year. */
    tz = rb_tz_from_posix("AAA3BBB,J60/2,J300/2", &why);
    assert_non_null(tz);
    assert_int_equal(rb_tz_offset(tz, utc(2024, 3, 1, 4, 59)), -10800);
    assert_int_equal(rb_tz_offset(tz, utc(2024, 3, 1, 5, 0)), -7200);
    assert_int_equal(rb_tz_offset(tz, utc(2026, 3, 1, 5, 0)), -7200);
    rb_tz_free(tz);
    /* n counts it: day 59 (zero-based) is 29 February in 2024, 1 March in 2026. */
    tz = rb_tz_from_posix("AAA3BBB,59/2,299/2", &why);
    assert_non_null(tz);
    assert_int_equal(rb_tz_offset(tz, utc(2024, 2, 29, 4, 59)), -10800);
    assert_int_equal(rb_tz_offset(tz, utc(2024, 2, 29, 5, 0)), -7200);
    assert_int_equal(rb_tz_offset(tz, utc(2026, 2, 28, 12, 0)), -10800);
    assert_int_equal(rb_tz_offset(tz, utc(2026, 3, 1, 5, 0)), -7200);
    rb_tz_free(tz);
    /* An explicit DST offset and times with minutes. */
    tz = rb_tz_from_posix("LHST-10:30LHDT-11,M10.1.0,M4.1.0", &why);
    assert_non_null(tz);
    assert_int_equal(rb_tz_offset(tz, utc(2026, 7, 1, 0, 0)), 37800);
    assert_int_equal(rb_tz_offset(tz, utc(2026, 1, 1, 0, 0)), 39600);
    rb_tz_free(tz);

    const char *bad[] = {"", "PK-5", "PKT", "PKT-5PKST,M13.1.0,M11.1.0",
                         "PKT-5PKST,M3.6.0,M11.1.0", "PKT-5PKST,M3.2.7,M11.1.0",
                         "PKT-5PKST,J0,J365", "PKT-5PKST,M3.2.0", "PKT-5PKST,M3.2.0,M11.1.0x",
                         "<+05-5", "PKT-5:60"};
    for (size_t i = 0; i < RB_ARRAY_LEN(bad); i++) {
        tz = rb_tz_from_posix(bad[i], &why);
        if (tz)
            fail_msg("\"%s\" was accepted", bad[i]);
        assert_non_null(strstr(why, "POSIX TZ string"));
        free(why);
    }
}

static void civil_day_helpers(void **state)
{
    (void)state;
    assert_int_equal(rb_tz_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(rb_tz_days_from_civil(2026, 3, 29), utc(2026, 3, 29, 0, 0) / 86400);
    assert_int_equal(rb_tz_days_from_civil(1800, 1, 1), -62091);
    assert_int_equal(rb_tz_weekday(0), 3);                                     /* Thursday */
    assert_int_equal(rb_tz_weekday(rb_tz_days_from_civil(2026, 3, 29)), 6);    /* Sunday */
    assert_int_equal(rb_tz_weekday(rb_tz_days_from_civil(1969, 12, 29)), 0);   /* Monday */
    assert_int_equal(rb_tz_day_of(-1), -1);
    for (int64_t d = -200000; d < 200000; d += 37) {
        int64_t y;
        int m, dd;
        rb_tz_civil_from_days(d, &y, &m, &dd);
        assert_int_equal(rb_tz_days_from_civil(y, m, dd), d);
    }
}

/* ---- calendars from YAML -------------------------------------------------------------------- */

static void calendar_fixture_loads_with_files_and_inline_holidays(void **state)
{
    (void)state;
    struct rb_calendar *c = load("punjab.yaml");
    assert_string_equal(rb_cal_name(c), "punjab-test");
    assert_string_equal(rb_tz_name(rb_cal_tz(c)), "Asia/Karachi");
    /* Mon-Thu 7h, Fri 6h, Sat 4h. */
    assert_int_equal(rb_cal_week_seconds(c), (4 * 7 + 6 + 4) * H);
    /* 2026: 1 + 3 + 1 + 1 + 1 + 1 days, 2027: 1 + 3 + 1 + 1 + 1, plus Christmas Eve. */
    assert_int_equal(rb_cal_holiday_count(c), 16);
    rb_cal_free(c);
    c = load("london.yaml");
    assert_string_equal(rb_cal_name(c), "london"); /* from the file name */
    assert_int_equal(rb_cal_week_seconds(c), 40 * H);
    rb_cal_free(c);
}

static void calendar_sample_config_loads(void **state)
{
    (void)state;
    struct rb_errors e;
    rb_errors_init(&e);
    struct rb_calendar *c = rb_cal_load(RB_SOURCE_DIR "/config/calendars/punjab.yaml", &e);
    if (!c)
        fail_msg("config/calendars/punjab.yaml: %s", e.msgs[0]);
    assert_string_equal(rb_tz_name(rb_cal_tz(c)), "Asia/Karachi");
    assert_true(rb_cal_holiday_count(c) >= 20);
    /* Independence Day 2026 and 2027 are closed; an ordinary Monday is open at 10:00. */
    assert_false(rb_cal_is_open(c, pkt(2026, 8, 14, 10, 0)));
    assert_false(rb_cal_is_open(c, pkt(2027, 8, 14, 10, 0)));
    assert_true(rb_cal_is_open(c, pkt(2026, 7, 6, 10, 0)));
    rb_cal_free(c);
    rb_errors_free(&e);
}

struct bad_case {
    const char *file;
    const char *msgs[8]; /* exact messages, in order, after the path prefix */
};

static void calendar_errors_name_file_line_column_and_key(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"bad_time.yaml",
         {"3:22: key \"mon\": bad time \"25:00\" in \"14:00-25:00\" (hours 00-23, minutes "
          "00-59; 24:00 only as an end)"}},
        {"end_before_start.yaml",
         {"5:7: key \"tue\": the interval \"17:00-09:00\" ends before it starts (a shift past "
          "midnight is two intervals, one on each day)"}},
        {"overlap.yaml",
         {"4:22: key \"fri\": the intervals \"09:00-12:30\" and \"12:00-17:00\" overlap"}},
        {"unknown_weekday.yaml",
         {"4:3: key \"thurs\": unknown weekday \"thurs\" (known: mon, tue, wed, thu, fri, sat, "
          "sun, or a range such as mon-thu)"}},
        {"unknown_zone.yaml",
         {"2:11: key \"timezone\": unknown time zone \"Asia/Karachy\" (no file "
          "/usr/share/zoneinfo/Asia/Karachy; is tzdata installed?)"}},
        {"duplicate_holiday.yaml",
         {"6:13: key \"date\": 2026-05-28 is already a holiday (\"Eid ul-Adha\", "
          "@duplicate_holiday.yaml:5:13)"}},
        {"weekday_twice.yaml",
         {"4:3: key \"thu\": thu is already given by \"mon-thu\" (line 3, column 3)"}},
        {"bad_date.yaml",
         {"5:13: key \"date\": 2026-02-30 is not a date (no such day in that month)",
          "6:13: key \"date\": expected a date such as 2026-03-23, got \"23/03/2026\""}},
        {"missing_keys.yaml",
         {"1:1: missing required key \"timezone\" in a calendar",
          "1:1: missing required key \"hours\" in a calendar"}},
        {"several.yaml",
         {"9:1: unknown key \"colour\" in a calendar; allowed keys: name, timezone, hours, "
          "holiday_files, holidays",
          "4:22: key \"tue\": bad time \"24:00\" in \"24:00-24:00\" (hours 00-23, minutes "
          "00-59; 24:00 only as an end)",
          "5:8: key \"wed\": bad time \"17:60\" in \"09:00-17:60\" (hours 00-23, minutes 00-59; "
          "24:00 only as an end)",
          "6:3: key \"sat-fri\": a range runs forward from Monday to Sunday, e.g. mon-thu",
          "7:8: key \"sun\": expected a list of intervals such as [09:00-13:00, 14:00-17:00], "
          "or closed; got a map",
          "8:16: key \"holiday_files\": no file matches \"@nothing-*.yaml\""}},
    };
    for (size_t i = 0; i < RB_ARRAY_LEN(cases); i++) {
        char *path = rb_sprintf("%sbad/%s", DATA, cases[i].file);
        struct rb_errors e;
        rb_errors_init(&e);
        struct rb_calendar *c = rb_cal_load(path, &e);
        if (c)
            fail_msg("%s was accepted", cases[i].file);
        size_t want = 0;
        while (want < 8 && cases[i].msgs[want])
            want++;
        if (e.n != want)
            fail_msg("%s: %zu errors, expected %zu (first: %s)", cases[i].file, e.n, want,
                     e.n ? e.msgs[0] : "-");
        for (size_t j = 0; j < want; j++) {
            /* "@" in an expected message stands for the fixture directory. */
            char *exp = rb_sprintf("%s:%s", path, cases[i].msgs[j]);
            char *at;
            while ((at = strchr(exp, '@'))) {
                *at = '\0';
                char *next = rb_sprintf("%s%sbad/%s", exp, DATA, at + 1);
                free(exp);
                exp = next;
            }
            if (strcmp(e.msgs[j], exp) != 0)
                fail_msg("%s message %zu is\n  %s\nexpected\n  %s", cases[i].file, j, e.msgs[j],
                         exp);
            free(exp);
        }
        rb_errors_free(&e);
        free(path);
    }
}

static void calendar_duplicate_across_holiday_files_names_both(void **state)
{
    (void)state;
    struct rb_errors e;
    rb_errors_init(&e);
    assert_null(rb_cal_load(DATA "bad/duplicate_across_files.yaml", &e));
    assert_int_equal(e.n, 1);
    assert_string_equal(e.msgs[0], DATA "bad/dup-b.yaml:3:13: key \"date\": 2026-08-14 is "
                                        "already a holiday (\"Independence Day\", " DATA
                                        "bad/dup-a.yaml:2:13)");
    rb_errors_free(&e);
}

static void calendar_unreadable_file_is_reported_at_the_naming_key(void **state)
{
    (void)state;
    struct rb_errors e;
    rb_errors_init(&e);
    const char *text = "calendar: calendars/nope.yaml\n";
    struct rb_doc *doc = rb_doc_parse("sla.yaml", text, strlen(text), &e);
    assert_non_null(doc);
    const struct rb_node *at = rb_node_get(doc->root, "calendar");
    assert_null(rb_cal_load_from(DATA "nope.yaml", at, "calendar", &e));
    assert_int_equal(e.n, 1);
    assert_string_equal(e.msgs[0], "sla.yaml:1:11: key \"calendar\": cannot open " DATA
                                   "nope.yaml: No such file or directory");
    rb_doc_free(doc);
    rb_errors_free(&e);
}

static void calendar_inline_block_and_touching_intervals(void **state)
{
    (void)state;
    struct rb_errors e;
    rb_errors_init(&e);
    const char *text = "calendar:\n"
                       "  timezone: Asia/Karachi\n"
                       "  hours:\n"
                       "    Monday: [14:00-17:00, 09:00-14:00]\n"  /* any order; they touch */
                       "    tuesday: closed\n"
                       "    wed: []\n"
                       "    thu: ~\n"
                       "    fri: 9:00 - 10:00\n";
    struct rb_doc *doc = rb_doc_parse("inline.yaml", text, strlen(text), &e);
    assert_non_null(doc);
    struct rb_calendar *c = rb_cal_from_node(rb_node_get(doc->root, "calendar"), "inline", "", &e);
    rb_doc_free(doc); /* nothing of the tree is kept */
    if (!c)
        fail_msg("%s", e.msgs[0]);
    assert_string_equal(rb_cal_name(c), "inline");
    assert_int_equal(rb_cal_week_seconds(c), 9 * H);
    /* 09:00-17:00 on Monday, joined: 8h from 09:00 ends at 17:00, through 14:00. */
    assert_instant(rb_cal_add(c, pkt(2026, 7, 6, 9, 0), 8 * H), pkt(2026, 7, 6, 17, 0));
    /* Then Friday 09:00-10:00. */
    assert_instant(rb_cal_add(c, pkt(2026, 7, 6, 9, 0), 8 * H + 1), pkt(2026, 7, 10, 9, 0) + 1);
    rb_cal_free(c);
    rb_errors_free(&e);
}

/* ---- deadlines: Punjab ---------------------------------------------------------------------- */

static void deadline_spans_a_weekend(void **state)
{
    (void)state;
    struct rb_calendar *c = load("punjab.yaml");
    /* Sat 4 July 2026 12:00 + 3h: 1h on Saturday, Sunday closed, 2h on Monday. */
    assert_instant(rb_cal_add(c, pkt(2026, 7, 4, 12, 0), 3 * H), pkt(2026, 7, 6, 11, 0));
    /* Friday 16:00 + 2h: 1h on Friday, Saturday 09:00-10:00. */
    assert_instant(rb_cal_add(c, pkt(2026, 7, 10, 16, 0), 2 * H), pkt(2026, 7, 11, 10, 0));
    /* Saturday 12:00 + 5h: 1h on Saturday, Monday 09:00-13:00 = 4h: lands at 13:00. */
    assert_instant(rb_cal_add(c, pkt(2026, 7, 4, 12, 0), 5 * H), pkt(2026, 7, 6, 13, 0));
    assert_int_equal(rb_cal_between(c, pkt(2026, 7, 4, 12, 0), pkt(2026, 7, 6, 11, 0)), 3 * H);
    rb_cal_free(c);
}

static void deadline_across_a_holiday(void **state)
{
    (void)state;
    struct rb_calendar *c = load("punjab.yaml");
    /* Thu 19 March 2026 16:00 + 2h: Eid ul-Fitr Fri-Sun 20-22, Pakistan Day Mon 23: the
     * second hour is Tuesday 24 March 09:00-10:00. */
    assert_instant(rb_cal_add(c, pkt(2026, 3, 19, 16, 0), 2 * H), pkt(2026, 3, 24, 10, 0));
    assert_int_equal(rb_cal_between(c, pkt(2026, 3, 19, 0, 0), pkt(2026, 3, 25, 0, 0)),
                     7 * H + 7 * H);
    assert_false(rb_cal_is_open(c, pkt(2026, 3, 23, 10, 0)));
    /* The half day on Christmas Eve: 11:00 + 2h is 12:00 on the 24th (1h), Christmas Friday
     * closed, 09:00-10:00 on Saturday 26th. */
    assert_instant(rb_cal_add(c, pkt(2026, 12, 24, 11, 0), 2 * H), pkt(2026, 12, 26, 10, 0));
    assert_true(rb_cal_is_open(c, pkt(2026, 12, 24, 11, 59)));
    assert_false(rb_cal_is_open(c, pkt(2026, 12, 24, 12, 0)));
    rb_cal_free(c);
}

static void deadline_landing_in_a_break(void **state)
{
    (void)state;
    struct rb_calendar *c = load("punjab.yaml");
    int64_t mon_noon = pkt(2026, 7, 6, 12, 0);
    /* Used up exactly as the break starts: stays at 13:00. */
    assert_instant(rb_cal_add(c, mon_noon, 1 * H), pkt(2026, 7, 6, 13, 0));
    /* One second more moves past the break. */
    assert_instant(rb_cal_add(c, mon_noon, 1 * H + 1), pkt(2026, 7, 6, 14, 0) + 1);
    assert_instant(rb_cal_add(c, mon_noon, 90 * MIN), pkt(2026, 7, 6, 14, 30));
    /* Friday prayers: 12:00 + 1h is 30 min before 12:30 and 30 min after 14:30. */
    assert_instant(rb_cal_add(c, pkt(2026, 7, 10, 12, 0), 1 * H), pkt(2026, 7, 10, 15, 0));
    /* A submission during the break counts from 14:00. */
    assert_instant(rb_cal_add(c, pkt(2026, 7, 6, 13, 30), 30 * MIN), pkt(2026, 7, 6, 14, 30));
    assert_instant(rb_cal_next_open(c, pkt(2026, 7, 6, 13, 30)), pkt(2026, 7, 6, 14, 0));
    assert_instant(rb_cal_next_open(c, pkt(2026, 7, 6, 10, 0)), pkt(2026, 7, 6, 10, 0));
    assert_instant(rb_cal_next_open(c, pkt(2026, 7, 4, 13, 0)), pkt(2026, 7, 6, 9, 0));
    rb_cal_free(c);
}

static void deadline_at_closing_time_stays_there(void **state)
{
    (void)state;
    struct rb_calendar *c = load("punjab.yaml");
    /* Monday 16:00 + 1h is Monday 17:00, not Tuesday 09:00. */
    assert_instant(rb_cal_add(c, pkt(2026, 7, 6, 16, 0), 1 * H), pkt(2026, 7, 6, 17, 0));
    /* A whole working day from Monday's opening is Monday's closing. */
    assert_instant(rb_cal_add(c, pkt(2026, 7, 6, 9, 0), 7 * H), pkt(2026, 7, 6, 17, 0));
    /* A whole week from Monday 09:00 ends on Saturday 13:00. */
    assert_instant(rb_cal_add(c, pkt(2026, 7, 6, 9, 0), 38 * H), pkt(2026, 7, 11, 13, 0));
    /* Started outside hours: the clock starts at the next opening. */
    assert_instant(rb_cal_add(c, pkt(2026, 7, 6, 6, 0), 1 * H), pkt(2026, 7, 6, 10, 0));
    assert_instant(rb_cal_add(c, pkt(2026, 7, 6, 17, 0), 1 * H), pkt(2026, 7, 7, 10, 0));
    /* Zero or negative durations: the start itself. */
    assert_instant(rb_cal_add(c, pkt(2026, 7, 5, 3, 0), 0), pkt(2026, 7, 5, 3, 0));
    assert_instant(rb_cal_add(c, pkt(2026, 7, 5, 3, 0), -5), pkt(2026, 7, 5, 3, 0));
    assert_int_equal(rb_cal_between(c, pkt(2026, 7, 7, 0, 0), pkt(2026, 7, 6, 0, 0)), 0);
    rb_cal_free(c);
}

static void submission_at_2359_on_a_holiday_eve(void **state)
{
    (void)state;
    struct rb_calendar *c = load("punjab.yaml");
    /* Thu 13 August 2026 23:59; Friday 14th is Independence Day. 8h: Saturday 09:00-13:00
     * (4h), Sunday closed, Monday 09:00-13:00 (4h). */
    int64_t t = pkt(2026, 8, 13, 23, 59);
    assert_instant(rb_cal_add(c, t, 8 * H), pkt(2026, 8, 17, 13, 0));
    assert_int_equal(rb_cal_between(c, t, pkt(2026, 8, 14, 23, 59)), 0);
    assert_instant(rb_cal_next_open(c, t), pkt(2026, 8, 15, 9, 0));
    /* The same minute one day earlier has Thursday's none left either, and Friday 14th off. */
    assert_instant(rb_cal_add(c, pkt(2026, 8, 12, 23, 59), 7 * H), pkt(2026, 8, 13, 17, 0));
    rb_cal_free(c);
}

static void pause_and_resume_keep_the_time_left(void **state)
{
    (void)state;
    struct rb_calendar *c = load("punjab.yaml");
    int64_t deadline = pkt(2026, 7, 8, 15, 0); /* Wednesday 15:00 */
    int64_t paused = pkt(2026, 7, 6, 10, 0);   /* Monday 10:00 */
    /* Left: Mon 3h + 3h, Tue 7h, Wed 4h + 1h = 18h. */
    assert_int_equal(rb_cal_between(c, paused, deadline), 18 * H);
    /* Resumed a week later, Monday 11:00: Mon 2h + 3h, Tue 7h, Wed 4h + 2h -> Wed 16:00. */
    int64_t resumed = pkt(2026, 7, 13, 11, 0);
    assert_instant(rb_cal_resume(c, deadline, paused, resumed), pkt(2026, 7, 15, 16, 0));
    assert_int_equal(rb_cal_between(c, resumed, rb_cal_resume(c, deadline, paused, resumed)),
                     18 * H);
    /* Paused and resumed outside hours lose nothing and gain nothing. */
    assert_instant(rb_cal_resume(c, pkt(2026, 7, 13, 10, 0), pkt(2026, 7, 11, 14, 0),
                                 pkt(2026, 7, 12, 20, 0)),
                   pkt(2026, 7, 13, 10, 0));
    /* Paused the moment it opened, resumed at once: the same deadline. */
    assert_instant(rb_cal_resume(c, deadline, paused, paused), deadline);
    /* A deadline already passed when paused stays passed. */
    assert_instant(rb_cal_resume(c, deadline, pkt(2026, 7, 9, 9, 0), pkt(2026, 7, 20, 9, 0)),
                   deadline);
    rb_cal_free(c);
}

static void no_working_time_ever_gives_never(void **state)
{
    (void)state;
    struct rb_calendar *c = load("rare.yaml");
    assert_int_equal(rb_cal_week_seconds(c), 0);
    /* Open only 2026-06-01 and 2030-06-01, 10:00-11:00. */
    assert_instant(rb_cal_add(c, pkt(2026, 1, 1, 0, 0), 30 * MIN), pkt(2026, 6, 1, 10, 30));
    assert_instant(rb_cal_add(c, pkt(2026, 1, 1, 0, 0), 90 * MIN), pkt(2030, 6, 1, 10, 30));
    assert_int_equal(rb_cal_add(c, pkt(2026, 1, 1, 0, 0), 3 * H), RB_CAL_NEVER);
    assert_int_equal(rb_cal_next_open(c, pkt(2031, 1, 1, 0, 0)), RB_CAL_NEVER);
    assert_int_equal(rb_cal_between(c, 0, pkt(2040, 1, 1, 0, 0)), 2 * H);
    rb_cal_free(c);

    c = load("punjab.yaml");
    assert_int_equal(rb_cal_add(c, pkt(2026, 1, 1, 0, 0), INT64_MAX), RB_CAL_NEVER);
    assert_int_equal(rb_cal_add(c, INT64_MAX - 10, 5), RB_CAL_NEVER);
    assert_true(rb_cal_between(c, INT64_MIN, INT64_MAX) > 0);
    assert_false(rb_cal_is_open(c, INT64_MAX));
    rb_cal_free(c);
}

/* ---- deadlines: London through both clock changes ------------------------------------------- */

static void london_across_both_dst_changes(void **state)
{
    (void)state;
    struct rb_calendar *c = load("london.yaml");
    /* Spring: Fri 27 March 2026 16:00 GMT + 2h -> Mon 30 March 10:00 BST = 09:00Z. */
    assert_instant(rb_cal_add(c, utc(2026, 3, 27, 16, 0), 2 * H), utc(2026, 3, 30, 9, 0));
    /* The week of the change still has 40 working hours, 8 a day. */
    assert_int_equal(rb_cal_between(c, utc(2026, 3, 23, 0, 0), utc(2026, 3, 30, 0, 0)), 40 * H);
    assert_int_equal(rb_cal_between(c, utc(2026, 3, 30, 0, 0), utc(2026, 3, 31, 0, 0)), 8 * H);
    /* Monday opens at 09:00 local: 08:00Z in summer, 09:00Z in winter. */
    assert_instant(rb_cal_next_open(c, utc(2026, 3, 30, 0, 0)), utc(2026, 3, 30, 8, 0));
    assert_instant(rb_cal_next_open(c, utc(2026, 3, 23, 0, 0)), utc(2026, 3, 23, 9, 0));
    /* Autumn: Fri 23 October 16:00 BST (15:00Z) + 2h -> Mon 26 October 10:00 GMT. */
    assert_instant(rb_cal_add(c, utc(2026, 10, 23, 15, 0), 2 * H), utc(2026, 10, 26, 10, 0));
    assert_int_equal(rb_cal_between(c, utc(2026, 10, 19, 0, 0), utc(2026, 10, 26, 12, 0)),
                     40 * H + 3 * H);
    /* From March through October: 32 weeks minus Good Friday and Easter Monday. */
    assert_int_equal(rb_cal_between(c, utc(2026, 3, 23, 0, 0), utc(2026, 11, 2, 0, 0)),
                     (32 * 40 - 16) * H);
    rb_cal_free(c);
}

static void around_the_clock_days_last_23_and_25_hours(void **state)
{
    (void)state;
    struct rb_calendar *c = load("always.yaml");
    assert_int_equal(rb_cal_week_seconds(c), 7 * 24 * H);
    /* Sunday 29 March 2026 local midnight to midnight: 23 hours. */
    assert_int_equal(rb_cal_between(c, utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 23, 0)), 23 * H);
    /* Sunday 25 October: 25 hours, 23:00Z on the 24th to 00:00Z on the 26th. */
    assert_int_equal(rb_cal_between(c, utc(2026, 10, 24, 23, 0), utc(2026, 10, 26, 0, 0)),
                     25 * H);
    /* Around the clock, business time is real time, across both changes. */
    int64_t t = utc(2026, 3, 28, 22, 17);
    assert_instant(rb_cal_add(c, t, 5 * H), t + 5 * H);
    t = utc(2026, 10, 24, 23, 45);
    assert_instant(rb_cal_add(c, t, 3 * H), t + 3 * H);
    assert_int_equal(rb_cal_between(c, utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0)),
                     365 * 24 * H);
    /* Long runs of whole weeks across one change only: March and April lose an hour. */
    assert_int_equal(rb_cal_between(c, utc(2026, 3, 1, 0, 0), utc(2026, 4, 30, 23, 0)),
                     (61 * 24 - 1) * H);
    t = utc(2026, 3, 1, 0, 0);
    assert_instant(rb_cal_add(c, t, 60 * 24 * H), t + 60 * 24 * H);
    t = utc(2026, 9, 1, 0, 0);
    assert_instant(rb_cal_add(c, t, 90 * 24 * H), t + 90 * 24 * H);
    rb_cal_free(c);
}

static void interval_ends_in_the_skipped_and_repeated_hours(void **state)
{
    (void)state;
    struct rb_calendar *c = load("night.yaml");
    /* An ordinary Sunday: 01:30-03:00 GMT. */
    assert_int_equal(rb_cal_between(c, utc(2026, 3, 22, 0, 0), utc(2026, 3, 23, 0, 0)),
                     90 * MIN);
    /* 29 March: 01:30 does not exist and counts from the jump (01:00Z) to 03:00 BST (02:00Z). */
    assert_int_equal(rb_cal_between(c, utc(2026, 3, 28, 0, 0), utc(2026, 3, 30, 0, 0)), 1 * H);
    assert_instant(rb_cal_next_open(c, utc(2026, 3, 28, 12, 0)), utc(2026, 3, 29, 1, 0));
    /* 25 October: from the first 01:30 (BST, 00:30Z) to 03:00 GMT: two and a half hours. */
    assert_int_equal(rb_cal_between(c, utc(2026, 10, 24, 0, 0), utc(2026, 10, 26, 0, 0)),
                     150 * MIN);
    assert_instant(rb_cal_next_open(c, utc(2026, 10, 24, 12, 0)), utc(2026, 10, 25, 0, 30));
    assert_instant(rb_cal_add(c, utc(2026, 10, 24, 12, 0), 150 * MIN), utc(2026, 10, 25, 3, 0));
    /* Starting inside the repeated hour, on its second pass (01:45 GMT = 01:45Z). */
    assert_instant(rb_cal_add(c, utc(2026, 10, 25, 1, 45), 75 * MIN), utc(2026, 10, 25, 3, 0));
    /* A year of Sundays: 52 x 1.5h, minus half an hour in March, plus one in October. */
    assert_int_equal(rb_cal_between(c, utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0)),
                     52 * 90 * MIN - 30 * MIN + 60 * MIN);
    rb_cal_free(c);
}

/* ---- random cases against a naive minute-by-minute reference -------------------------------- */

/* The calendars of the fixtures, written out again by hand. */
struct ref_iv {
    int start, end; /* minutes after local midnight */
};

struct ref_day {
    int n;
    struct ref_iv iv[2];
};

struct ref_hol {
    int y, m, d;
    struct ref_day hours;
};

struct ref_cal {
    const char *file;
    struct ref_day week[7]; /* Monday first */
    const struct ref_hol *hol;
    size_t n_hol;
};

static const struct ref_hol punjab_hol[] = {
    {2026, 2, 5, {0, {{0, 0}}}},   {2026, 3, 20, {0, {{0, 0}}}},  {2026, 3, 21, {0, {{0, 0}}}},
    {2026, 3, 22, {0, {{0, 0}}}},  {2026, 3, 23, {0, {{0, 0}}}},  {2026, 5, 1, {0, {{0, 0}}}},
    {2026, 8, 14, {0, {{0, 0}}}},  {2026, 12, 25, {0, {{0, 0}}}}, {2027, 2, 5, {0, {{0, 0}}}},
    {2027, 3, 10, {0, {{0, 0}}}},  {2027, 3, 11, {0, {{0, 0}}}},  {2027, 3, 12, {0, {{0, 0}}}},
    {2027, 3, 23, {0, {{0, 0}}}},  {2027, 8, 14, {0, {{0, 0}}}},  {2027, 12, 25, {0, {{0, 0}}}},
    {2026, 12, 24, {1, {{540, 720}}}},
};

static const struct ref_hol london_hol[] = {
    {2026, 4, 3, {0, {{0, 0}}}},
    {2026, 4, 6, {0, {{0, 0}}}},
    {2026, 12, 25, {0, {{0, 0}}}},
    {2026, 12, 28, {0, {{0, 0}}}},
};

#define MT {2, {{540, 780}, {840, 1020}}}
static const struct ref_cal ref_punjab = {
    "punjab.yaml",
    {MT, MT, MT, MT, {2, {{540, 750}, {870, 1020}}}, {1, {{540, 780}}}, {0, {{0, 0}}}},
    punjab_hol,
    RB_ARRAY_LEN(punjab_hol),
};
#undef MT
#define WD {1, {{540, 1020}}}
static const struct ref_cal ref_london = {
    "london.yaml",
    {WD, WD, WD, WD, WD, {0, {{0, 0}}}, {0, {{0, 0}}}},
    london_hol,
    RB_ARRAY_LEN(london_hol),
};
#undef WD

/* Is the minute starting at t (UTC, on a minute) working time? Local time from the zone
 * (tested above), the rest by brute force. */
struct ref_state {
    const struct ref_cal *cal;
    const struct rb_tz *tz;
    int64_t day;                /* cached local day */
    const struct ref_day *hours;
    int32_t off;
    int64_t off_from, off_until;
};

static int ref_open(struct ref_state *s, int64_t t)
{
    if (t < s->off_from || t >= s->off_until)
        s->off = rb_tz_span(s->tz, t, &s->off_from, &s->off_until);
    int64_t local = t + s->off;
    int64_t day = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
    if (day != s->day || !s->hours) {
        s->day = day;
        time_t tt = (time_t)(day * 86400);
        struct tm tm;
        gmtime_r(&tt, &tm);
        s->hours = &s->cal->week[(tm.tm_wday + 6) % 7];
        for (size_t i = 0; i < s->cal->n_hol; i++) {
            const struct ref_hol *h = &s->cal->hol[i];
            if (h->y == tm.tm_year + 1900 && h->m == tm.tm_mon + 1 && h->d == tm.tm_mday)
                s->hours = &h->hours;
        }
    }
    int minute = (int)((local - day * 86400) / 60);
    for (int i = 0; i < s->hours->n; i++)
        if (minute >= s->hours->iv[i].start && minute < s->hours->iv[i].end)
            return 1;
    return 0;
}

static int64_t ref_add(struct ref_state *s, int64_t start, int64_t minutes)
{
    int64_t t = start;
    while (minutes > 0) {
        if (ref_open(s, t))
            minutes--;
        t += 60;
    }
    return t;
}

static int64_t ref_between(struct ref_state *s, int64_t a, int64_t b)
{
    int64_t n = 0;
    for (int64_t t = a; t < b; t += 60)
        n += ref_open(s, t);
    return n * 60;
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void check_against_reference(const struct ref_cal *ref, uint64_t seed)
{
    struct rb_calendar *c = load(ref->file);
    struct ref_state s = {ref, rb_cal_tz(c), 0, NULL, 0, 1, 0};
    uint64_t x = seed;
    int64_t lo = utc(2025, 12, 1, 0, 0) / 60, span = (utc(2027, 12, 31, 0, 0) / 60) - lo;
    int cases = 0;
    for (int i = 0; i < 240; i++) {
        int64_t start = (lo + (int64_t)(rng_next(&x) % (uint64_t)span)) * 60;
        int64_t minutes;
        if (i % 12 == 0)
            minutes = 60 * (1500 + (int64_t)(rng_next(&x) % 2500)); /* 1500-4000 h: years */
        else if (i % 3 == 0)
            minutes = 1 + (int64_t)(rng_next(&x) % 600); /* up to 10 h */
        else
            minutes = 1 + (int64_t)(rng_next(&x) % (60 * 160)); /* up to 160 h: weeks */
        int64_t want = ref_add(&s, start, minutes);
        int64_t got = rb_cal_add(c, start, minutes * 60);
        if (got != want) {
            char b1[32], b2[32], b3[32];
            fail_msg("%s: add(%s, %lld min) = %s, reference %s", ref->file,
                     fmt_utc(start, b1), (long long)minutes, fmt_utc(got, b2),
                     fmt_utc(want, b3));
        }
        /* between over a random window around it, against the reference. */
        int64_t a = start - (int64_t)(rng_next(&x) % 3000) * 60;
        int64_t b = want + (int64_t)(rng_next(&x) % 3000) * 60;
        int64_t bw = ref_between(&s, a, b), bg = rb_cal_between(c, a, b);
        if (bw != bg) {
            char b1[32], b2[32];
            fail_msg("%s: between(%s, %s) = %lld, reference %lld", ref->file, fmt_utc(a, b1),
                     fmt_utc(b, b2), (long long)bg, (long long)bw);
        }
        cases++;
    }
    assert_int_equal(cases, 240);
    rb_cal_free(c);
}

static void random_cases_match_minute_by_minute_reference_punjab(void **state)
{
    (void)state;
    check_against_reference(&ref_punjab, 0x1234567887654321u);
}

static void random_cases_match_minute_by_minute_reference_london(void **state)
{
    (void)state;
    check_against_reference(&ref_london, 0xDEADBEEFCAFEF00Du);
}

/* Second-granular starts and durations: add and between are inverse, the deadline is in
 * working time or at the end of an interval, and later starts never give earlier deadlines. */
static void add_and_between_are_inverse(void **state)
{
    (void)state;
    const char *files[] = {"punjab.yaml", "london.yaml", "always.yaml"};
    uint64_t x = 42;
    for (size_t f = 0; f < RB_ARRAY_LEN(files); f++) {
        struct rb_calendar *c = load(files[f]);
        for (int i = 0; i < 3000; i++) {
            int64_t start = utc(2026, 1, 1, 0, 0) + (int64_t)(rng_next(&x) % (2 * 366 * 86400u));
            int64_t n = 1 + (int64_t)(rng_next(&x) % (i % 10 == 0 ? 5000 * 3600u : 100 * 3600u));
            int64_t d = rb_cal_add(c, start, n);
            if (rb_cal_between(c, start, d) != n)
                fail_msg("%s: between(s, add(s, %lld)) = %lld", files[f], (long long)n,
                         (long long)rb_cal_between(c, start, d));
            assert_true(rb_cal_is_open(c, d - 1));
            assert_true(rb_cal_add(c, start + 1, n) >= d);
        }
        rb_cal_free(c);
    }
}

/* ---- speed (printed, not asserted) ---------------------------------------------------------- */

static void speed_is_printed(void **state)
{
    (void)state;
    struct rb_calendar *c = load("punjab.yaml");
    uint64_t x = 7;
    int64_t base = utc(2026, 1, 1, 0, 0), sink = 0;
    const struct {
        const char *what;
        int64_t seconds;
    } runs[] = {{"40 h", 40 * H}, {"2 years", 2 * 38 * 52 * H}};
    for (size_t r = 0; r < RB_ARRAY_LEN(runs); r++) {
        double t0 = rb_now_mono(), t1;
        long n = 0;
        do {
            for (int i = 0; i < 1000; i++, n++)
                sink ^= rb_cal_add(c, base + (int64_t)(rng_next(&x) % (365 * 86400u)),
                                   runs[r].seconds);
            t1 = rb_now_mono();
        } while (t1 - t0 < 0.3);
        printf("# rb_cal_add of %s: %.0f per second (%ld calls)\n", runs[r].what, n / (t1 - t0),
               n);
    }
    assert_true(sink != 0);
    rb_cal_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tz_offsets_match_date_output),
        cmocka_unit_test(tz_span_reports_where_the_offset_changes),
        cmocka_unit_test(tz_local_to_utc_handles_gap_and_overlap),
        cmocka_unit_test(tz_local_to_utc_is_monotonic_and_round_trips),
        cmocka_unit_test(tz_agrees_with_the_c_library),
        cmocka_unit_test(tz_refuses_bad_names_and_unknown_zones),
        cmocka_unit_test(tzif_version1_uses_32_bit_data_and_the_last_type_after_it),
        cmocka_unit_test(tzif_version2_continues_with_the_footer_rule),
        cmocka_unit_test(tzif_version3_footers_with_extended_times),
        cmocka_unit_test(tzif_refuses_malformed_files),
        cmocka_unit_test(posix_strings_of_every_date_form),
        cmocka_unit_test(civil_day_helpers),
        cmocka_unit_test(calendar_fixture_loads_with_files_and_inline_holidays),
        cmocka_unit_test(calendar_sample_config_loads),
        cmocka_unit_test(calendar_errors_name_file_line_column_and_key),
        cmocka_unit_test(calendar_duplicate_across_holiday_files_names_both),
        cmocka_unit_test(calendar_unreadable_file_is_reported_at_the_naming_key),
        cmocka_unit_test(calendar_inline_block_and_touching_intervals),
        cmocka_unit_test(deadline_spans_a_weekend),
        cmocka_unit_test(deadline_across_a_holiday),
        cmocka_unit_test(deadline_landing_in_a_break),
        cmocka_unit_test(deadline_at_closing_time_stays_there),
        cmocka_unit_test(submission_at_2359_on_a_holiday_eve),
        cmocka_unit_test(pause_and_resume_keep_the_time_left),
        cmocka_unit_test(no_working_time_ever_gives_never),
        cmocka_unit_test(london_across_both_dst_changes),
        cmocka_unit_test(around_the_clock_days_last_23_and_25_hours),
        cmocka_unit_test(interval_ends_in_the_skipped_and_repeated_hours),
        cmocka_unit_test(random_cases_match_minute_by_minute_reference_punjab),
        cmocka_unit_test(random_cases_match_minute_by_minute_reference_london),
        cmocka_unit_test(add_and_between_are_inverse),
        cmocka_unit_test(speed_is_printed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
