/* core/config/yaml_doc.c: the YAML tree with positions, what it refuses, the scalar conversions and the
 * declarative parser. Every error test checks the exact "file:line:col: " and the key. */
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

#include "config/yaml_doc.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static struct rb_doc *parse(const char *text, struct rb_errors *e)
{
    rb_errors_init(e);
    return rb_doc_parse("t.yaml", text, strlen(text), e);
}

/* text must be refused with exactly one error that starts with prefix and contains needle. */
static void assert_refused(const char *text, const char *prefix, const char *needle)
{
    struct rb_errors e;
    struct rb_doc *doc = parse(text, &e);
    assert_null(doc);
    if (e.n != 1)
        fail_msg("expected 1 error, got %zu (first: %s)", e.n, e.n ? e.msgs[0] : "-");
    if (strncmp(e.msgs[0], prefix, strlen(prefix)) != 0)
        fail_msg("message \"%s\" does not start with \"%s\"", e.msgs[0], prefix);
    if (!strstr(e.msgs[0], needle))
        fail_msg("message \"%s\" lacks \"%s\"", e.msgs[0], needle);
    rb_errors_free(&e);
}

static void assert_msg(const struct rb_errors *e, size_t i, const char *expected)
{
    if (i >= e->n)
        fail_msg("expected message %zu \"%s\", only %zu messages", i, expected, e->n);
    if (strcmp(e->msgs[i], expected) != 0)
        fail_msg("message %zu is\n  \"%s\"\nexpected\n  \"%s\"", i, e->msgs[i], expected);
}

/* Parses "v: <value>" and returns the value node; the document goes to *doc. */
static const struct rb_node *value_of(const char *yaml, struct rb_doc **doc, struct rb_errors *e)
{
    *doc = parse(yaml, e);
    assert_non_null(*doc);
    const struct rb_node *v = rb_node_get((*doc)->root, "v");
    assert_non_null(v);
    return v;
}

/* ---- the tree ----------------------------------------------------------------------------- */

static void tree_keeps_line_and_column_of_every_node(void **state)
{
    (void)state;
    struct rb_errors e;
    struct rb_doc *doc = parse("server:\n"
                               "  listen: \"127.0.0.1:8080\"\n"
                               "  pool: 4\n"
                               "list:\n"
                               "  - a\n"
                               "  - {x: yes}\n",
                               &e);
    assert_non_null(doc);
    assert_int_equal(e.n, 0);
    const struct rb_node *root = doc->root;
    assert_int_equal(root->type, RB_NODE_MAP);
    assert_int_equal(root->n, 2);
    assert_string_equal(root->file, "t.yaml");
    const struct rb_node *server = rb_node_get(root, "server");
    assert_int_equal(server->type, RB_NODE_MAP);
    assert_int_equal(server->line, 2); /* a block map starts at its first key */
    assert_int_equal(server->col, 3);
    const struct rb_node *listen = rb_node_get(server, "listen");
    assert_int_equal(listen->type, RB_NODE_SCALAR);
    assert_string_equal(listen->scalar, "127.0.0.1:8080");
    assert_int_equal(listen->line, 2);
    assert_int_equal(listen->col, 11);
    assert_true(listen->quoted);
    assert_int_equal(server->keys[1]->line, 3); /* keys are nodes with positions too */
    assert_int_equal(server->keys[1]->col, 3);
    const struct rb_node *pool = rb_node_get(server, "pool");
    assert_false(pool->quoted);
    const struct rb_node *list = rb_node_get(root, "list");
    assert_int_equal(list->type, RB_NODE_SEQ);
    assert_int_equal(list->n, 2);
    assert_string_equal(list->items[0]->scalar, "a");
    assert_int_equal(list->items[1]->type, RB_NODE_MAP);
    assert_int_equal(list->items[1]->line, 6);
    assert_int_equal(list->items[1]->col, 5);
    const struct rb_node *x = rb_node_get(list->items[1], "x");
    assert_int_equal(x->line, 6);
    assert_int_equal(x->col, 9);
    assert_null(rb_node_get(root, "absent"));
    assert_null(rb_node_get(list, "a")); /* not a map */
    rb_doc_free(doc);
    rb_errors_free(&e);
}

static void tree_counts_columns_in_characters_not_bytes(void **state)
{
    (void)state;
    struct rb_errors e;
    /* "لاہور" is 5 characters, 10 bytes. */
    struct rb_doc *doc = parse("a: {ur: \"لاہور\", en: Lahore}\n", &e);
    assert_non_null(doc);
    const struct rb_node *a = rb_node_get(doc->root, "a");
    assert_string_equal(rb_node_get(a, "ur")->scalar, "لاہور");
    assert_int_equal(rb_node_get(a, "en")->col, 22);
    rb_doc_free(doc);
    rb_errors_free(&e);
}

static void tree_grows_past_many_items(void **state)
{
    (void)state;
    size_t n = 1000, cap = n * 16 + 16;
    char *text = malloc(cap), *p = text;
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "k%zu: %zu\n", i, i);
    struct rb_errors e;
    struct rb_doc *doc = parse(text, &e);
    assert_non_null(doc);
    assert_int_equal(doc->root->n, n);
    assert_string_equal(rb_node_get(doc->root, "k999")->scalar, "999");
    assert_int_equal(rb_node_get(doc->root, "k500")->line, 501);
    rb_doc_free(doc);
    rb_errors_free(&e);
    free(text);
}

static void empty_input_is_an_empty_document(void **state)
{
    (void)state;
    const char *empties[] = {"", "# only a comment\n", "---\n", "\n\n"};
    for (size_t i = 0; i < sizeof(empties) / sizeof(*empties); i++) {
        struct rb_errors e;
        struct rb_doc *doc = parse(empties[i], &e);
        assert_non_null(doc);
        assert_null(doc->root);
        assert_int_equal(e.n, 0);
        rb_doc_free(doc);
        rb_errors_free(&e);
    }
}

