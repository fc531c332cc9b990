/* CSV records (csv.h). */
#include "base/csv.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/text.h"

void rb_csv_init(struct rb_csv *c, FILE *f)
{
    memset(c, 0, sizeof(*c));
    c->f = f;
    c->next_line = 1;
}

void rb_csv_free(struct rb_csv *c)
{
    free(c->buf);
    c->buf = NULL;
}

static void put(struct rb_csv *c, char ch)
{
    if (c->len + 1 >= c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->buf = rb_realloc(c->buf, c->cap);
    }
    c->buf[c->len++] = ch;
}

/* Ends the current field. 0, or -1 past RB_CSV_FIELDS_MAX. */
static int end_field(struct rb_csv *c)
{
    put(c, '\0');
    if (c->n >= RB_CSV_FIELDS_MAX)
        return -1;
    c->off[++c->n] = c->len;
    return 0;
}

/* Reads to the end of the line (a refused record's rest). */
static void skip_line(struct rb_csv *c, int ch)
{
    while (ch != EOF && ch != '\n')
        ch = getc_unlocked(c->f);
    if (ch == '\n')
        c->next_line++;
}

enum { IN_FIELD, IN_QUOTES, AFTER_QUOTE };

/* Reads one record's bytes. 0 at its end, 1 at EOF before any byte, -1 with *why. */
static int read_record(struct rb_csv *c, const char **why)
{
    int state = IN_FIELD, ch, any = 0, bad = 0;
    size_t field_start = 0;
    while ((ch = getc_unlocked(c->f)) != EOF) {
        any = 1;
        if (ch == '\0' && !bad) {
            *why = "an embedded NUL byte";
            bad = 1;
        }
        if (c->len > RB_CSV_RECORD_MAX && !bad) {
            *why = "the record is over 64 KiB";
            bad = 1;
        }
        if (state == IN_QUOTES) {
            if (ch == '"')
                state = AFTER_QUOTE;
            else {
                if (ch == '\n')
                    c->next_line++;
                put(c, (char)ch);
            }
            continue;
        }
        if (state == AFTER_QUOTE && ch == '"') { /* a doubled quote */
            put(c, '"');
            state = IN_QUOTES;
            continue;
        }
        if (ch == ',' || ch == '\n') {
            if (end_field(c) != 0 && !bad) {
                *why = "more than 64 fields";
                bad = 1;
            }
            field_start = c->len;
            state = IN_FIELD;
            if (ch == '\n') {
                c->next_line++;
                return bad ? -1 : 0;
            }
            continue;
        }
        if (ch == '\r') {
            int nx = getc_unlocked(c->f);
            if (nx == '\n' || nx == EOF) {
                ungetc(nx, c->f);
                continue;
            }
            ungetc(nx, c->f);
        }
        if (state == AFTER_QUOTE && !bad) {
            *why = "text after a closing quote (quote the whole field, doubling quotes in it)";
            skip_line(c, ch);
            return -1;
        }
        if (ch == '"' && !bad) {
            if (c->len != field_start) {
                *why = "a quote inside an unquoted field (quote the whole field, doubling "
                       "quotes in it)";
                skip_line(c, ch);
                return -1;
            }
            state = IN_QUOTES;
            continue;
        }
        put(c, (char)ch);
    }
    if (!any)
        return 1;
    if (state == IN_QUOTES) {
        *why = "a quoted field is never closed (it runs to the end of the file)";
        return -1;
    }
    end_field(c);
    return bad ? -1 : 0;
}

int rb_csv_next(struct rb_csv *c, const char **why)
{
    for (;;) {
        c->len = 0;
        c->n = 0;
        c->off[0] = 0;
        c->line = c->next_line;
        if (!c->started) {
            c->started = 1;
            int a = getc_unlocked(c->f), b = a == 0xEF ? getc_unlocked(c->f) : EOF,
                d = b == 0xBB ? getc_unlocked(c->f) : EOF;
            if (!(a == 0xEF && b == 0xBB && d == 0xBF)) {
                /* no byte-order mark: put back what was read (at most one byte is needed
                 * here: a file starting with 0xEF but no BOM is not UTF-8 text anyway) */
                if (d != EOF || b != EOF)
                    return (*why = "invalid UTF-8", skip_line(c, 0), RB_EINVAL);
                if (a != EOF)
                    ungetc(a, c->f);
            }
        }
        int rc = read_record(c, why);
        if (rc == 1)
            return RB_ENOTFOUND;
        if (rc < 0)
            return RB_EINVAL;
        if (c->n == 1 && c->buf[0] == '\0')
            continue; /* a blank line */
        for (size_t i = 0; i < c->n; i++) {
            c->fields[i] = c->buf + c->off[i];
            size_t l = c->off[i + 1] - c->off[i] - 1;
            if (rb_text_valid_utf8(c->fields[i], l, NULL) != RB_OK) {
                *why = "invalid UTF-8";
                return RB_EINVAL;
            }
        }
        return RB_OK;
    }
}
