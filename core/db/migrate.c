/* Schema migrations: <dir>/NNNN_name.sql, applied in order at start-up.
 *
 * The whole run holds pg_advisory_lock(RB_MIGRATE_LOCK), so two rabtad starting together
 * take turns: the second finds everything applied. Each file runs in its own transaction
 * together with its row in rabta_migrations, so a failing file leaves nothing behind. Files
 * must therefore not contain BEGIN/COMMIT or statements that cannot run in a transaction
 * (CREATE INDEX CONCURRENTLY). Blocking libpq is fine here: the loop is not running yet. */
#include "db/migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "base/common.h"
#include "base/log.h"

#define MIG_CTX "migrate"
#define RB_MIGRATE_LOCK "7296450117240201" /* arbitrary; "rbta" + a date, as int8 */
#define MIG_MAX_BYTES (16 * 1024 * 1024)

struct mig_file {
    int version;
    char *name;     /* owned; "0001_core.sql" */
    char *path;     /* owned */
    char *sql;      /* owned; the file's text */
    char sum[crypto_hash_sha256_BYTES * 2 + 1];
};

struct mig_applied {
    int version;
    char *name, *checksum, *applied_at; /* owned */
};

static const char create_sql[] =
    "CREATE TABLE IF NOT EXISTS rabta_migrations ("
    " version int PRIMARY KEY,"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(),"
    " applied_by text NOT NULL)";

static void files_free(struct mig_file *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].name);
        free(f[i].path);
        free(f[i].sql);
    }
    free(f);
}

static void applied_free(struct mig_applied *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(a[i].name);
        free(a[i].checksum);
        free(a[i].applied_at);
    }
    free(a);
}

/* NNNN_name.sql with name of [A-Za-z0-9_-]+. Returns the version (>= 1) or -1. */
static int parse_name(const char *name)
{
    size_t len = strlen(name);
    if (len < 10 || strcmp(name + len - 4, ".sql") != 0 || name[4] != '_')
        return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    for (size_t i = 5; i < len - 4; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return -1;
    }
    return v >= 1 ? v : -1;
}

static int cmp_files(const void *a, const void *b)
{
    const struct mig_file *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

static char *read_text(const char *path, struct rb_errors *errs)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        rb_errors_add(errs, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = rb_malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len > MIG_MAX_BYTES) {
            rb_errors_add(errs, "%s: larger than %d bytes", path, MIG_MAX_BYTES);
            fclose(f);
            free(buf);
            return NULL;
        }
        if (cap - len - 1 == 0)
            buf = rb_realloc(buf, cap *= 2);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        rb_errors_add(errs, "%s: read error", path);
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        rb_errors_add(errs, "%s: contains a NUL byte", path);
        free(buf);
        return NULL;
    }
    return buf;
}

/* Lists, reads and checksums dir's migrations, sorted. Returns RB_OK or RB_ERR (errors
 * added: unreadable directory, bad names, duplicate versions). */
static int load_files(const char *dir, struct mig_file **out, size_t *nout,
                      struct rb_errors *errs)
{
    DIR *d = opendir(dir);
    if (!d) {
        rb_errors_add(errs, "migrations directory %s: %s", dir, strerror(errno));
        return RB_ERR;
    }
    struct mig_file *files = NULL;
    size_t n = 0, cap = 0;
    int rc = RB_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        size_t len = strlen(name);
        if (name[0] == '.' || (len > 3 && strcmp(name + len - 3, ".md") == 0))
            continue;
        int v = parse_name(name);
        if (v < 0) {
            rb_errors_add(errs,
                          "%s/%s: not a migration file name: expected NNNN_name.sql (four "
                          "digits from 0001, then letters, digits, _ or -)",
                          dir, name);
            rc = RB_ERR;
            continue;
        }
        if (n == cap)
            files = rb_realloc(files, (cap = cap ? cap * 2 : 16) * sizeof(*files));
        memset(&files[n], 0, sizeof(files[n]));
        files[n].version = v;
        files[n].name = rb_strdup(name);
        files[n].path = rb_sprintf("%s/%s", dir, name);
        n++;
    }
    closedir(d);
    qsort(files, n, sizeof(*files), cmp_files);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && files[i].version == files[i - 1].version) {
            rb_errors_add(errs, "%s and %s have the same version %04d", files[i - 1].path,
                          files[i].path, files[i].version);
            rc = RB_ERR;
        }
        files[i].sql = read_text(files[i].path, errs);
        if (!files[i].sql) {
            rc = RB_ERR;
            continue;
        }
        unsigned char h[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(h, (const unsigned char *)files[i].sql, strlen(files[i].sql));
        sodium_bin2hex(files[i].sum, sizeof(files[i].sum), h, sizeof(h));
    }
    if (rc != RB_OK) {
        files_free(files, n);
        return rc;
    }
    *out = files;
    *nout = n;
    return RB_OK;
}