/* ---- what the parser refuses --------------------------------------------------------------- */

static void syntax_error_names_position_and_problem(void **state)
{
    (void)state;
    assert_refused("a: 1\nb: [1, 2\nc: 3\n", "t.yaml:3:2: invalid YAML: ",
                   "did not find expected ',' or ']'");
    assert_refused("a:\n  b: 1\n c: 2\n", "t.yaml:3:2: invalid YAML: ", "did not find expected key");
}

static void second_document_is_refused(void **state)
{
    (void)state;
    assert_refused("a: 1\n---\nb: 2\n", "t.yaml:2:1: ", "second YAML document");
}

static void anchors_and_aliases_are_refused(void **state)
{
    (void)state;
    struct rb_errors e;
    assert_null(parse("base: &b {x: 1}\nother: *b\nlol: &l [a]\n", &e));
    assert_int_equal(e.n, 3);
    assert_msg(&e, 0, "t.yaml:1:7: anchor \"&b\" is not allowed: anchors and aliases are not "
                      "supported, write the value out in full");
    assert_msg(&e, 1, "t.yaml:2:8: alias \"*b\" is not allowed: anchors and aliases are not "
                      "supported, write the value out in full");
    assert_non_null(strstr(e.msgs[2], "t.yaml:3:6: anchor \"&l\""));
    rb_errors_free(&e);
}

static void billion_laughs_is_refused_without_expansion(void **state)
{
    (void)state;
    struct rb_errors e;
    assert_null(parse("a: &a [x, x, x, x, x, x, x, x, x]\n"
                      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
                      &e));
    assert_int_equal(e.n, 3 + 18); /* three anchors, eighteen aliases, nothing expanded */
    rb_errors_free(&e);
}

static void nesting_deeper_than_64_is_refused(void **state)
{
    (void)state;
    char text[300];
    /* 63 nested lists inside the root map: 64 levels, allowed. */
    char *p = text + sprintf(text, "v: ");
    for (int i = 0; i < 63; i++)
        *p++ = '[';
    for (int i = 0; i < 63; i++)
        *p++ = ']';
    strcpy(p, "\n");
    struct rb_errors e;
    struct rb_doc *doc = parse(text, &e);
    assert_non_null(doc);
    rb_doc_free(doc);
    rb_errors_free(&e);
    /* One more is refused at the 65th opening bracket's column (4 + 63). */
    p = text + sprintf(text, "v: ");
    for (int i = 0; i < 64; i++)
        *p++ = '[';
    for (int i = 0; i < 64; i++)
        *p++ = ']';
    strcpy(p, "\n");
    assert_refused(text, "t.yaml:1:67: ", "nested deeper than 64 levels");
}

static void duplicate_key_names_the_first(void **state)
{
    (void)state;
    assert_refused("id: a\nname: x\nid: b\n", "t.yaml:3:1: ",
                   "key \"id\" appears twice in the same map (first at line 1, column 1)");
    /* The same key in different maps is fine. */
    struct rb_errors e;
    struct rb_doc *doc = parse("a: {id: 1}\nb: {id: 2}\n", &e);
    assert_non_null(doc);
    rb_doc_free(doc);
    rb_errors_free(&e);
}

static void every_duplicate_is_reported_in_file_order(void **state)
{
    (void)state;
    struct rb_errors e;
    assert_null(parse("b: 1\na: 1\nb: 2\na: 2\nb: 3\n", &e));
    assert_int_equal(e.n, 3);
    assert_msg(&e, 0, "t.yaml:3:1: key \"b\" appears twice in the same map (first at line 1, "
                      "column 1)");
    assert_msg(&e, 1, "t.yaml:4:1: key \"a\" appears twice in the same map (first at line 2, "
                      "column 1)");
    assert_msg(&e, 2, "t.yaml:5:1: key \"b\" appears twice in the same map (first at line 1, "
                      "column 1)");
    rb_errors_free(&e);
}

static void map_and_list_keys_are_refused(void **state)
{
    (void)state;
    assert_refused("? [a, b]\n: 1\n", "t.yaml:1:3: ", "a map key must be a plain value, not a list");
    assert_refused("{x: 1}: 2\n", "t.yaml:1:1: ", "a map key must be a plain value, not a map");
}

static void invalid_utf8_is_refused_with_its_position(void **state)
{
    (void)state;
    assert_refused("a: 1\nname: \"B\xff\"\n", "t.yaml:2:9: ", "the file must be UTF-8 text");
    assert_refused("a: \xc3\n", "t.yaml:1:4: ", "invalid trailing UTF-8 octet (byte 0x0a)");
}

static void application_tags_are_refused_and_str_tag_quotes(void **state)
{
    (void)state;
    assert_refused("a: !secret x\n", "t.yaml:1:4: ", "tag \"!secret\" is not supported");
    struct rb_errors e;
    struct rb_doc *doc = parse("a: !!str yes\n", &e);
    assert_non_null(doc);
    assert_true(rb_node_get(doc->root, "a")->quoted);
    rb_doc_free(doc);
    rb_errors_free(&e);
}

