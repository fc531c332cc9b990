/* Unit tests of core/intake/intake_store.c: the column table, the statement built from it for
 * every combination of parts, and the arrays of a batch agree (the statement itself runs
 * against PostgreSQL in tests/integration/test_cases.py, test_sms.py and test_plugins.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intake/intake_store.h"

static const char *const names[] = {
#define NAME(name, type, c, to, value, present) #name,
    RB_INTAKE_COLUMNS(NAME)
#undef NAME
};
static const char *const types[] = {
#define TYPE(name, type, c, to, value, present) #type,
    RB_INTAKE_COLUMNS(TYPE)
#undef TYPE
};
static const int to_case[] = {
#define TO_INPUT 0
#define TO_CASE 1
#define TO(name, type, c, to, value, present) TO_##to,
    RB_INTAKE_COLUMNS(TO)
#undef TO
};

/* The text between open (found from the start of sql) and the ")" that closes it. */
static char *inside(const char *sql, const char *open)
{
    const char *p = strstr(sql, open);
    assert_non_null(p);
    p += strlen(open);
    int depth = 1;
    const char *q = p;
    for (; *q && depth; q++)
        depth += *q == '(' ? 1 : *q == ')' ? -1 : 0;
    assert_int_equal(depth, 0);
    return strndup(p, (size_t)(q - 1 - p));
}

/* Splits a ", "-separated list in place; returns the number of items. */
static int split(char *list, char **items, int max)
{
    int n = 0;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        while (*tok == ' ')
            tok++;
        assert_true(n < max);
        items[n++] = tok;
    }
    return n;
}

