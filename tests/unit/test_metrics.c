/* Metrics exposition: the exact Prometheus text for a small set of series, label escaping,
 * cumulative histogram buckets, counters with and without a label, gauges read at render
 * time, and no allocation when a seen route/method/status combination is recorded again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <cmocka.h>

#include <event2/buffer.h>

#include "base/metrics.h"

/* Renders m into a new NUL-terminated string; caller frees. */
static char *render(struct rb_metrics *m)
{
    struct evbuffer *b = evbuffer_new();
    rb_metrics_render(m, b);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

static void empty_registry_renders_nothing(void **state)
{
    (void)state;
    struct rb_metrics *m = rb_metrics_new();
    char *s = render(m);
    assert_string_equal(s, "");
    free(s);
    rb_metrics_free(m);
}

static void exact_text_for_a_small_set(void **state)
{
    (void)state;
    struct rb_metrics *m = rb_metrics_new();
    rb_metrics_http(m, "/healthz", "GET", 200, 0.0005); /* first bucket */
    rb_metrics_http(m, "/healthz", "GET", 200, 0.3);    /* le=0.5 */
    rb_metrics_http(m, "/healthz", "GET", 503, 20);     /* only +Inf */
    char *s = render(m);
    const char *want =
        "# HELP rabta_http_requests_total HTTP requests answered, by route pattern, method and "
        "status.\n"
        "# TYPE rabta_http_requests_total counter\n"
        "rabta_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 2\n"
        "rabta_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"503\"} 1\n"
        "# HELP rabta_http_request_duration_seconds Time from receiving an HTTP request to "
        "answering it, by route pattern.\n"
        "# TYPE rabta_http_request_duration_seconds histogram\n"
        "rabta_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.001\"} 1\n"
        "rabta_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.0025\"} 1\n"
        "rabta_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.005\"} 1\n"
        "rabta_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.01\"} 1\n"
        "rabta_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.025\"} 1\n"
        "rabta_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.05\"} 1\n"
        "rabta_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.1\"} 1\n"
        "rabta_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.25\"} 1\n"
        "rabta_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.5\"} 2\n"
        "rabta_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"1\"} 2\n"
        "rabta_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"2.5\"} 2\n"
        "rabta_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"5\"} 2\n"
        "rabta_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"10\"} 2\n"
        "rabta_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 3\n"
        "rabta_http_request_duration_seconds_sum{route=\"/healthz\"} 20.3005\n"
        "rabta_http_request_duration_seconds_count{route=\"/healthz\"} 3\n";
    if (strcmp(s, want) != 0)
        fail_msg("exposition differs.\n--- got:\n%s\n--- want:\n%s", s, want);
    free(s);
    rb_metrics_free(m);
}

static void label_values_are_escaped(void **state)
{
    (void)state;
    struct rb_metrics *m = rb_metrics_new();
    rb_metrics_http(m, "/a\"b\\c\nd", "GET", 404, 0.01);
    char *s = render(m);
    if (!strstr(s, "rabta_http_requests_total{route=\"/a\\\"b\\\\c\\nd\",method=\"GET\","
                   "status=\"404\"} 1\n"))
        fail_msg("route label not escaped as \\\" \\\\ \\n:\n%s", s);
    /* No raw newline may split a sample line: every line starts with '#' or a metric name. */
    for (const char *line = s; *line; line = strchr(line, '\n') + 1)
        assert_true(line[0] == '#' || strncmp(line, "rabta_", 6) == 0);
    free(s);
    rb_metrics_free(m);
}

static void histogram_buckets_are_cumulative(void **state)
{
    (void)state;
    struct rb_metrics *m = rb_metrics_new();
    const double samples[] = {0.0001, 0.002, 0.002, 0.04, 0.7, 3, 9.9, 11, 0.001};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
        rb_metrics_http(m, "/r", "POST", 201, samples[i]);
    char *s = render(m);
    long prev = -1, last = -1;
    int nb = 0;
    for (const char *p = s; (p = strstr(p, "_bucket{route=\"/r\",le=\"")); p++) {
        const char *v = strstr(p, "} ") + 2;
        long n = strtol(v, NULL, 10);
        assert_true(n >= prev);
        prev = last = n;
        nb++;
    }
    assert_int_equal(nb, 14); /* 13 bounds and +Inf */
    assert_int_equal(last, 9);
    /* 0.001 lands in le="0.001" (bounds are inclusive); 0.0001 too. */
    assert_non_null(strstr(s, "_bucket{route=\"/r\",le=\"0.001\"} 2\n"));
    assert_non_null(strstr(s, "_bucket{route=\"/r\",le=\"0.0025\"} 4\n"));
    assert_non_null(strstr(s, "_bucket{route=\"/r\",le=\"10\"} 8\n"));
    assert_non_null(strstr(s, "_count{route=\"/r\"} 9\n"));
    free(s);
    rb_metrics_free(m);
}

static void counters_with_and_without_labels(void **state)
{
    (void)state;
    struct rb_metrics *m = rb_metrics_new();
    rb_metrics_count(m, "rabta_jobs_run_total", "Jobs run, by kind.", "kind=\"sla.check\"", 1);
    rb_metrics_count(m, "rabta_jobs_run_total", "Jobs run, by kind.", "kind=\"deliver\"", 2);
    rb_metrics_count(m, "rabta_jobs_run_total", "Jobs run, by kind.", "kind=\"sla.check\"", 1);
    rb_metrics_count(m, "rabta_reloads_total", "Configuration reloads.\nEach one.", NULL, 1);
    rb_metrics_count(m, "bad name", "x", NULL, 1); /* refused with a warning */
    char *s = render(m);
    const char *want = "# HELP rabta_jobs_run_total Jobs run, by kind.\n"
                       "# TYPE rabta_jobs_run_total counter\n"
                       "rabta_jobs_run_total{kind=\"sla.check\"} 2\n"
                       "rabta_jobs_run_total{kind=\"deliver\"} 2\n"
                       "# HELP rabta_reloads_total Configuration reloads.\\nEach one.\n"
                       "# TYPE rabta_reloads_total counter\n"
                       "rabta_reloads_total 1\n";
    if (strcmp(s, want) != 0)
        fail_msg("exposition differs.\n--- got:\n%s\n--- want:\n%s", s, want);
    free(s);
    rb_metrics_free(m);
}

static double read_value(void *arg)
{
    return *(double *)arg;
}

static void gauges_are_read_at_render_time(void **state)
{
    (void)state;
    struct rb_metrics *m = rb_metrics_new();
    double v = 3;
    rb_metrics_gauge(m, "rabta_db_pool_busy", "Busy connections.", read_value, &v);
    char *s = render(m);
    assert_string_equal(s, "# HELP rabta_db_pool_busy Busy connections.\n"
                           "# TYPE rabta_db_pool_busy gauge\n"
                           "rabta_db_pool_busy 3\n");
    free(s);
    v = 0.25;
    s = render(m);
    assert_non_null(strstr(s, "rabta_db_pool_busy 0.25\n"));
    free(s);
    rb_metrics_free(m);
}

static void seen_combination_allocates_nothing(void **state)
{
    (void)state;
    struct rb_metrics *m = rb_metrics_new();
    rb_metrics_http(m, "/api/v1/cases/:id", "GET", 200, 0.01);
    rb_metrics_count(m, "rabta_x_total", "X.", "kind=\"a\"", 1);
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < 10000; i++) {
        rb_metrics_http(m, "/api/v1/cases/:id", "GET", 200, 0.01);
        rb_metrics_count(m, "rabta_x_total", "X.", "kind=\"a\"", 1);
    }
    struct mallinfo2 after = mallinfo2();
    assert_int_equal(before.uordblks, after.uordblks);
    char *s = render(m);
    assert_non_null(strstr(s, "status=\"200\"} 10001\n"));
    assert_non_null(strstr(s, "rabta_x_total{kind=\"a\"} 10001\n"));
    free(s);
    rb_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_registry_renders_nothing),
        cmocka_unit_test(exact_text_for_a_small_set),
        cmocka_unit_test(label_values_are_escaped),
        cmocka_unit_test(histogram_buckets_are_cumulative),
        cmocka_unit_test(counters_with_and_without_labels),
        cmocka_unit_test(gauges_are_read_at_render_time),
        cmocka_unit_test(seen_combination_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
