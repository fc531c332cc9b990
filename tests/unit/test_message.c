/* Unit tests of core/message.c: template texts and rendering, the load-time check of
 * lua/templates.lua (with file:line), and the quiet-hours arithmetic (a window crossing
 * midnight, a zone with daylight saving time). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "message.h"
#include "script.h"
#include "tz.h"

static void template_texts_are_checked(void **state)
{
    (void)state;
    assert_null(rb_template_text_check("Complaint {tracking} is {status}.", 33));
    assert_null(rb_template_text_check("شکایت {tracking} درج", strlen("شکایت {tracking} درج")));
    assert_non_null(rb_template_text_check("", 0));
    assert_non_null(rb_template_text_check("bad {Tracking}", 14));
    assert_non_null(rb_template_text_check("bad {tracking", 13));
    assert_non_null(rb_template_text_check("bad }", 5));
    assert_non_null(rb_template_text_check("bad {}", 6));
    assert_non_null(rb_template_text_check("\xff\xfe", 2));
    char big[400];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_non_null(rb_template_text_check(big, strlen(big)));
    assert_true(rb_template_name_ok("notice.resolve", 14));
    assert_false(rb_template_name_ok("Notice", 6));
    assert_false(rb_template_name_ok("1x", 2));
    assert_false(rb_template_name_ok("", 0));
}

static void fill_replaces_placeholders_and_refuses_missing_values(void **state)
{
    (void)state;
    json_t *p = json_pack("{s:s, s:i}", "tracking", "RB-1", "minutes", 10);
    char why[128];
    char *s = rb_template_fill("No {tracking} ({tracking}), {minutes} min", p, why, sizeof(why));
    assert_string_equal(s, "No RB-1 (RB-1), 10 min");
    free(s);
    s = rb_template_fill("شکایت {tracking} درج", p, why, sizeof(why));
    assert_string_equal(s, "شکایت RB-1 درج");
    free(s);
    assert_null(rb_template_fill("{status}", p, why, sizeof(why)));
    assert_non_null(strstr(why, "{status}"));
    /* A value that looks like a placeholder is not expanded again. */
    json_object_set_new(p, "status", json_string("{tracking}"));
    s = rb_template_fill("{status}", p, why, sizeof(why));
    assert_string_equal(s, "{tracking}");
    free(s);
    json_decref(p);
}

static struct rb_config *sample_config(void)
{
    struct rb_errors errs;
    rb_errors_init(&errs);
    struct rb_config *cfg = rb_config_load(RB_SOURCE_DIR "/config/rabta.yaml", &errs);
    if (!cfg)
        fail_msg("config/rabta.yaml does not load: %s", errs.n ? errs.msgs[0] : "?");
    rb_errors_free(&errs);
    return cfg;
}

static void sample_templates_render_in_both_languages(void **state)
{
    (void)state;
    struct rb_config *cfg = sample_config();
    struct rb_errors errs;
    rb_errors_init(&errs);
    struct rb_script *s = rb_script_load(RB_SOURCE_DIR "/lua", cfg, &errs);
    if (!s)
        fail_msg("lua/ does not load: %s", errs.n ? errs.msgs[0] : "?");
    json_t *p = json_pack("{s:s, s:s}", "tracking", "RB-9T1SG-GK0QM-9", "department", "Police");
    char why[256];
    char *ur = rb_template_render(s, "notice.resolve", "ur", p, why, sizeof(why));
    char *en = rb_template_render(s, "notice.resolve", "en", p, why, sizeof(why));
    assert_non_null(ur);
    assert_non_null(en);
    assert_non_null(strstr(ur, "RB-9T1SG-GK0QM-9"));
    assert_non_null(strstr(ur, "مطمئن"));
    assert_non_null(strstr(en, "Reply 1 satisfied, 2 unsatisfied"));
    free(ur);
    free(en);
    assert_null(rb_template_render(s, "no.such", "en", p, why, sizeof(why)));
    assert_non_null(strstr(why, "no template"));
    json_decref(p);
    rb_script_free(s);
    rb_config_free(cfg);
    rb_errors_free(&errs);
}

/* Writes lua/routing.lua (a trivial route) and lua/templates.lua (text) into a new temp dir,
 * loads it, and expects failure with every needle in one of the errors. */
