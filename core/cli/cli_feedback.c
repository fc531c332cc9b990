/* `rabtad offices|officials|transactions ...` (cli_feedback.h). Blocking libpq, as in cli.c:
 * there is no event loop here. */
#include "cli/cli_feedback.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/csv.h"
#include "base/log.h"
#include "base/phone.h"
#include "base/text.h"
#include "cli/cli.h"
#include "cli/cli_apikey.h"
#include "config/config.h"
#include "db/db.h"
#include "outreach/outreach_policy.h"
#include "server/server.h"

#define MAX_REPORTED 1000 /* refused rows printed; the rest are counted */

/* A column the file must (or may) have, found by its header. */
struct col {
    const char *name;
    int required;
    int idx; /* -1: absent */
};

/* One import: the file, its header's columns and the counts. */
struct import {
    const char *path;
    FILE *f;
    struct rb_csv csv;
    struct col *cols;
    size_t ncols, header_n;
    long added, duplicates, refused, invalid_phones;
};

static void refuse(struct import *im, long line, const char *fmt, const char *a,
                   const char *b)
{
    if (im->refused++ < MAX_REPORTED) {
        fprintf(stderr, "%s:%ld: ", im->path, line);
        fprintf(stderr, fmt, a ? a : "", b ? b : "");
        fputc('\n', stderr);
    }
}

static const char *cell(const struct import *im, int k)
{
    int i = im->cols[k].idx;
    return i >= 0 && (size_t)i < im->csv.n ? im->csv.fields[i] : "";
}

/* Opens the file and reads its header. 0, or 2 after saying why. */
static int open_import(struct import *im, const char *path, struct col *cols, size_t n)
{
    im->path = path;
    im->cols = cols;
    im->ncols = n;
    im->f = fopen(path, "rb");
    if (!im->f) {
        fprintf(stderr, "rabtad: cannot open %s: %s\n", path, strerror(errno));
        return 2;
    }
    rb_csv_init(&im->csv, im->f);
    const char *why = NULL;
    int rc = rb_csv_next(&im->csv, &why);
    if (rc != RB_OK) {
        fprintf(stderr, "%s:1: %s\n", path, rc == RB_ENOTFOUND ? "the file is empty; the first "
                "line must name the columns" : why);
        return 2;
    }
    im->header_n = im->csv.n;
    for (size_t k = 0; k < n; k++) {
        cols[k].idx = -1;
        for (size_t i = 0; i < im->csv.n; i++)
            if (strcmp(im->csv.fields[i], cols[k].name) == 0)
                cols[k].idx = (int)i;
        if (cols[k].idx < 0 && cols[k].required) {
            fprintf(stderr, "%s:1: the header has no column \"%s\" (it needs:", path,
                    cols[k].name);
            for (size_t j = 0; j < n; j++)
                if (cols[j].required)
                    fprintf(stderr, " %s", cols[j].name);
            fprintf(stderr, ")\n");
            return 2;
        }
    }
    return 0;
}

static void close_import(struct import *im)
{
    rb_csv_free(&im->csv);
    if (im->f)
        fclose(im->f);
}

/* The next row with the header's number of fields: RB_OK, RB_ENOTFOUND at the end. Refused
 * rows are reported and skipped. */
static int next_row(struct import *im)
{
    for (;;) {
        const char *why = NULL;
        int rc = rb_csv_next(&im->csv, &why);
        if (rc == RB_ENOTFOUND)
            return rc;
        if (rc != RB_OK) {
            refuse(im, im->csv.line, "%s%s", why, NULL);
            continue;
        }
        if (im->csv.n != im->header_n) {
            char a[24], b[24];
            snprintf(a, sizeof(a), "%zu", im->csv.n);
            snprintf(b, sizeof(b), "%zu", im->header_n);
            refuse(im, im->csv.line, "%s fields where the header has %s", a, b);
            continue;
        }
        return RB_OK;
    }
}

/* Checks column k's text (rb_outreach_check_text). NULL when fine, else the refusal. */
static const char *check_cell(const struct import *im, int k, size_t max)
{
    return rb_outreach_check_text(cell(im, k), max, im->cols[k].required);
}