static void oversize_input_is_refused(void **state)
{
    (void)state;
    size_t n = 4u * 1024 * 1024 + 1;
    char *text = malloc(n);
    memset(text, '#', n);
    struct rb_errors e;
    rb_errors_init(&e);
    assert_null(rb_doc_parse("big.yaml", text, n, &e));
    assert_int_equal(e.n, 1);
    assert_non_null(strstr(e.msgs[0], "big.yaml: the file is 4194305 bytes, larger than the 4 MiB"));
    rb_errors_free(&e);
    /* Exactly 4 MiB of comment is fine. */
    text[n - 2] = '\n';
    struct rb_doc *doc = rb_doc_parse("big.yaml", text, n - 1, &e);
    assert_non_null(doc);
    assert_null(doc->root);
    rb_doc_free(doc);
    rb_errors_free(&e);
    free(text);
}

/* ---- files -------------------------------------------------------------------------------- */

static char *temp_dir(void)
{
    char tmpl[] = "/tmp/rb_test_conf_XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static char *write_file(const char *dir, const char *name, const char *text, size_t len)
{
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
    return path;
}

static void load_reads_a_file_and_names_it(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char *path = write_file(dir, "a.yaml", "x: 1\ny: [1, 2\n", 14);
    struct rb_errors e;
    rb_errors_init(&e);
    assert_null(rb_doc_load(path, &e));
    assert_int_equal(e.n, 1);
    char expected[512];
    snprintf(expected, sizeof(expected), "%s:3:1: invalid YAML: ", path);
    assert_true(strncmp(e.msgs[0], expected, strlen(expected)) == 0);
    rb_errors_free(&e);
    unlink(path);
    free(path);
    rmdir(dir);
    free(dir);
}

static void load_of_missing_file_gives_strerror(void **state)
{
    (void)state;
    struct rb_errors e;
    rb_errors_init(&e);
    assert_null(rb_doc_load("/nonexistent/rabta.yaml", &e));
    assert_int_equal(e.n, 1);
    assert_msg(&e, 0, "cannot open /nonexistent/rabta.yaml: No such file or directory");
    rb_errors_free(&e);
}

static void load_of_directory_is_refused(void **state)
{
    (void)state;
    struct rb_errors e;
    rb_errors_init(&e);
    assert_null(rb_doc_load("/tmp", &e));
    assert_int_equal(e.n, 1);
    assert_msg(&e, 0, "cannot read /tmp: it is not a regular file");
    rb_errors_free(&e);
}

static void load_of_oversize_file_is_refused_before_reading(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char *path = write_file(dir, "big.yaml", "", 0);
    assert_int_equal(truncate(path, 5 * 1024 * 1024), 0);
    struct rb_errors e;
    rb_errors_init(&e);
    assert_null(rb_doc_load(path, &e));
    assert_int_equal(e.n, 1);
    assert_non_null(strstr(e.msgs[0], "is 5242880 bytes, larger than the 4 MiB"));
    rb_errors_free(&e);
    unlink(path);
    free(path);
    rmdir(dir);
    free(dir);
}

static void load_from_places_file_errors_at_the_naming_key(void **state)
{
    (void)state;
    struct rb_errors e;
    struct rb_doc *doc = parse("districts: missing.yaml\n", &e);
    const struct rb_node *at = rb_node_get(doc->root, "districts");
    assert_null(rb_doc_load_from("/nonexistent/missing.yaml", at, "districts", &e));
    assert_int_equal(e.n, 1);
    assert_msg(&e, 0, "t.yaml:1:12: key \"districts\": cannot open /nonexistent/missing.yaml: "
                      "No such file or directory");
    rb_doc_free(doc);
    rb_errors_free(&e);
}

/* ---- conversions -------------------------------------------------------------------------- */

static void str_accepts_scalars_only(void **state)
{
    (void)state;
    struct rb_doc *doc;
    struct rb_errors e;
    char *s = NULL;
    const struct rb_node *v = value_of("v: hello\n", &doc, &e);
    assert_int_equal(rb_node_str(v, "v", &e, &s), RB_OK);
    assert_string_equal(s, "hello");
    free(s);
    rb_doc_free(doc);
    v = value_of("v: [a]\n", &doc, &e);
    assert_int_equal(rb_node_str(v, "v", &e, &s), RB_EINVAL);
    assert_msg(&e, 0, "t.yaml:1:4: key \"v\": expected a text value, got a list");
    rb_doc_free(doc);
    rb_errors_free(&e);
}

static void int_accepts_whole_numbers_only(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        long long v;
    } good[] = {{"0", 0}, {"42", 42}, {"-7", -7}, {"+3", 3}, {"\"12\"", 12},
                {"9223372036854775807", 9223372036854775807LL}};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
        char yaml[64];
        snprintf(yaml, sizeof(yaml), "v: %s\n", good[i].text);
        struct rb_doc *doc;
        struct rb_errors e;
        long long x = -1;
        const struct rb_node *v = value_of(yaml, &doc, &e);
        assert_int_equal(rb_node_int(v, "v", &e, &x), RB_OK);
        assert_true(x == good[i].v);
        rb_doc_free(doc);
        rb_errors_free(&e);
    }
    static const char *const bad[] = {"four", "1.5", "12abc", "", "0x10", " ", "1e3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char yaml[64];
        snprintf(yaml, sizeof(yaml), "v: \"%s\"\n", bad[i]);
        struct rb_doc *doc;
        struct rb_errors e;
        long long x = 99;
        const struct rb_node *v = value_of(yaml, &doc, &e);
        assert_int_equal(rb_node_int(v, "pool_size", &e, &x), RB_EINVAL);
        assert_true(x == 99);
        char expected[128];
        snprintf(expected, sizeof(expected),
                 "t.yaml:1:4: key \"pool_size\": expected a whole number, got \"%s\"", bad[i]);
        assert_msg(&e, 0, expected);
        rb_doc_free(doc);
        rb_errors_free(&e);
    }
    struct rb_doc *doc;
    struct rb_errors e;
    long long x;
    const struct rb_node *v = value_of("v: 99999999999999999999\n", &doc, &e);
    assert_int_equal(rb_node_int(v, "n", &e, &x), RB_EINVAL);
    assert_msg(&e, 0, "t.yaml:1:4: key \"n\": 99999999999999999999 is too large for a whole number");
    rb_doc_free(doc);
    rb_errors_free(&e);
}