static void templates_refused(const char *text, const char *const *needles)
{
    char dir[] = "/tmp/rb_msg_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/routing.lua", dir);
    FILE *f = fopen(path, "w");
    fputs("function route(c) return {department = 'bureau'} end\n", f);
    fclose(f);
    char tpath[128];
    snprintf(tpath, sizeof(tpath), "%s/templates.lua", dir);
    f = fopen(tpath, "w");
    /* the whole sample file first, so only the added error is wrong */
    FILE *in = fopen(RB_SOURCE_DIR "/lua/templates.lua", "r");
    char buf[4096];
    size_t n;
    while (in && (n = fread(buf, 1, sizeof(buf), in)) > 0)
        fwrite(buf, 1, n, f);
    if (in)
        fclose(in);
    fputs(text, f);
    fclose(f);
    struct rb_config *cfg = sample_config();
    struct rb_errors errs;
    rb_errors_init(&errs);
    struct rb_script *s = rb_script_load(dir, cfg, &errs);
    assert_null(s);
    int found = 0;
    for (size_t i = 0; i < errs.n && !found; i++) {
        int all = 1;
        for (size_t k = 0; needles[k]; k++)
            if (!strstr(errs.msgs[i], needles[k]))
                all = 0;
        found = all;
    }
    if (!found)
        fail_msg("expected an error with \"%s\"; got \"%s\"", needles[0],
                 errs.n ? errs.msgs[0] : "none");
    rb_errors_free(&errs);
    rb_config_free(cfg);
    unlink(path);
    unlink(tpath);
    rmdir(dir);
}

static int lines_of_sample(void)
{
    FILE *in = fopen(RB_SOURCE_DIR "/lua/templates.lua", "r");
    int n = 0, c;
    while (in && (c = fgetc(in)) != EOF)
        n += c == '\n';
    if (in)
        fclose(in);
    return n;
}

static void bad_templates_are_refused_with_file_and_line(void **state)
{
    (void)state;
    char at[64];
    snprintf(at, sizeof(at), "lua/templates.lua:%d:", lines_of_sample() + 1);
    const char *const missing_ur[] = {at, "ur must be a text", NULL};
    templates_refused("template(\"x.y\", {en = \"hello\"})\n", missing_ur);
    const char *const twice[] = {at, "declared twice", NULL};
    templates_refused("template(\"otp\", {en = \"a\", ur = \"b\"})\n", twice);
    const char *const malformed[] = {at, "malformed placeholder", NULL};
    templates_refused("template(\"x\", {en = \"{Bad}\", ur = \"b\"})\n", malformed);
    const char *const extra_key[] = {at, "only the keys en and ur", NULL};
    templates_refused("template(\"x\", {en = \"a\", ur = \"b\", fr = \"c\"})\n", extra_key);
    const char *const syntax[] = {"lua/templates.lua:", NULL};
    templates_refused("template(\"x\", {en = \n", syntax);
}

static void a_missing_or_misspelled_required_template_is_refused(void **state)
{
    (void)state;
    /* A file of its own: only sms.received, with a misspelled placeholder. */
    char dir[] = "/tmp/rb_msg_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], tpath[128];
    snprintf(path, sizeof(path), "%s/routing.lua", dir);
    snprintf(tpath, sizeof(tpath), "%s/templates.lua", dir);
    FILE *f = fopen(path, "w");
    fputs("function route(c) return {department = 'bureau'} end\n", f);
    fclose(f);
    f = fopen(tpath, "w");
    fputs("-- one\ntemplate(\"sms.received\", {en = \"No {trackng}\", ur = \"{tracking}\"})\n", f);
    fclose(f);
    struct rb_config *cfg = sample_config();
    struct rb_errors errs;
    rb_errors_init(&errs);
    assert_null(rb_script_load(dir, cfg, &errs));
    int typo = 0, missing = 0;
    for (size_t i = 0; i < errs.n; i++) {
        if (strstr(errs.msgs[i], "lua/templates.lua:2: template \"sms.received\" (en): unknown "
                                 "placeholder {trackng}"))
            typo = 1;
        if (strstr(errs.msgs[i], "template \"notice.resolve\" is missing"))
            missing = 1;
    }
    assert_true(typo);
    assert_true(missing);
    rb_errors_free(&errs);
    rb_config_free(cfg);
    unlink(path);
    unlink(tpath);
    rmdir(dir);
}

/* ---- quiet hours ---------------------------------------------------------------------- */

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
        cmocka_unit_test(template_texts_are_checked),
        cmocka_unit_test(fill_replaces_placeholders_and_refuses_missing_values),
        cmocka_unit_test(sample_templates_render_in_both_languages),
        cmocka_unit_test(bad_templates_are_refused_with_file_and_line),
        cmocka_unit_test(a_missing_or_misspelled_required_template_is_refused),
        cmocka_unit_test(quiet_hours_parse),
        cmocka_unit_test(quiet_window_crossing_midnight_in_karachi),
        cmocka_unit_test(quiet_window_over_a_clock_change_in_london),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
