/* SLA configuration and plans: the sample loads; bad files are refused with file:line:col and
 * the key; policies are picked by override, then by the rules' choice, then "default"; a
 * case's plan is in time order and the ladder's levels follow the breach. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/config.h"
#include "sla/sla_engine.h"
#include "sla/sla_policy.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/rb_test_sla_XXXXXX");
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/always.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs("timezone: UTC\nhours:\n  mon-sun: [00:00-24:00]\n", f);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

static char *write_sla(const char *text)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/sla.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static const char good_head[] = "calendar: always.yaml\n"
                                "policies:\n"
                                "  default: { acknowledge: 1h, resolve: 10h, warn_at: [0.5] }\n";
static const char good_tail[] = "escalation:\n"
                                "  - after: 0s\n"
                                "    actions: [ { notify: supervisor, via: inbox } ]\n";

/* Loads text; expects exactly one error at line:col containing needle. */
static void refused(const char *text, int line, int col, const char *needle)
{
    struct rb_errors e;
    rb_errors_init(&e);
    struct rb_sla *sla = rb_sla_load(write_sla(text), NULL, &e);
    if (sla || e.n != 1) {
        for (size_t i = 0; i < e.n; i++)
            print_error("  %s\n", e.msgs[i]);
        fail_msg("expected one error, got %zu (%s)", e.n, sla ? "loaded" : "refused");
    }
    char prefix[160];
    snprintf(prefix, sizeof(prefix), "%s/sla.yaml:%d:%d: ", dir, line, col);
    if (strncmp(e.msgs[0], prefix, strlen(prefix)) != 0 || !strstr(e.msgs[0], needle))
        fail_msg("\"%s\" is not at %s or lacks \"%s\"", e.msgs[0], prefix, needle);
    rb_errors_free(&e);
}

static void sample_loads_with_the_sample_config(void **state)
{
    (void)state;
    struct rb_errors e;
    rb_errors_init(&e);
    struct rb_config *cfg = rb_config_load(RB_SOURCE_DIR "/config/rabta.yaml", &e);
    assert_non_null(cfg);
    assert_non_null(cfg->sla_file);
    struct rb_sla *sla = rb_sla_load(cfg->sla_file, cfg, &e);
    for (size_t i = 0; i < e.n; i++)
        print_error("%s\n", e.msgs[i]);
    assert_non_null(sla);
    assert_true(sla->n_levels >= 3);
    /* Overrides first, then the rules' policy, then default. */
    assert_string_equal(rb_sla_pick(sla, "police", "fir_registration", "complaint", "default")->name,
                        "urgent");
    assert_string_equal(rb_sla_pick(sla, "revenue", "fard", "information", "information")->name,
                        "information");
    assert_string_equal(rb_sla_pick(sla, "revenue", "fard", "complaint", "nonesuch")->name,
                        "default");
    rb_sla_free(sla);
    rb_config_free(cfg);
    rb_errors_free(&e);
}

static void plan_is_in_time_order_and_the_ladder_follows_the_breach(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof(text), "%s%s  - after: 2h\n    actions: [ { flag: oversight } ]\n",
             good_head, good_tail);
    struct rb_errors e;
    rb_errors_init(&e);
    struct rb_sla *sla = rb_sla_load(write_sla(text), NULL, &e);
    assert_non_null(sla);
    const struct rb_sla_policy *p = rb_sla_pick(sla, NULL, NULL, "complaint", NULL);
    int64_t t = 1800000000, ack, res;
    rb_sla_deadlines(sla, p, t, &ack, &res);
    assert_int_equal(ack, t + 3600);
    assert_int_equal(res, t + 36000);
    struct rb_sla_event plan[RB_SLA_PLAN_MAX];
    int n = rb_sla_plan(sla, p, t, ack, res, 7u, plan);
    assert_int_equal(n, 4); /* ack, warn, level 0, level 1 */
    assert_int_equal(plan[0].check, RB_SLA_ACK);
    assert_int_equal(plan[1].check, RB_SLA_WARN);
    assert_int_equal(plan[1].due, t + 18000);
    assert_int_equal(plan[2].check, RB_SLA_RESOLVE);
    assert_int_equal(plan[2].due, res);
    assert_int_equal(plan[3].due, res + 7200);
    char *payload = rb_sla_event_payload(7, plan, n);
    assert_non_null(strstr(payload, "\"case_id\":7,\"check\":\"ack\""));
    assert_non_null(strstr(payload, "\"rest\":[[1,0,"));
    free(payload);
    rb_sla_free(sla);
    rb_errors_free(&e);
}