static void bool_accepts_true_false_yes_no_on_off(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int v;
    } good[] = {{"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0}, {"on", 1},
                {"off", 0},  {"True", 1},  {"NO", 0},  {"\"yes\"", 1}};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
        char yaml[64];
        snprintf(yaml, sizeof(yaml), "v: %s\n", good[i].text);
        struct rb_doc *doc;
        struct rb_errors e;
        int x = -1;
        const struct rb_node *v = value_of(yaml, &doc, &e);
        assert_int_equal(rb_node_bool(v, "v", &e, &x), RB_OK);
        assert_int_equal(x, good[i].v);
        rb_doc_free(doc);
        rb_errors_free(&e);
    }
    struct rb_doc *doc;
    struct rb_errors e;
    int x;
    const struct rb_node *v = value_of("v: 1\n", &doc, &e);
    assert_int_equal(rb_node_bool(v, "feedback", &e, &x), RB_EINVAL);
    assert_msg(&e, 0, "t.yaml:1:4: key \"feedback\": expected true or false (or yes/no, on/off), "
                      "got \"1\"");
    rb_doc_free(doc);
    rb_errors_free(&e);
}

static void double_accepts_decimal_numbers(void **state)
{
    (void)state;
    struct rb_doc *doc;
    struct rb_errors e;
    double x = 0;
    const struct rb_node *v = value_of("v: -2.5\n", &doc, &e);
    assert_int_equal(rb_node_double(v, "v", &e, &x), RB_OK);
    assert_true(x == -2.5);
    rb_doc_free(doc);
    v = value_of("v: nan\n", &doc, &e);
    assert_int_equal(rb_node_double(v, "ratio", &e, &x), RB_EINVAL);
    assert_msg(&e, 0, "t.yaml:1:4: key \"ratio\": expected a number, got \"nan\"");
    rb_doc_free(doc);
    rb_errors_free(&e);
}

static void duration_units_and_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        double seconds;
    } good[] = {{"250ms", 0.25}, {"90s", 90},   {"5m", 300},      {"2h", 7200}, {"3d", 259200},
                {"10", 10},      {"1.5h", 5400}, {"\"30s\"", 30}, {"0", 0},     {"5 m", 300}};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
        char yaml[64];
        snprintf(yaml, sizeof(yaml), "v: %s\n", good[i].text);
        struct rb_doc *doc;
        struct rb_errors e;
        double x = -1;
        const struct rb_node *v = value_of(yaml, &doc, &e);
        if (rb_node_duration(v, "v", &e, &x) != RB_OK)
            fail_msg("\"%s\" refused: %s", good[i].text, e.msgs[0]);
        if (x != good[i].seconds)
            fail_msg("\"%s\" gave %g s, expected %g", good[i].text, x, good[i].seconds);
        rb_doc_free(doc);
        rb_errors_free(&e);
    }
    struct rb_doc *doc;
    struct rb_errors e;
    double x = 7;
    const struct rb_node *v = value_of("v: -5s\n", &doc, &e);
    assert_int_equal(rb_node_duration(v, "shutdown_grace", &e, &x), RB_EINVAL);
    assert_msg(&e, 0, "t.yaml:1:4: key \"shutdown_grace\": a duration cannot be negative, got "
                      "\"-5s\"");
    assert_true(x == 7);
    rb_doc_free(doc);
    rb_errors_free(&e);
    static const char *const bad[] = {"soon", "5w", "s", "1.s", "5 mins", "1e3s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char yaml[64], expected[160];
        snprintf(yaml, sizeof(yaml), "v: %s\n", bad[i]);
        v = value_of(yaml, &doc, &e);
        assert_int_equal(rb_node_duration(v, "timeout", &e, &x), RB_EINVAL);
        snprintf(expected, sizeof(expected),
                 "t.yaml:1:4: key \"timeout\": expected a duration such as 250ms, 90s, 5m, 2h or "
                 "3d, got \"%s\"",
                 bad[i]);
        assert_msg(&e, 0, expected);
        rb_doc_free(doc);
        rb_errors_free(&e);
    }
}

