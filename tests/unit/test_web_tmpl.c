/* Unit tests of plugins/web/web_tmpl.c: escaping by context, the places where a value is
 * refused (with file:line:col), sections, words in both languages, partials. Each case writes
 * its templates into a fresh temporary folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../plugins/web/web_buf.c"
#include "../../plugins/web/web_tmpl.c"

static const char strings[] = "{\"en\": {\"hi\": \"Hello\", \"status.routed\": \"Received\"},"
                              " \"ur\": {\"hi\": \"سلام\"}}";

static char dir[64];

static void put(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/rb-web-tmpl-XXXXXX");
    assert_non_null(mkdtemp(dir));
    put("strings.json", strings);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Renders page.html (written with text) with data (JSON text) in lang; returns a new string. */
static char *render(const char *text, const char *data, const char *lang)
{
    put("page.html", text);
    char err[1024];
    struct web_tmpl_set *s = web_tmpl_load(dir, err, sizeof(err));
    if (!s)
        fail_msg("load: %s", err);
    json_t *d = json_loads(data, 0, NULL);
    assert_non_null(d);
    size_t len;
    char *out = web_tmpl_render(s, "page", d, lang, &len);
    assert_non_null(out);
    assert_int_equal(len, strlen(out));
    json_decref(d);
    web_tmpl_free(s);
    return out;
}

static void refused(const char *text, const char *where, const char *why)
{
    put("page.html", text);
    char err[1024];
    struct web_tmpl_set *s = web_tmpl_load(dir, err, sizeof(err));
    if (s)
        fail_msg("accepted: %s", text);
    if (!strstr(err, where) || !strstr(err, why))
        fail_msg("expected %s ... %s in: %s", where, why, err);
}

#define XSS "<script>x()</script>\"'&"

static void text_and_attributes_are_escaped(void **state)
{
    (void)state;
    char *out = render("<p title=\"{{v}}\">{{v}}</p>", "{\"v\": \"" "<script>x()</script>\\\"'&" "\"}", "en");
    assert_string_equal(out, "<p title=\"&lt;script&gt;x()&lt;/script&gt;&quot;&#39;&amp;\">"
                             "&lt;script&gt;x()&lt;/script&gt;&quot;&#39;&amp;</p>");
    free(out);
}

static void urls_are_checked_at_their_start_and_encoded_after_it(void **state)
{
    (void)state;
    char *out = render("<a href=\"{{u}}\">a</a><a href=\"{{ok}}\">b</a><a href=\"/t?q={{q}}\">c</a>"
                       "<a href=\"{{far}}\">d</a>",
                       "{\"u\": \"javascript:alert(1)\", \"ok\": \"/track?x=1&y=2\","
                       " \"q\": \"a b&c/\\\"\", \"far\": \"//evil.example/\"}",
                       "en");
    assert_string_equal(out, "<a href=\"#\">a</a><a href=\"/track?x=1&amp;y=2\">b</a>"
                             "<a href=\"/t?q=a%20b%26c%2F%22\">c</a><a href=\"#\">d</a>");
    free(out);
}

static void unsafe_places_are_refused_with_file_line_col(void **state)
{
    (void)state;
    refused("<p>\n<script>var a = \"{{v}}\";</script>", "page.html:2:", "inside <script>");
    refused("<style>p { color: {{c}} }</style>", "page.html:1:", "inside <script> or <style>");
    refused("<a onclick=\"{{v}}\">x</a>", "page.html:1:", "event handler");
    refused("<p style=\"{{v}}\">x</p>", "page.html:1:", "style");
    refused("<input value={{v}}>", "page.html:1:", "must be quoted");
    refused("<{{tag}}>", "page.html:1:", "tag or attribute name");
    refused("</{{tag}}>", "page.html:1:", "tag or attribute name");
    refused("<p {{attr}}=\"x\">", "page.html:1:", "tag or attribute name");
    refused("<!-- {{v}} -->", "page.html:1:", "comment");
    refused("{{#a}}open", "page.html:1:", "never closed");
    refused("{{/a}}", "page.html:1:", "closes no open");
    refused("<p {{>part}}>", "page.html:1:", "element text");
    refused("{{a b}}", "page.html:1:", "is not a name");
}

static void a_script_tag_ends_raw_text(void **state)
{
    (void)state;
    char *out = render("<script src=\"/a.js\"></script><p>{{v}}</p>", "{\"v\": \"<b>\"}", "en");
    assert_string_equal(out, "<script src=\"/a.js\"></script><p>&lt;b&gt;</p>");
    free(out);
}

static void sections_repeat_and_invert(void **state)
{
    (void)state;
    char *out = render("{{#xs}}[{{n}}{{top}}]{{/xs}}{{^xs}}none{{/xs}}{{^empty}}E{{/empty}}"
                       "{{#flag}}F{{/flag}}{{#obj}}{{k}}{{/obj}}{{#zero}}Z{{/zero}}",
                       "{\"xs\": [{\"n\": 1}, {\"n\": \"<2>\"}], \"top\": \"t\", \"empty\": [],"
                       " \"flag\": true, \"obj\": {\"k\": \"K\"}, \"zero\": 0}",
                       "en");
    assert_string_equal(out, "[1t][&lt;2&gt;t]EFK");
    free(out);
}

static void words_follow_the_language_with_english_as_fallback(void **state)
{
    (void)state;
    char *out = render("{{@hi}} {{@status.*s}} {{@missing}}", "{\"s\": \"routed\"}", "ur");
    assert_string_equal(out, "سلام Received missing");
    free(out);
}

static void partials_are_included(void **state)
{
    (void)state;
    put("part.html", "<b>{{v}}</b>");
    char *out = render("<p>{{>part}}</p>", "{\"v\": \"&\"}", "en");
    assert_string_equal(out, "<p><b>&amp;</b></p>");
    free(out);
    refused("<p>{{>nowhere}}</p>", "page.html:1:4", "there is no nowhere.html");
    char path[128];
    snprintf(path, sizeof(path), "%s/part.html", dir);
    unlink(path);
}

static void a_broken_strings_file_is_named(void **state)
{
    (void)state;
    put("strings.json", "{\"en\": {}, \"ur\": ");
    char err[1024];
    assert_null(web_tmpl_load(dir, err, sizeof(err)));
    assert_non_null(strstr(err, "strings.json:1:"));
    put("strings.json", strings);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_and_attributes_are_escaped),
        cmocka_unit_test(urls_are_checked_at_their_start_and_encoded_after_it),
        cmocka_unit_test(unsafe_places_are_refused_with_file_line_col),
        cmocka_unit_test(a_script_tag_ends_raw_text),
        cmocka_unit_test(sections_repeat_and_invert),
        cmocka_unit_test(words_follow_the_language_with_english_as_fallback),
        cmocka_unit_test(partials_are_included),
        cmocka_unit_test(a_broken_strings_file_is_named),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
