/* Unit tests of core/base/csv.c: records with quotes, doubled quotes and line breaks, the line
 * each record starts on, and every refusal (each once, reading going on with the next
 * record). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/common.h"
#include "base/csv.h"

/* Reads all of text; out gets one line per record: "LINE:f1|f2|..." or "LINE!why". */
static void read_all(const char *text, size_t len, char *out, size_t outlen)
{
    FILE *f = fmemopen((void *)text, len, "rb");
    assert_non_null(f);
    struct rb_csv c;
    rb_csv_init(&c, f);
    out[0] = '\0';
    const char *why;
    int rc;
    while ((rc = rb_csv_next(&c, &why)) != RB_ENOTFOUND) {
        size_t o = strlen(out);
        if (rc == RB_OK) {
            o += (size_t)snprintf(out + o, outlen - o, "%ld:", c.line);
            for (size_t i = 0; i < c.n; i++)
                o += (size_t)snprintf(out + o, outlen - o, "%s%s", i ? "|" : "", c.fields[i]);
            snprintf(out + o, outlen - o, "\n");
        } else {
            snprintf(out + o, outlen - o, "%ld!%s\n", c.line, why);
        }
    }
    rb_csv_free(&c);
    fclose(f);
}

static void quoted_fields_and_lines(void **state)
{
    (void)state;
    static const char in[] = "\xEF\xBB\xBF" "a,b,c\r\n"
                             "\"x, y\",\"say \"\"hi\"\"\",z\n"
                             "\n"
                             "\"two\nlines\",,end\n"
                             "last,row,no newline";
    char out[512];
    read_all(in, sizeof(in) - 1, out, sizeof(out));
    assert_string_equal(out, "1:a|b|c\n"
                             "2:x, y|say \"hi\"|z\n"
                             "4:two\nlines||end\n"
                             "6:last|row|no newline\n");
}

static void refusals_name_their_line_and_reading_goes_on(void **state)
{
    (void)state;
    static const char in[] = "ok,1\n"
                             "bad\"quote,2\n"
                             "\"closed\"then,3\n"
                             "nul\0byte,4\n"
                             "bad\xff utf8,5\n"
                             "fine,6\n"
                             "\"never closed,7\nstill,8\n";
    char out[1024];
    read_all(in, sizeof(in) - 1, out, sizeof(out));
    assert_string_equal(out,
                        "1:ok|1\n"
                        "2!a quote inside an unquoted field (quote the whole field, doubling "
                        "quotes in it)\n"
                        "3!text after a closing quote (quote the whole field, doubling quotes "
                        "in it)\n"
                        "4!an embedded NUL byte\n"
                        "5!invalid UTF-8\n"
                        "6:fine|6\n"
                        "7!a quoted field is never closed (it runs to the end of the file)\n");
}

static void oversized_records_and_too_many_fields(void **state)
{
    (void)state;
    static char in[RB_CSV_RECORD_MAX + 4096];
    size_t n = 0;
    memset(in, 'x', RB_CSV_RECORD_MAX + 100);
    n = RB_CSV_RECORD_MAX + 100;
    in[n++] = '\n';
    for (int i = 0; i < RB_CSV_FIELDS_MAX + 2; i++)
        in[n++] = ',';
    in[n++] = '\n';
    memcpy(in + n, "after,it\n", 9);
    n += 9;
    char out[512];
    read_all(in, n, out, sizeof(out));
    assert_string_equal(out, "1!the record is over 64 KiB\n"
                             "2!more than 64 fields\n"
                             "3:after|it\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quoted_fields_and_lines),
        cmocka_unit_test(refusals_name_their_line_and_reading_goes_on),
        cmocka_unit_test(oversized_records_and_too_many_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