static void size_units_and_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t bytes;
    } good[] = {{"512", 512},           {"64KiB", 65536},         {"2MiB", 2097152},
                {"1GiB", 1073741824},   {"1KB", 1000},            {"2MB", 2000000},
                {"1gb", 1000000000},    {"10B", 10},              {"1.5KiB", 1536},
                {"0", 0},               {"\"1MiB\"", 1048576}};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
        char yaml[64];
        snprintf(yaml, sizeof(yaml), "v: %s\n", good[i].text);
        struct rb_doc *doc;
        struct rb_errors e;
        size_t x = 1;
        const struct rb_node *v = value_of(yaml, &doc, &e);
        if (rb_node_size(v, "v", &e, &x) != RB_OK)
            fail_msg("\"%s\" refused: %s", good[i].text, e.msgs[0]);
        if (x != good[i].bytes)
            fail_msg("\"%s\" gave %zu bytes, expected %zu", good[i].text, x, good[i].bytes);
        rb_doc_free(doc);
        rb_errors_free(&e);
    }
    struct rb_doc *doc;
    struct rb_errors e;
    size_t x = 3;
    const struct rb_node *v = value_of("v: 2MiBs\n", &doc, &e);
    assert_int_equal(rb_node_size(v, "max_body", &e, &x), RB_EINVAL);
    assert_msg(&e, 0, "t.yaml:1:4: key \"max_body\": unknown size unit \"MiBs\" in \"2MiBs\"; use "
                      "B, KiB, MiB, GiB, TiB (1024-based) or KB, MB, GB, TB (1000-based)");
    assert_true(x == 3);
    rb_doc_free(doc);
    rb_errors_free(&e);
    v = value_of("v: 5M\n", &doc, &e);
    assert_int_equal(rb_node_size(v, "max_body", &e, &x), RB_EINVAL);
    assert_non_null(strstr(e.msgs[0], "unknown size unit \"M\""));
    rb_doc_free(doc);
    rb_errors_free(&e);
    v = value_of("v: -1KiB\n", &doc, &e);
    assert_int_equal(rb_node_size(v, "max_body", &e, &x), RB_EINVAL);
    assert_msg(&e, 0, "t.yaml:1:4: key \"max_body\": a size cannot be negative, got \"-1KiB\"");
    rb_doc_free(doc);
    rb_errors_free(&e);
    v = value_of("v: 99999999TiB\n", &doc, &e);
    assert_int_equal(rb_node_size(v, "max_body", &e, &x), RB_EINVAL);
    assert_msg(&e, 0, "t.yaml:1:4: key \"max_body\": the size \"99999999TiB\" is too large");
    rb_doc_free(doc);
    rb_errors_free(&e);
    v = value_of("v: big\n", &doc, &e);
    assert_int_equal(rb_node_size(v, "max_body", &e, &x), RB_EINVAL);
    assert_msg(&e, 0, "t.yaml:1:4: key \"max_body\": expected a size such as 512, 64KiB, 2MiB or "
                      "1GiB, got \"big\"");
    rb_doc_free(doc);
    rb_errors_free(&e);
}

static void long_values_are_shortened_in_messages(void **state)
{
    (void)state;
    struct rb_doc *doc;
    struct rb_errors e;
    long long x;
    const struct rb_node *v =
        value_of("v: abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij\n", &doc, &e);
    assert_int_equal(rb_node_int(v, "n", &e, &x), RB_EINVAL);
    assert_msg(&e, 0, "t.yaml:1:4: key \"n\": expected a whole number, got "
                      "\"abcdefghijabcdefghijabcdefghijabcdefg...\"");
    rb_doc_free(doc);
    rb_errors_free(&e);
}

/* ---- the declarative parser --------------------------------------------------------------- */

struct sample {
    char *url;
    long long attempts;
    int enabled;
    double timeout;
    size_t max_body;
    double ratio;
};

static const struct rb_conf_field sample_fields[] = {
    {"url", RB_CONF_STRING, offsetof(struct sample, url), RB_CONF_REQUIRED, 0, 0},
    {"attempts", RB_CONF_INT, offsetof(struct sample, attempts), 0, 1, 100},
    {"enabled", RB_CONF_BOOL, offsetof(struct sample, enabled), 0, 0, 0},
    {"timeout", RB_CONF_DURATION, offsetof(struct sample, timeout), 0, 0, 0},
    {"max_body", RB_CONF_SIZE, offsetof(struct sample, max_body), 0, 1024, 1048576},
    {"ratio", RB_CONF_DOUBLE, offsetof(struct sample, ratio), 0, 0, 0},
};
#define NFIELDS (sizeof(sample_fields) / sizeof(*sample_fields))

static int conf_parse_text(const char *text, struct sample *out, struct rb_errors *e,
                           const char *const *extra)
{
    struct rb_doc *doc = parse(text, e);
    assert_non_null(doc);
    int rc = rb_conf_parse(doc->root, "plugin webhook", sample_fields, NFIELDS, extra, out, e);
    rb_doc_free(doc); /* out holds copies, never nodes */
    return rc;
}

static void conf_parse_fills_every_type(void **state)
{
    (void)state;
    struct sample s = {.attempts = 12, .timeout = 10};
    struct rb_errors e;
    assert_int_equal(conf_parse_text("url: http://127.0.0.1:9911/x\nenabled: off\ntimeout: 2m\n"
                                     "max_body: 64KiB\nratio: 0.5\n",
                                     &s, &e, NULL),
                     RB_OK);
    assert_int_equal(e.n, 0);
    assert_string_equal(s.url, "http://127.0.0.1:9911/x");
    assert_true(s.attempts == 12); /* absent: the default stays */
    assert_int_equal(s.enabled, 0);
    assert_true(s.timeout == 120);
    assert_int_equal(s.max_body, 65536);
    assert_true(s.ratio == 0.5);
    rb_conf_free(sample_fields, NFIELDS, &s);
    assert_null(s.url);
    rb_errors_free(&e);
}

static void conf_parse_replaces_a_default_string_without_leaking(void **state)
{
    (void)state;
    struct sample s = {.url = strdup("http://default")};
    struct rb_errors e;
    assert_int_equal(conf_parse_text("url: http://other\n", &s, &e, NULL), RB_OK);
    assert_string_equal(s.url, "http://other");
    rb_conf_free(sample_fields, NFIELDS, &s);
    rb_errors_free(&e);
}

static void conf_parse_unknown_key_lists_allowed_keys(void **state)
{
    (void)state;
    struct sample s = {0};
    struct rb_errors e;
    assert_int_equal(conf_parse_text("url: x\nretries: 3\n", &s, &e, NULL), RB_EINVAL);
    assert_int_equal(e.n, 1);
    assert_msg(&e, 0, "t.yaml:2:1: unknown key \"retries\" in plugin webhook; allowed keys: url, "
                      "attempts, enabled, timeout, max_body, ratio");
    rb_conf_free(sample_fields, NFIELDS, &s);
    rb_errors_free(&e);
}