/* How many times the statement reads input column name as "i.name". */
static int reads(const char *sql, const char *name)
{
    int n = 0;
    size_t len = strlen(name);
    for (const char *p = strstr(sql, "i."); p; p = strstr(p + 1, "i.")) {
        if (p > sql && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
            continue;
        if (strncmp(p + 2, name, len) == 0 && !isalnum((unsigned char)p[2 + len]) &&
            p[2 + len] != '_')
            n++;
    }
    return n;
}

static void check_statement(unsigned parts)
{
    char *sql = rb_intake_store_sql(parts);
    char *items[2 * RB_INTAKE_NCOLUMNS];

    /* unnest's arguments: the arrays $2.. in the table's order, each of its column's type. */
    char *arrays = inside(sql, "unnest(");
    assert_int_equal(split(arrays, items, 2 * RB_INTAKE_NCOLUMNS), RB_INTAKE_NCOLUMNS);
    for (int i = 0; i < RB_INTAKE_NCOLUMNS; i++) {
        char want[64];
        snprintf(want, sizeof(want), "$%d::%s[]", 2 + i, types[i]);
        if (strcmp(items[i], want) != 0)
            fail_msg("parts %#x: array %d is \"%s\", the table says \"%s\"", parts, i, items[i],
                     want);
    }
    free(arrays);

    /* Their names: the table's, in order, each once. */
    char *cols = inside(sql, ") AS t(");
    assert_int_equal(split(cols, items, 2 * RB_INTAKE_NCOLUMNS), RB_INTAKE_NCOLUMNS);
    for (int i = 0; i < RB_INTAKE_NCOLUMNS; i++) {
        assert_string_equal(items[i], names[i]);
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                fail_msg("column %s is in the table twice", names[i]);
    }
    free(cols);

    /* The parameters: $1 .. $RB_INTAKE_NPARAMS, each named, none beyond. */
    int seen[RB_INTAKE_NPARAMS + 2] = {0};
    for (const char *p = strchr(sql, '$'); p; p = strchr(p + 1, '$')) {
        int k = atoi(p + 1);
        if (k < 1 || k > RB_INTAKE_NPARAMS)
            fail_msg("parts %#x: parameter $%d beyond the %d there are", parts, k,
                     RB_INTAKE_NPARAMS);
        seen[k] = 1;
    }
    for (int k = 1; k <= RB_INTAKE_NPARAMS; k++)
        if (!seen[k])
            fail_msg("parts %#x: parameter $%d is never named (it would have no type)", parts, k);

    /* Every CASE column goes into cases: named once in its column list, read as i.name. */
    char *into = inside(sql, "INSERT INTO cases (");
    int n = split(into, items, 2 * RB_INTAKE_NCOLUMNS);
    for (int i = 0; i < RB_INTAKE_NCOLUMNS; i++) {
        int found = 0;
        for (int j = 0; j < n; j++)
            found += strcmp(items[j], names[i]) == 0;
        if (to_case[i] && found != 1)
            fail_msg("parts %#x: CASE column %s is named %d times in cases' columns", parts,
                     names[i], found);
        if (to_case[i] && reads(sql, names[i]) < 1)
            fail_msg("column %s goes to cases but is not read", names[i]);
    }
    free(into);
    free(sql);
}

static void every_combination_of_parts_agrees_with_the_columns(void **state)
{
    (void)state;
    for (unsigned parts = 0; parts < RB_INTAKE_COMBINATIONS; parts++)
        check_statement(parts);
}

static void every_column_is_read_and_every_read_is_a_column(void **state)
{
    (void)state;
    char *sql = rb_intake_store_sql(RB_INTAKE_COMBINATIONS - 1);
    for (int i = 0; i < RB_INTAKE_NCOLUMNS; i++)
        if (reads(sql, names[i]) < 1)
            fail_msg("column %s is sent but no part of the statement reads it", names[i]);
    /* Every "i.x" of the statement is a column (or the notices' delay). */
    for (const char *p = strstr(sql, "i."); p; p = strstr(p + 1, "i.")) {
        if (p > sql && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
            continue;
        size_t len = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz_");
        int known = len == strlen("notice_delay") && strncmp(p + 2, "notice_delay", len) == 0;
        for (int i = 0; i < RB_INTAKE_NCOLUMNS && !known; i++)
            known = strlen(names[i]) == len && strncmp(p + 2, names[i], len) == 0;
        if (!known)
            fail_msg("the statement reads i.%.*s, which is no column", (int)len, p + 2);
    }
    free(sql);
}

/* The elements of a one-dimensional array literal. */
static int elements(const char *a)
{
    assert_int_equal(a[0], '{');
    if (a[1] == '}')
        return 0;
    int n = 1, quoted = 0;
    for (const char *p = a + 1; *p; p++) {
        if (quoted && *p == '\\')
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (!quoted && *p == ',')
            n++;
    }
    return n;
}

static void the_arrays_have_one_element_per_row_in_the_columns_order(void **state)
{
    (void)state;
    struct rb_intake_row bare = {0}, full = {0};
    bare.lat = bare.lon = NAN;
    strcpy(bare.tracking, "RB-AAAAA-AAAAA-A");
    strcpy(full.tracking, "RB-BBBBB-BBBBB-B");
    full.text = "a \"quoted\" \\ text, with a comma";
    full.lat = 31.5;
    full.lon = 74.25;
    full.rating = 4;
    full.anonymous = 1;
    full.citizen_id = 42;
    full.resolve_due = 2000;
    full.ack_due = 1000;
    full.first.check = RB_SLA_WARN;
    full.first.level = 1;
    full.first.due = 1500;
    full.sla_payload = "{}";
    full.hold_channel = "sms";

    struct rb_intake_arrays a;
    const char *params[RB_INTAKE_NPARAMS];
    rb_intake_arrays_init(&a);
    rb_intake_arrays_add(&a, &bare);
    rb_intake_arrays_add(&a, &full);
    rb_intake_arrays_params(&a, 3600.4, params);
    assert_string_equal(params[0], "3600");
    for (int i = 0; i < RB_INTAKE_NCOLUMNS; i++)
        if (elements(params[1 + i]) != 2)
            fail_msg("array %s has %d elements for 2 rows: %s", names[i],
                     elements(params[1 + i]), params[1 + i]);
    assert_string_equal(params[1 + RB_INTAKE_COL_tracking_no],
                        "{\"RB-AAAAA-AAAAA-A\",\"RB-BBBBB-BBBBB-B\"}");
    assert_string_equal(params[1 + RB_INTAKE_COL_text],
                        "{NULL,\"a \\\"quoted\\\" \\\\ text, with a comma\"}");
    assert_string_equal(params[1 + RB_INTAKE_COL_lat], "{NULL,\"31.50000000\"}");
    assert_string_equal(params[1 + RB_INTAKE_COL_long], "{NULL,\"74.25000000\"}");
    assert_string_equal(params[1 + RB_INTAKE_COL_rating], "{NULL,\"4\"}");
    assert_string_equal(params[1 + RB_INTAKE_COL_anonymous], "{\"f\",\"t\"}");
    assert_string_equal(params[1 + RB_INTAKE_COL_citizen_id], "{NULL,\"42\"}");
    assert_string_equal(params[1 + RB_INTAKE_COL_sla_check], "{NULL,\"warn\"}");
    assert_string_equal(params[1 + RB_INTAKE_COL_sla_due], "{NULL,\"1500\"}");
    assert_string_equal(params[1 + RB_INTAKE_COL_ack_due], "{NULL,\"1000\"}");
    assert_string_equal(params[1 + RB_INTAKE_COL_hold_channel], "{NULL,\"sms\"}");
    rb_intake_arrays_free(&a);
}

static void a_row_needs_the_parts_of_what_it_has(void **state)
{
    (void)state;
    struct rb_intake_row r = {0};
    assert_int_equal(rb_intake_row_parts(&r), 0);
    r.phone = "+923001234567";
    r.email = "a@example.org";
    assert_int_equal(rb_intake_row_parts(&r), RB_INTAKE_PART_CIT_PHONE);
    r.phone = NULL;
    assert_int_equal(rb_intake_row_parts(&r), RB_INTAKE_PART_CIT_EMAIL);
    r.citizen_id = 7; /* known: no look-up */
    assert_int_equal(rb_intake_row_parts(&r), 0);
    r.reply_body = "x";
    r.hold_channel = "sms";
    r.origin = "{}"; /* kept by the events part every statement has */
    r.resolve_due = 1;
    assert_int_equal(rb_intake_row_parts(&r),
                     RB_INTAKE_PART_REPLY | RB_INTAKE_PART_HOLD | RB_INTAKE_PART_SLA);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_combination_of_parts_agrees_with_the_columns),
        cmocka_unit_test(every_column_is_read_and_every_read_is_a_column),
        cmocka_unit_test(the_arrays_have_one_element_per_row_in_the_columns_order),
        cmocka_unit_test(a_row_needs_the_parts_of_what_it_has),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
