/* Unit tests of core/lua/templates.c: template texts and rendering and the load-time check of
 * lua/templates.lua (with file:line). */
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

#include "config/config.h"
#include "config/tz.h"
#include "lua/script.h"
#include "lua/templates.h"

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
    char *ur = rb_template_render(rb_script_templates(s), "notice.resolve", "ur", p, why, sizeof(why));
    char *en = rb_template_render(rb_script_templates(s), "notice.resolve", "en", p, why, sizeof(why));
    assert_non_null(ur);
    assert_non_null(en);
    assert_non_null(strstr(ur, "RB-9T1SG-GK0QM-9"));
    assert_non_null(strstr(ur, "مطمئن"));
    assert_non_null(strstr(en, "Reply 1 satisfied, 2 unsatisfied"));
    free(ur);
    free(en);
    assert_null(rb_template_render(rb_script_templates(s), "no.such", "en", p, why, sizeof(why)));
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(template_texts_are_checked),
        cmocka_unit_test(fill_replaces_placeholders_and_refuses_missing_values),
        cmocka_unit_test(sample_templates_render_in_both_languages),
        cmocka_unit_test(bad_templates_are_refused_with_file_and_line),
        cmocka_unit_test(a_missing_or_misspelled_required_template_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