static void conf_parse_extra_keys_are_allowed_and_listed(void **state)
{
    (void)state;
    static const char *const extra[] = {"routes", NULL};
    struct sample s = {0};
    struct rb_errors e;
    assert_int_equal(conf_parse_text("url: x\nroutes: [a]\n", &s, &e, extra), RB_OK);
    rb_conf_free(sample_fields, NFIELDS, &s);
    rb_errors_free(&e);
    assert_int_equal(conf_parse_text("url: x\nroute: [a]\n", &s, &e, extra), RB_EINVAL);
    assert_non_null(strstr(e.msgs[0], "allowed keys: url, attempts, enabled, timeout, max_body, "
                                      "ratio, routes"));
    rb_conf_free(sample_fields, NFIELDS, &s);
    rb_errors_free(&e);
}

static void conf_parse_wrong_type_names_key(void **state)
{
    (void)state;
    struct sample s = {0};
    struct rb_errors e;
    assert_int_equal(conf_parse_text("url: x\nattempts: four\n", &s, &e, NULL), RB_EINVAL);
    assert_int_equal(e.n, 1);
    assert_msg(&e, 0, "t.yaml:2:11: key \"attempts\": expected a whole number, got \"four\"");
    rb_conf_free(sample_fields, NFIELDS, &s);
    rb_errors_free(&e);
    assert_int_equal(conf_parse_text("url: {a: 1}\n", &s, &e, NULL), RB_EINVAL);
    assert_msg(&e, 0, "t.yaml:1:6: key \"url\": expected a text value, got a map");
    rb_errors_free(&e);
}

static void conf_parse_missing_required_key(void **state)
{
    (void)state;
    struct sample s = {0};
    struct rb_errors e;
    assert_int_equal(conf_parse_text("attempts: 3\n", &s, &e, NULL), RB_EINVAL);
    assert_int_equal(e.n, 1);
    assert_msg(&e, 0, "t.yaml:1:1: missing required key \"url\" in plugin webhook");
    rb_errors_free(&e);
    /* A null value ("url:") counts as missing. */
    assert_int_equal(conf_parse_text("url:\n", &s, &e, NULL), RB_EINVAL);
    assert_msg(&e, 0, "t.yaml:1:1: missing required key \"url\" in plugin webhook");
    rb_errors_free(&e);
    /* An absent block (NULL) is an empty map. */
    rb_errors_init(&e);
    assert_int_equal(rb_conf_parse(NULL, "plugin webhook", sample_fields, NFIELDS, NULL, &s, &e),
                     RB_EINVAL);
    assert_msg(&e, 0, "missing required key \"url\" in plugin webhook");
    rb_errors_free(&e);
}

static void conf_parse_enforces_min_and_max(void **state)
{
    (void)state;
    struct sample s = {0};
    struct rb_errors e;
    assert_int_equal(conf_parse_text("url: x\nattempts: 0\nmax_body: 2MiB\n", &s, &e, NULL),
                     RB_EINVAL);
    assert_int_equal(e.n, 2);
    assert_msg(&e, 0, "t.yaml:2:11: key \"attempts\": 0 is out of range; use a whole number from "
                      "1 to 100");
    assert_msg(&e, 1, "t.yaml:3:11: key \"max_body\": 2097152 bytes is out of range; use a size "
                      "from 1024 to 1048576 bytes");
    rb_conf_free(sample_fields, NFIELDS, &s);
    rb_errors_free(&e);
    assert_int_equal(conf_parse_text("url: x\nattempts: 100\nmax_body: 1KiB\n", &s, &e, NULL),
                     RB_OK);
    assert_true(s.attempts == 100);
    rb_conf_free(sample_fields, NFIELDS, &s);
    rb_errors_free(&e);
}

static void conf_parse_reports_every_error_at_once(void **state)
{
    (void)state;
    struct sample s = {0};
    struct rb_errors e;
    assert_int_equal(conf_parse_text("nope: 1\nattempts: x\nenabled: maybe\ntimeout: -1s\n", &s,
                                     &e, NULL),
                     RB_EINVAL);
    assert_int_equal(e.n, 5); /* unknown key, missing url, attempts, enabled, timeout */
    rb_conf_free(sample_fields, NFIELDS, &s);
    rb_errors_free(&e);
}

static void conf_parse_refuses_a_non_map(void **state)
{
    (void)state;
    struct sample s = {0};
    struct rb_errors e;
    assert_int_equal(conf_parse_text("[1, 2]\n", &s, &e, NULL), RB_EINVAL);
    assert_int_equal(e.n, 1);
    assert_msg(&e, 0, "t.yaml:1:1: plugin webhook: expected a map of keys, got a list");
    rb_errors_free(&e);
}

static void conf_parse_with_no_fields_refuses_any_key(void **state)
{
    (void)state;
    struct rb_errors e;
    struct rb_doc *doc = parse("x: 1\n", &e);
    assert_int_equal(rb_conf_parse(doc->root, "plugin app", NULL, 0, NULL, NULL, &e), RB_EINVAL);
    assert_msg(&e, 0, "t.yaml:1:1: unknown key \"x\" in plugin app, which takes no keys");
    rb_doc_free(doc);
    rb_errors_free(&e);
}

static void errors_at_a_node_without_line_names_the_file(void **state)
{
    (void)state;
    static const struct rb_node empty = {.type = RB_NODE_MAP, .file = "rabta.yaml"};
    struct rb_errors e;
    rb_errors_init(&e);
    rb_errors_at(&e, &empty, "x %d", 1);
    rb_errors_at(&e, NULL, "y");
    rb_errors_add(&e, "z %s", "w");
    assert_int_equal(e.n, 3);
    assert_msg(&e, 0, "rabta.yaml: x 1");
    assert_msg(&e, 1, "y");
    assert_msg(&e, 2, "z w");
    rb_errors_free(&e);
    assert_int_equal(e.n, 0);
    assert_null(e.msgs);
}