/* Adds "what: <server message>" for a failed command. */
static void add_pg_error(struct rb_errors *errs, const char *what, PGconn *conn,
                         const PGresult *res)
{
    const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char *msg = rb_strdup(m ? m : PQerrorMessage(conn));
    size_t len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        msg[--len] = '\0';
    rb_errors_add(errs, "%s: %s", what, msg);
    free(msg);
}

static int exec_ok(PGconn *conn, const char *sql, int nparams, const char *const *params,
                   const char *what, struct rb_errors *errs, PGresult **out)
{
    PGresult *r = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        add_pg_error(errs, what, conn, r);
        PQclear(r);
        return RB_ERR;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return RB_OK;
}

/* The line of a 1-based character position in text (UTF-8). */
static int line_of(const char *text, long pos)
{
    int line = 1;
    long ch = 0;
    for (const unsigned char *s = (const unsigned char *)text; *s; s++) {
        if ((*s & 0xC0) != 0x80 && ++ch >= pos)
            break;
        if (*s == '\n')
            line++;
    }
    return line;
}

static int apply_one(PGconn *conn, const struct mig_file *f, struct rb_errors *errs)
{
    if (exec_ok(conn, "BEGIN", 0, NULL, "migration BEGIN", errs, NULL) != RB_OK)
        return RB_ERR;
    PGresult *r = PQexec(conn, f->sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        char *msg = rb_strdup(m ? m : PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        if (pos)
            rb_errors_add(errs, "migration %s:%d: %s (SQLSTATE %s); nothing of it was applied",
                          f->path, line_of(f->sql, strtol(pos, NULL, 10)), msg,
                          state ? state : "?");
        else
            rb_errors_add(errs, "migration %s: %s (SQLSTATE %s); nothing of it was applied",
                          f->path, msg, state ? state : "?");
        free(msg);
        PQclear(r);
        PQclear(PQexec(conn, "ROLLBACK"));
        return RB_ERR;
    }
    PQclear(r);
    char version[16];
    snprintf(version, sizeof(version), "%d", f->version);
    const char *params[] = {version, f->name, f->sum, RB_VERSION};
    if (exec_ok(conn,
                "INSERT INTO rabta_migrations (version, name, checksum, applied_by) "
                "VALUES ($1, $2, $3, $4)",
                4, params, "recording the migration", errs, NULL) != RB_OK ||
        exec_ok(conn, "COMMIT", 0, NULL, "migration COMMIT", errs, NULL) != RB_OK) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return RB_ERR;
    }
    rb_info(MIG_CTX, "applied migration %s", f->name);
    return RB_OK;
}

static int load_applied(PGconn *conn, struct mig_applied **out, size_t *nout,
                        struct rb_errors *errs)
{
    PGresult *r;
    if (exec_ok(conn,
                "SELECT version, name, checksum, "
                "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' "
                "FROM rabta_migrations ORDER BY version",
                0, NULL, "reading rabta_migrations", errs, &r) != RB_OK)
        return RB_ERR;
    size_t n = (size_t)PQntuples(r);
    struct mig_applied *a = rb_calloc(n, sizeof(*a));
    for (size_t i = 0; i < n; i++) {
        a[i].version = atoi(PQgetvalue(r, (int)i, 0));
        a[i].name = rb_strdup(PQgetvalue(r, (int)i, 1));
        a[i].checksum = rb_strdup(PQgetvalue(r, (int)i, 2));
        a[i].applied_at = rb_strdup(PQgetvalue(r, (int)i, 3));
    }
    PQclear(r);
    *out = a;
    *nout = n;
    return RB_OK;
}