/* Checks the columns of a row against their limits (max[k]; 0: not checked here). 0, or -1
 * after refusing the row. */
static int check_row(struct import *im, const size_t *max)
{
    for (size_t k = 0; k < im->ncols; k++) {
        const char *why = max[k] ? check_cell(im, (int)k, max[k]) : NULL;
        if (why) {
            refuse(im, im->csv.line, "column %s %s", im->cols[k].name, why);
            return -1;
        }
    }
    return 0;
}

static int valid_id(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 64 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n &&
           s[0] != '.' && s[0] != '-' && s[0] != '_';
}

static void summary(const struct import *im, const char *what)
{
    if (im->refused > MAX_REPORTED)
        fprintf(stderr, "%s: ... and %ld more refused rows\n", im->path,
                im->refused - MAX_REPORTED);
    printf("%s: %ld %s added or updated, %ld duplicates, %ld refused", im->path, im->added, what,
           im->duplicates, im->refused);
    if (im->invalid_phones)
        printf(", %ld with an invalid phone (stored, counted, not contacted)",
               im->invalid_phones);
    printf("\n");
}

/* Runs one row's statement; a failure refuses the row with PostgreSQL's reason. */
static void exec_row(struct import *im, PGconn *conn, const char *sql, int n,
                     const char *const *p)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK) {
        im->added++;
    } else {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s", PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
        refuse(im, im->csv.line, "refused by the database: %s%s", msg, NULL);
    }
    PQclear(res);
}

/* ---- offices ------------------------------------------------------------------------------ */

static const char office_sql[] =
    "INSERT INTO offices (id, name_en, name_ur, department_id, district_id, services, "
    "supervisor) VALUES ($1, $2, $3, $4, $5, string_to_array($6, ';'), nullif($7, ''))"
    " ON CONFLICT (id) DO UPDATE SET name_en = excluded.name_en, name_ur = excluded.name_ur,"
    "  department_id = excluded.department_id, district_id = excluded.district_id,"
    "  services = excluded.services, supervisor = excluded.supervisor";

/* The services "a;b" of an office of department dept: NULL when all exist there. */
static const char *check_services(const struct rb_config *cfg, const char *list,
                                  const char *dept, char *bad, size_t badlen)
{
    char *copy = rb_strdup(list), *save = NULL;
    const char *why = NULL;
    for (char *t = strtok_r(copy, ";", &save); t && !why; t = strtok_r(NULL, ";", &save)) {
        const struct rb_service *s = rb_config_service(cfg, t);
        snprintf(bad, badlen, "%.64s", t);
        if (!s)
            why = "no service \"%s\"%s";
        else if (strcmp(s->department, dept) != 0)
            why = "service \"%s\" belongs to another department%s";
    }
    free(copy);
    return why;
}

static int offices_import(struct rb_server *srv, PGconn *conn, const char *path)
{
    struct col cols[] = {{"id", 1, -1},       {"name_en", 1, -1},  {"name_ur", 0, -1},
                         {"department", 1, -1}, {"district", 1, -1}, {"services", 1, -1},
                         {"supervisor", 0, -1}};
    static const size_t max[] = {64, 200, 200, 64, 64, 2000, 64};
    struct import im = {0};
    int rc = open_import(&im, path, cols, RB_ARRAY_LEN(cols));
    while (rc == 0 && next_row(&im) == RB_OK) {
        if (check_row(&im, max) != 0)
            continue;
        const char *id = cell(&im, 0), *dept = cell(&im, 3), *dist = cell(&im, 4);
        char bad[80];
        const char *why;
        if (!valid_id(id))
            refuse(&im, im.csv.line, "id \"%s\": letters, digits, _ . - only%s", id, NULL);
        else if (!rb_config_department(srv->cfg, dept))
            refuse(&im, im.csv.line, "no department \"%s\" in the configuration%s", dept, NULL);
        else if (!rb_config_district(srv->cfg, dist))
            refuse(&im, im.csv.line, "no district \"%s\" in the configuration%s", dist, NULL);
        else if ((why = check_services(srv->cfg, cell(&im, 5), dept, bad, sizeof(bad))))
            refuse(&im, im.csv.line, why, bad, NULL);
        else {
            const char *p[7] = {id, cell(&im, 1), cell(&im, 2), dept, dist, cell(&im, 5),
                                cell(&im, 6)};
            exec_row(&im, conn, office_sql, 7, p);
        }
    }
    if (rc == 0)
        summary(&im, "offices");
    close_import(&im);
    return rc ? rc : im.refused ? 1 : 0;
}