/* ---- version 2 of the field table: enum values and check hooks ---------------------------- */

struct sample2 {
    char *url;
    int lang; /* index in langs */
    double window;
    char *secret;
};

static const char *const langs[] = {"en", "ur", NULL};
static int checks_called;

static const char *window_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block;
    checks_called++;
    double x = *(const double *)v;
    if (x >= 1 && x <= 3600)
        return NULL;
    snprintf(why, n, "must be from 1s to 1h, not %gs", x);
    return why;
}

/* Sees the url parsed before it. */
static const char *secret_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)why, (void)n;
    checks_called++;
    const struct sample2 *s = block;
    assert_non_null(s->url);
    return strlen(*(char *const *)v) < 8 ? "shorter than 8 bytes" : NULL;
}

static const struct rb_conf_field_v2 sample2_fields[] = {
    {"url", RB_CONF_STRING, offsetof(struct sample2, url), RB_CONF_REQUIRED, 0, 0, NULL, NULL},
    {"lang", RB_CONF_ENUM, offsetof(struct sample2, lang), 0, 0, 0, langs, NULL},
    {"window", RB_CONF_DURATION, offsetof(struct sample2, window), 0, 0, 0, NULL, window_ok},
    {"secret", RB_CONF_STRING, offsetof(struct sample2, secret), 0, 0, 0, NULL, secret_ok},
};
#define NFIELDS2 (sizeof(sample2_fields) / sizeof(*sample2_fields))

static int conf_parse2_text(const char *text, struct sample2 *out, struct rb_errors *e)
{
    struct rb_doc *doc = parse(text, e);
    assert_non_null(doc);
    int rc = rb_conf_parse_v2(doc->root, "plugin staff_inbox", sample2_fields, NFIELDS2,
                              sizeof(*sample2_fields), NULL, out, e);
    rb_doc_free(doc);
    return rc;
}

static void conf_parse_v2_enum_stores_the_index_of_an_allowed_value(void **state)
{
    (void)state;
    struct sample2 s = {0};
    struct rb_errors e;
    assert_int_equal(conf_parse2_text("url: x\nlang: ur\n", &s, &e), RB_OK);
    assert_int_equal(s.lang, 1);
    assert_int_equal(e.n, 0);
    rb_conf_free_v2(sample2_fields, NFIELDS2, sizeof(*sample2_fields), &s);
    assert_null(s.url);
    assert_int_equal(s.lang, 1); /* not a string: left alone */
    rb_errors_free(&e);
}

static void conf_parse_v2_enum_refusal_names_the_allowed_values_at_the_node(void **state)
{
    (void)state;
    struct sample2 s = {.lang = 0};
    struct rb_errors e;
    assert_int_equal(conf_parse2_text("url: x\nlang: fr\n", &s, &e), RB_EINVAL);
    assert_int_equal(e.n, 1);
    assert_msg(&e, 0, "t.yaml:2:7: key \"lang\": expected one of en, ur, got \"fr\"");
    assert_int_equal(s.lang, 0); /* the default stays */
    rb_errors_free(&e);
    rb_conf_free_v2(sample2_fields, NFIELDS2, sizeof(*sample2_fields), &s);
    /* Exact text only, and never a list. */
    assert_int_equal(conf_parse2_text("url: x\nlang: EN\n", &s, &e), RB_EINVAL);
    assert_msg(&e, 0, "t.yaml:2:7: key \"lang\": expected one of en, ur, got \"EN\"");
    rb_errors_free(&e);
    rb_conf_free_v2(sample2_fields, NFIELDS2, sizeof(*sample2_fields), &s);
    assert_int_equal(conf_parse2_text("url: x\nlang: [en]\n", &s, &e), RB_EINVAL);
    assert_msg(&e, 0, "t.yaml:2:7: key \"lang\": expected one of en, ur, got a list");
    rb_errors_free(&e);
    rb_conf_free_v2(sample2_fields, NFIELDS2, sizeof(*sample2_fields), &s);
}

static void conf_parse_v2_check_hook_sentence_is_placed_at_the_value(void **state)
{
    (void)state;
    struct sample2 s = {0};
    struct rb_errors e;
    checks_called = 0;
    assert_int_equal(conf_parse2_text("url: http://x/\nwindow: 2h\nsecret: short\n", &s, &e),
                     RB_EINVAL);
    assert_int_equal(checks_called, 2);
    assert_int_equal(e.n, 2);
    assert_msg(&e, 0, "t.yaml:2:9: key \"window\": must be from 1s to 1h, not 7200s");
    assert_msg(&e, 1, "t.yaml:3:9: key \"secret\": shorter than 8 bytes");
    rb_errors_free(&e);
    rb_conf_free_v2(sample2_fields, NFIELDS2, sizeof(*sample2_fields), &s);
    /* Good values pass; an absent key is not checked. */
    checks_called = 0;
    assert_int_equal(conf_parse2_text("url: x\nwindow: 5m\n", &s, &e), RB_OK);
    assert_int_equal(checks_called, 1);
    assert_true(s.window == 300);
    rb_errors_free(&e);
    rb_conf_free_v2(sample2_fields, NFIELDS2, sizeof(*sample2_fields), &s);
    /* A value of the wrong type is reported once, without calling the check. */
    checks_called = 0;
    assert_int_equal(conf_parse2_text("url: x\nwindow: soon\n", &s, &e), RB_EINVAL);
    assert_int_equal(checks_called, 0);
    assert_int_equal(e.n, 1);
    rb_errors_free(&e);
    rb_conf_free_v2(sample2_fields, NFIELDS2, sizeof(*sample2_fields), &s);
}