/* Refuses changed, missing or unknown applied migrations and out-of-order new files. */
static int check_applied(const char *dir, const struct mig_file *files, size_t nf,
                         const struct mig_applied *a, size_t na, struct rb_errors *errs)
{
    int rc = RB_OK;
    int known = nf ? files[nf - 1].version : 0;
    for (size_t i = 0; i < na; i++) {
        const struct mig_file *f = NULL;
        for (size_t j = 0; j < nf && !f; j++)
            if (files[j].version == a[i].version)
                f = &files[j];
        if (!f && a[i].version > known) {
            rb_errors_add(errs,
                          "database schema is at %04d but this rabtad only knows up to %04d: "
                          "upgrade rabtad",
                          a[na - 1].version, known);
            return RB_ERR;
        }
        if (!f) {
            rb_errors_add(errs,
                          "migration %s was applied on %s but is missing from %s: restore it "
                          "(migrations are never deleted)",
                          a[i].name, a[i].applied_at, dir);
            rc = RB_ERR;
        } else if (strcmp(f->sum, a[i].checksum) != 0) {
            rb_errors_add(errs,
                          "migration %s was changed after it was applied on %s; restore it and "
                          "add a new migration instead",
                          f->name, a[i].applied_at);
            rc = RB_ERR;
        } else if (strcmp(f->name, a[i].name) != 0) {
            rb_warn(MIG_CTX, "migration %04d was applied as %s and is now named %s",
                    f->version, a[i].name, f->name);
        }
    }
    int latest = na ? a[na - 1].version : 0;
    for (size_t j = 0; j < nf; j++) {
        int applied = 0;
        for (size_t i = 0; i < na && !applied; i++)
            applied = a[i].version == files[j].version;
        if (!applied && files[j].version < latest) {
            rb_errors_add(errs,
                          "migration %s is new but numbered below %04d, which the database "
                          "already has: migrations are append-only, renumber it after %04d",
                          files[j].name, latest, latest);
            rc = RB_ERR;
        }
    }
    return rc;
}

int rb_migrate(PGconn *conn, const char *dir, struct rb_errors *errs)
{
    struct mig_file *files = NULL;
    size_t nf = 0;
    if (sodium_init() < 0) {
        rb_errors_add(errs, "libsodium failed to initialise");
        return RB_ERR;
    }
    if (load_files(dir, &files, &nf, errs) != RB_OK)
        return RB_ERR;
    const char *lock[] = {RB_MIGRATE_LOCK};
    if (exec_ok(conn, "SELECT pg_advisory_lock($1::int8)", 1, lock, "taking the migration lock",
                errs, NULL) != RB_OK) {
        files_free(files, nf);
        return RB_ERR;
    }
    int applied = 0, rc = RB_OK;
    struct mig_applied *a = NULL;
    size_t na = 0;
    if (exec_ok(conn, create_sql, 0, NULL, "creating rabta_migrations", errs, NULL) != RB_OK ||
        load_applied(conn, &a, &na, errs) != RB_OK ||
        check_applied(dir, files, nf, a, na, errs) != RB_OK) {
        rc = RB_ERR;
        goto out;
    }
    for (size_t j = 0; j < nf; j++) {
        int done = 0;
        for (size_t i = 0; i < na && !done; i++)
            done = a[i].version == files[j].version;
        if (done)
            continue;
        if (apply_one(conn, &files[j], errs) != RB_OK) {
            rc = RB_ERR;
            break;
        }
        applied++;
    }
out:
    PQclear(PQexecParams(conn, "SELECT pg_advisory_unlock($1::int8)", 1, NULL, lock, NULL, NULL,
                         0));
    applied_free(a, na);
    files_free(files, nf);
    if (rc == RB_OK && applied == 0)
        rb_debug(MIG_CTX, "schema up to date (%zu migrations)", nf);
    return rc == RB_OK ? applied : RB_ERR;
}