/* ---- officials ---------------------------------------------------------------------------- */

static const char official_sql[] =
    "INSERT INTO officials (id, name, designation, office_id, phone)"
    " VALUES ($1, $2, $3, $4, nullif($5, ''))"
    " ON CONFLICT (id) DO UPDATE SET name = excluded.name, designation = excluded.designation,"
    "  office_id = excluded.office_id, phone = excluded.phone";

static int officials_import(PGconn *conn, const char *path)
{
    struct col cols[] = {{"id", 1, -1}, {"name", 1, -1}, {"designation", 0, -1},
                         {"office", 1, -1}, {"phone", 0, -1}};
    static const size_t max[] = {64, 200, 200, 64, 0};
    struct import im = {0};
    int rc = open_import(&im, path, cols, RB_ARRAY_LEN(cols));
    while (rc == 0 && next_row(&im) == RB_OK) {
        if (check_row(&im, max) != 0)
            continue;
        const char *id = cell(&im, 0), *phone = cell(&im, 4), *why = NULL;
        char e164[RB_PHONE_MAX] = "";
        if (!valid_id(id))
            refuse(&im, im.csv.line, "id \"%s\": letters, digits, _ . - only%s", id, NULL);
        else if (phone[0] && rb_phone_normalize(phone, e164, &why) != RB_OK)
            refuse(&im, im.csv.line, "the phone number %s%s", why, NULL);
        else {
            const char *p[5] = {id, cell(&im, 1), cell(&im, 2), cell(&im, 3), e164};
            exec_row(&im, conn, official_sql, 5, p);
        }
    }
    if (rc == 0)
        summary(&im, "officials");
    close_import(&im);
    return rc ? rc : im.refused ? 1 : 0;
}

/* ---- transactions ------------------------------------------------------------------------- */

/* One COPY text-format field: \N for NULL, backslash escapes. */
static void copy_field(struct rb_sbuf *b, const char *v, int last)
{
    if (!v) {
        rb_sbuf_puts(b, "\\N");
    } else {
        for (const char *p = v; *p; p++) {
            if (*p == '\\' || *p == '\t' || *p == '\n' || *p == '\r') {
                char e[3] = {'\\', *p == '\t' ? 't' : *p == '\n' ? 'n' : *p == '\r' ? 'r' : '\\',
                             0};
                rb_sbuf_puts(b, e);
            } else {
                rb_sbuf_putn(b, p, 1);
            }
        }
    }
    rb_sbuf_puts(b, last ? "\n" : "\t");
}

enum { T_REF, T_OFFICE, T_SERVICE, T_OFFICIAL, T_NAME, T_PHONE, T_COMPLETED, T_LANGUAGE };