/* A plugin built with a longer element (members added after this core) is read by prefix;
 * a v1 table through the v2 entry reads as one without values or checks. */
struct field_v3 {
    struct rb_conf_field_v2 v2;
    const char *future;
};

static void conf_parse_v2_reads_elements_of_the_size_the_plugin_was_built_with(void **state)
{
    (void)state;
    static const struct field_v3 v3[] = {
        {{"lang", RB_CONF_ENUM, offsetof(struct sample2, lang), 0, 0, 0, langs, NULL}, "x"},
        {{"window", RB_CONF_DURATION, offsetof(struct sample2, window), 0, 0, 0, NULL,
          window_ok},
         "y"},
    };
    struct sample2 s = {0};
    struct rb_errors e;
    struct rb_doc *doc = parse("lang: ur\nwindow: 0s\n", &e);
    assert_int_equal(rb_conf_parse_v2(doc->root, "p", &v3[0].v2, 2, sizeof(v3[0]), NULL, &s, &e),
                     RB_EINVAL);
    assert_int_equal(s.lang, 1);
    assert_int_equal(e.n, 1);
    assert_msg(&e, 0, "t.yaml:2:9: key \"window\": must be from 1s to 1h, not 0s");
    rb_errors_free(&e);
    /* v1 elements: no values, so an ENUM is refused with a sentence (never a crash). */
    static const struct rb_conf_field v1[] = {
        {"lang", RB_CONF_ENUM, offsetof(struct sample2, lang), 0, 0, 0},
    };
    rb_errors_init(&e);
    assert_int_equal(rb_conf_parse_v2(doc->root, "p", (const void *)v1, 1, sizeof(v1[0]),
                                      (const char *const[]){"window", NULL}, &s, &e),
                     RB_EINVAL);
    assert_msg(&e, 0, "t.yaml:1:7: key \"lang\": the plugin lists no allowed values for it");
    rb_errors_free(&e);
    /* An element smaller than struct rb_conf_field cannot be a field table. */
    rb_errors_init(&e);
    assert_int_equal(rb_conf_parse_v2(doc->root, "plugin p", &v3[0].v2, 2, 8, NULL, &s, &e),
                     RB_EINVAL);
    assert_int_equal(e.n, 1);
    assert_non_null(strstr(e.msgs[0], "plugin p: the plugin's field table has elements of 8"));
    rb_errors_free(&e);
    rb_doc_free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tree_keeps_line_and_column_of_every_node),
        cmocka_unit_test(tree_counts_columns_in_characters_not_bytes),
        cmocka_unit_test(tree_grows_past_many_items),
        cmocka_unit_test(empty_input_is_an_empty_document),
        cmocka_unit_test(syntax_error_names_position_and_problem),
        cmocka_unit_test(second_document_is_refused),
        cmocka_unit_test(anchors_and_aliases_are_refused),
        cmocka_unit_test(billion_laughs_is_refused_without_expansion),
        cmocka_unit_test(nesting_deeper_than_64_is_refused),
        cmocka_unit_test(duplicate_key_names_the_first),
        cmocka_unit_test(every_duplicate_is_reported_in_file_order),
        cmocka_unit_test(map_and_list_keys_are_refused),
        cmocka_unit_test(invalid_utf8_is_refused_with_its_position),
        cmocka_unit_test(application_tags_are_refused_and_str_tag_quotes),
        cmocka_unit_test(oversize_input_is_refused),
        cmocka_unit_test(load_reads_a_file_and_names_it),
        cmocka_unit_test(load_of_missing_file_gives_strerror),
        cmocka_unit_test(load_of_directory_is_refused),
        cmocka_unit_test(load_of_oversize_file_is_refused_before_reading),
        cmocka_unit_test(load_from_places_file_errors_at_the_naming_key),
        cmocka_unit_test(str_accepts_scalars_only),
        cmocka_unit_test(int_accepts_whole_numbers_only),
        cmocka_unit_test(bool_accepts_true_false_yes_no_on_off),
        cmocka_unit_test(double_accepts_decimal_numbers),
        cmocka_unit_test(duration_units_and_refusals),
        cmocka_unit_test(size_units_and_refusals),
        cmocka_unit_test(long_values_are_shortened_in_messages),
        cmocka_unit_test(conf_parse_fills_every_type),
        cmocka_unit_test(conf_parse_replaces_a_default_string_without_leaking),
        cmocka_unit_test(conf_parse_unknown_key_lists_allowed_keys),
        cmocka_unit_test(conf_parse_extra_keys_are_allowed_and_listed),
        cmocka_unit_test(conf_parse_wrong_type_names_key),
        cmocka_unit_test(conf_parse_missing_required_key),
        cmocka_unit_test(conf_parse_enforces_min_and_max),
        cmocka_unit_test(conf_parse_reports_every_error_at_once),
        cmocka_unit_test(conf_parse_refuses_a_non_map),
        cmocka_unit_test(conf_parse_with_no_fields_refuses_any_key),
        cmocka_unit_test(errors_at_a_node_without_line_names_the_file),
        cmocka_unit_test(conf_parse_v2_enum_stores_the_index_of_an_allowed_value),
        cmocka_unit_test(conf_parse_v2_enum_refusal_names_the_allowed_values_at_the_node),
        cmocka_unit_test(conf_parse_v2_check_hook_sentence_is_placed_at_the_value),
        cmocka_unit_test(conf_parse_v2_reads_elements_of_the_size_the_plugin_was_built_with),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
