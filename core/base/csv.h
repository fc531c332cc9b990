/* CSV files as offices send them (RFC 4180: fields separated by commas, quoted with double
 * quotes when they hold a comma, a quote or a line break, quotes doubled inside), read one
 * record at a time with the line it starts on, so that every refusal names its line.
 *
 * Refused records (each reported once, reading goes on with the next record): a quote inside
 * an unquoted field, text after a closing quote, a quoted field never closed, an embedded NUL
 * byte, invalid UTF-8, a record over RB_CSV_RECORD_MAX bytes or RB_CSV_FIELDS_MAX fields.
 * A UTF-8 byte-order mark at the start and CR before LF are dropped. */
#ifndef RB_CSV_H
#define RB_CSV_H

#include <stddef.h>
#include <stdio.h>

#define RB_CSV_RECORD_MAX (64u * 1024u)
#define RB_CSV_FIELDS_MAX 64

struct rb_csv {
    FILE *f;           /* borrowed */
    long line;         /* the line the last record started on (1-based) */
    long next_line;    /* the line the next record starts on */
    char *buf;         /* owned: the record's fields, each NUL-terminated */
    size_t len, cap;
    size_t off[RB_CSV_FIELDS_MAX + 1];
    char *fields[RB_CSV_FIELDS_MAX]; /* into buf; valid until the next call */
    size_t n;
    int started;
};

void rb_csv_init(struct rb_csv *c, FILE *f);
void rb_csv_free(struct rb_csv *c);
/* The next record: RB_OK with c->fields[0..c->n) and c->line; RB_ENOTFOUND at the end;
 * RB_EINVAL with *why (static) for a refused record, its line in c->line. */
int rb_csv_next(struct rb_csv *c, const char **why);

#endif