/* Checks one transaction row and appends it to the COPY data. 0, or -1 after refusing. */
static int tx_row(struct import *im, struct rb_sbuf *copy)
{
    static const size_t max[] = {64, 64, 64, 64, 200, 40, 40, 2};
    if (check_row(im, max) != 0)
        return -1;
    char when[40], e164[RB_PHONE_MAX] = "";
    const char *lang = cell(im, T_LANGUAGE), *why = NULL, *phone = cell(im, T_PHONE);
    if (rb_outreach_parse_time(cell(im, T_COMPLETED), when) != 0) {
        refuse(im, im->csv.line, "completed_at \"%s\": expected YYYY-MM-DD HH:MM[:SS], "
               "optionally with Z or +HH:MM%s", cell(im, T_COMPLETED), NULL);
        return -1;
    }
    if (lang[0] && strcmp(lang, "ur") != 0 && strcmp(lang, "en") != 0) {
        refuse(im, im->csv.line, "language \"%s\": ur or en%s", lang, NULL);
        return -1;
    }
    int bad_phone = rb_phone_normalize(phone, e164, &why) != RB_OK;
    im->invalid_phones += bad_phone;
    char line[24];
    snprintf(line, sizeof(line), "%ld", im->csv.line);
    const char *official = cell(im, T_OFFICIAL), *name = cell(im, T_NAME);
    copy_field(copy, line, 0);
    copy_field(copy, cell(im, T_REF), 0);
    copy_field(copy, cell(im, T_OFFICE), 0);
    copy_field(copy, cell(im, T_SERVICE), 0);
    copy_field(copy, official[0] ? official : NULL, 0);
    copy_field(copy, name[0] ? name : NULL, 0);
    copy_field(copy, bad_phone ? NULL : e164, 0);
    copy_field(copy, bad_phone ? "t" : "f", 0);
    copy_field(copy, when, 0);
    copy_field(copy, lang[0] ? lang : "ur", 1);
    return 0;
}

/* The chunk in tx_in, in line order (one sort feeding every array), stored. */
static const char tx_add_sql[] =
    "SELECT r.line, r.outcome, r.reason FROM (SELECT array_agg(line) a1, array_agg(ref) a2,"
    "  array_agg(office) a3, array_agg(service) a4, array_agg(official) a5,"
    "  array_agg(name) a6, array_agg(phone) a7, array_agg(bad_phone) a8,"
    "  array_agg(completed) a9, array_agg(language) a10"
    "  FROM (SELECT * FROM tx_in ORDER BY line) s) x,"
    " rabta_transactions_add(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, NULL, $1::text[],"
    "  $2::float8[], $3::float8[]) r WHERE r.outcome <> 'added'";

static int pg_ok(PGconn *conn, PGresult *res, const char *what)
{
    ExecStatusType st = PQresultStatus(res);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN;
    if (!ok)
        fprintf(stderr, "rabtad: %s: %s", what, PQerrorMessage(conn));
    PQclear(res);
    return ok;
}

/* COPY the chunk into tx_in and store it in one transaction. 0 or -1 (said why). */
static int tx_flush(struct import *im, PGconn *conn, struct rb_sbuf *copy, long rows,
                    const char *const *fb)
{
    if (rows == 0)
        return 0;
    if (!pg_ok(conn, PQexec(conn, "BEGIN"), "BEGIN") ||
        !pg_ok(conn, PQexec(conn, "COPY tx_in FROM STDIN"), "COPY"))
        return -1;
    if (PQputCopyData(conn, copy->p, (int)copy->n) != 1 || PQputCopyEnd(conn, NULL) != 1 ||
        !pg_ok(conn, PQgetResult(conn), "COPY")) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    PGresult *res = PQexecParams(conn, tx_add_sql, 3, NULL, fb, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "rabtad: storing transactions: %s", PQerrorMessage(conn));
        PQclear(res);
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    long not_added = PQntuples(res);
    for (int i = 0; i < PQntuples(res); i++) {
        long line = atol(PQgetvalue(res, i, 0));
        if (strcmp(PQgetvalue(res, i, 1), "duplicate") == 0)
            im->duplicates++;
        else
            refuse(im, line, "%s%s", PQgetvalue(res, i, 2), NULL);
    }
    PQclear(res);
    im->added += rows - not_added;
    copy->n = 0;
    return pg_ok(conn, PQexec(conn, "COMMIT"), "COMMIT") ? 0 : -1;
}

static void progress(FILE *f, off_t size, long rows)
{
    if (size <= 0)
        return;
    double share = (double)ftello(f) / (double)size;
    int w = (int)(share * 40);
    fprintf(stderr, "\r[%.*s%*s] %3.0f%%  %ld rows", w, "########################################",
            40 - w, "", share * 100, rows);
}