static void negative_duration_is_refused(void **state)
{
    (void)state;
    refused("calendar: always.yaml\npolicies:\n  default: { acknowledge: -1h, resolve: 10h }\n"
            "escalation:\n  - after: 0s\n    actions: [ { flag: oversight } ]\n",
            3, 27, "acknowledge");
}

static void unknown_calendar_is_refused(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof(text), "calendar: nowhere.yaml\n%s%s", good_head + 22, good_tail);
    refused(text, 1, 11, "calendar");
}

static void level_without_action_is_refused(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof(text), "%sescalation:\n  - after: 0s\n    actions: []\n", good_head);
    refused(text, 6, 14, "at least one action");
}

static void unknown_action_and_bad_role_are_refused(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof(text),
             "%sescalation:\n  - after: 0s\n    actions: [ { phone_minister: yes } ]\n",
             good_head);
    refused(text, 6, 18, "unknown action \"phone_minister\"");
    snprintf(text, sizeof(text),
             "%sescalation:\n  - after: 0s\n    actions: [ { notify: mayor, via: sms } ]\n",
             good_head);
    refused(text, 6, 26, "expected supervisor, head, oversight or duty_officer");
}

static void acknowledge_longer_than_resolve_is_refused(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof(text),
             "calendar: always.yaml\npolicies:\n  default: { acknowledge: 2d, resolve: 1d }\n%s",
             good_tail);
    refused(text, 3, 27, "longer than the time to resolve");
}

static void missing_default_policy_is_refused(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof(text),
             "calendar: always.yaml\npolicies:\n  fast: { acknowledge: 1h, resolve: 2h }\n%s",
             good_tail);
    refused(text, 3, 3, "\"default\" is required");
}

static void levels_out_of_order_are_refused(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof(text),
             "%s%s  - after: 0s\n    actions: [ { flag: oversight } ]\n", good_head, good_tail);
    refused(text, 7, 12, "later than the one before");
}

static void people_and_close_keys(void **state)
{
    (void)state;
    char text[640];
    snprintf(text, sizeof(text),
             "%sescalation:\n  - after: 0s\n    actions: [ { notify: head, via: email },"
             " { notify: duty_officer, via: sms }, { notify: oversight, via: inbox } ]\n"
             "notify_language: en\nclose: { no_reply: 2h, no_rating: 7d, reopen_window: 15d }\n",
             good_head);
    struct rb_errors e;
    rb_errors_init(&e);
    struct rb_sla *sla = rb_sla_load(write_sla(text), NULL, &e);
    assert_non_null(sla);
    assert_int_equal(sla->levels[0].n, 3);
    assert_string_equal(sla->levels[0].actions[0].target, "head");
    assert_string_equal(sla->levels[0].actions[0].via, "email");
    assert_string_equal(sla->notify_language, "en");
    assert_true(sla->close.no_reply == 7200 && sla->close.no_rating == 7 * 86400 &&
                sla->close.reopen_window == 15 * 86400);
    rb_sla_free(sla);
    rb_errors_free(&e);
    snprintf(text, sizeof(text), "%s%s", good_head, good_tail); /* defaults: off, Urdu */
    sla = rb_sla_load(write_sla(text), NULL, &e);
    assert_non_null(sla);
    assert_string_equal(sla->notify_language, "ur");
    assert_true(sla->close.no_reply == 0 && sla->close.reopen_window == 0);
    rb_sla_free(sla);
    snprintf(text, sizeof(text),
             "%sescalation:\n  - after: 0s\n    actions: [ { notify: duty_officer, via: inbox } ]\n",
             good_head);
    refused(text, 6, 26, "the duty officer has no staff inbox");
    snprintf(text, sizeof(text),
             "%sescalation:\n  - after: 0s\n    actions: [ { reassign: oversight } ]\n", good_head);
    refused(text, 6, 28, "key \"reassign\": expected supervisor");
    snprintf(text, sizeof(text), "%s%snotify_language: fr\n", good_head, good_tail);
    refused(text, 7, 18, "expected ur or en");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sample_loads_with_the_sample_config),
        cmocka_unit_test(plan_is_in_time_order_and_the_ladder_follows_the_breach),
        cmocka_unit_test(negative_duration_is_refused),
        cmocka_unit_test(unknown_calendar_is_refused),
        cmocka_unit_test(level_without_action_is_refused),
        cmocka_unit_test(unknown_action_and_bad_role_are_refused),
        cmocka_unit_test(acknowledge_longer_than_resolve_is_refused),
        cmocka_unit_test(missing_default_policy_is_refused),
        cmocka_unit_test(levels_out_of_order_are_refused),
        cmocka_unit_test(people_and_close_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