static int transactions_import(struct rb_server *srv, PGconn *conn, const char *path)
{
    struct col cols[] = {{"reference", 1, -1},    {"office", 1, -1},   {"service", 1, -1},
                         {"official", 0, -1},     {"citizen_name", 0, -1}, {"phone", 0, -1},
                         {"completed_at", 1, -1}, {"language", 0, -1}};
    struct rb_errors errs;
    rb_errors_init(&errs);
    struct rb_outreach *o = rb_outreach_load(srv->cfg->outreach_file, srv->cfg, &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "rabtad: %s\n", errs.msgs[i]);
    rb_errors_free(&errs);
    if (!o)
        return 2;
    char *fb[3];
    rb_outreach_sql_arrays(o, &fb[0], &fb[1], &fb[2]);
    rb_outreach_free(o);
    struct import im = {0};
    int rc = open_import(&im, path, cols, RB_ARRAY_LEN(cols));
    struct stat st;
    off_t size = rc == 0 && fstat(fileno(im.f), &st) == 0 ? st.st_size : 0;
    int tty = isatty(2);
    if (rc == 0 && !pg_ok(conn, PQexec(conn, "CREATE TEMP TABLE tx_in (line int, ref text,"
                                             " office text, service text, official text,"
                                             " name text, phone text, bad_phone boolean,"
                                             " completed timestamptz, language text)"
                                             " ON COMMIT DELETE ROWS"), "a work table"))
        rc = 1;
    struct rb_sbuf copy = {0};
    long rows = 0, total = 0;
    while (rc == 0 && next_row(&im) == RB_OK) {
        if (tx_row(&im, &copy) != 0)
            continue;
        rows++;
        total++;
        if (rows == RB_CLI_TX_CHUNK) {
            if (tx_flush(&im, conn, &copy, rows, (const char *const *)fb) != 0)
                rc = 1;
            rows = 0;
            if (tty)
                progress(im.f, size, total);
        }
    }
    if (rc == 0 && tx_flush(&im, conn, &copy, rows, (const char *const *)fb) != 0)
        rc = 1;
    if (tty && size > 0)
        fprintf(stderr, "\r%60s\r", "");
    if (im.f)
        summary(&im, "transactions");
    free(copy.p);
    for (int i = 0; i < 3; i++)
        free(fb[i]);
    close_import(&im);
    return rc ? rc : im.refused ? 1 : 0;
}

/* ---- the commands ------------------------------------------------------------------------- */

static int with_db(struct rb_server *srv, int which, const char *arg)
{
    PGconn *conn = rb_cli_connect(srv);
    if (!conn) {
        rb_server_cleanup(srv);
        return 1;
    }
    int rc;
    if (which == 0) {
        rc = offices_import(srv, conn, arg);
    } else if (which == 1) {
        rc = officials_import(conn, arg);
    } else if (which == 2) {
        rc = transactions_import(srv, conn, arg);
    } else {
        char name[80];
        snprintf(name, sizeof(name), "office.%s", arg);
        rc = rb_cli_apikey_add(conn, name, arg);
    }
    PQfinish(conn);
    rb_server_cleanup(srv);
    return rc;
}

int rb_cli_offices(struct rb_server *srv, int nargs, char **args)
{
    if (nargs == 2 && strcmp(args[0], "import") == 0)
        return with_db(srv, 0, args[1]);
    if (nargs == 2 && strcmp(args[0], "key") == 0 && valid_id(args[1]))
        return with_db(srv, 3, args[1]);
    fprintf(stderr, "rabtad: usage: rabtad offices -c FILE import FILE.csv | key OFFICE\n");
    return 2;
}

int rb_cli_officials(struct rb_server *srv, int nargs, char **args)
{
    if (nargs == 2 && strcmp(args[0], "import") == 0)
        return with_db(srv, 1, args[1]);
    fprintf(stderr, "rabtad: usage: rabtad officials -c FILE import FILE.csv\n");
    return 2;
}

int rb_cli_transactions(struct rb_server *srv, int nargs, char **args)
{
    if (nargs == 2 && strcmp(args[0], "import") == 0)
        return with_db(srv, 2, args[1]);
    fprintf(stderr, "rabtad: usage: rabtad transactions -c FILE import FILE.csv\n");
    return 2;
}
