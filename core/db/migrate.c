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

/* owner: "core" or a plugin's name; each owner numbers its migrations from 0001. A table made
 * before plugins had migrations (version the key) gets the column and the two-part key. */
static const char create_sql[] =
    "CREATE TABLE IF NOT EXISTS rabta_migrations ("
    " owner text NOT NULL DEFAULT 'core',"
    " version int NOT NULL,"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(),"
    " applied_by text NOT NULL,"
    " PRIMARY KEY (owner, version));"
    "ALTER TABLE rabta_migrations ADD COLUMN IF NOT EXISTS owner text NOT NULL DEFAULT 'core';"
    "DO $$ BEGIN"
    "  IF (SELECT cardinality(conkey) FROM pg_constraint"
    "      WHERE conrelid = 'rabta_migrations'::regclass AND contype = 'p') = 1 THEN"
    "    ALTER TABLE rabta_migrations DROP CONSTRAINT rabta_migrations_pkey;"
    "    ALTER TABLE rabta_migrations ADD PRIMARY KEY (owner, version);"
    "  END IF;"
    " END $$";

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
static int load_files(const char *dir, int optional, struct mig_file **out, size_t *nout,
                      struct rb_errors *errs)
{
    DIR *d = opendir(dir);
    if (!d && optional && errno == ENOENT) { /* a plugin without tables of its own */
        *out = NULL;
        *nout = 0;
        return RB_OK;
    }
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

static int apply_one(PGconn *conn, const char *owner, const struct mig_file *f,
                     struct rb_errors *errs)
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
    const char *params[] = {version, f->name, f->sum, RB_VERSION, owner};
    if (exec_ok(conn,
                "INSERT INTO rabta_migrations (version, name, checksum, applied_by, owner) "
                "VALUES ($1, $2, $3, $4, $5)",
                5, params, "recording the migration", errs, NULL) != RB_OK ||
        exec_ok(conn, "COMMIT", 0, NULL, "migration COMMIT", errs, NULL) != RB_OK) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return RB_ERR;
    }
    rb_info(MIG_CTX, "applied migration %s%s%s", strcmp(owner, "core") ? owner : "",
            strcmp(owner, "core") ? " " : "", f->name);
    return RB_OK;
}

static int load_applied(PGconn *conn, const char *owner, struct mig_applied **out,
                        size_t *nout, struct rb_errors *errs)
{
    PGresult *r;
    const char *params[1] = {owner};
    if (exec_ok(conn,
                "SELECT version, name, checksum, "
                "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' "
                "FROM rabta_migrations WHERE owner = $1 ORDER BY version",
                1, params, "reading rabta_migrations", errs, &r) != RB_OK)
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

/* One owner's migrations, read and checksummed before the lock is taken. */
struct mig_set {
    const struct rb_migration_set *set; /* borrowed */
    struct mig_file *files;             /* owned */
    size_t nf;
};

/* One owner's migrations (the lock held): checked against what the database has, then the
 * new ones applied in order. Returns the number applied or RB_ERR. */
static int migrate_set(PGconn *conn, const struct mig_set *ms, struct rb_errors *errs)
{
    const struct rb_migration_set *set = ms->set;
    struct mig_applied *a = NULL;
    size_t na = 0;
    int applied = 0, rc = RB_OK;
    if (load_applied(conn, set->owner, &a, &na, errs) != RB_OK ||
        check_applied(set->dir, ms->files, ms->nf, a, na, errs) != RB_OK) {
        applied_free(a, na);
        return RB_ERR;
    }
    for (size_t j = 0; j < ms->nf; j++) {
        int done = 0;
        for (size_t i = 0; i < na && !done; i++)
            done = a[i].version == ms->files[j].version;
        if (done)
            continue;
        if (apply_one(conn, set->owner, &ms->files[j], errs) != RB_OK) {
            rc = RB_ERR;
            break;
        }
        applied++;
    }
    applied_free(a, na);
    if (rc == RB_OK && applied == 0)
        rb_debug(MIG_CTX, "%s: schema up to date (%zu migrations)", set->owner, ms->nf);
    return rc == RB_OK ? applied : RB_ERR;
}

/* Takes the lock, makes sure rabta_migrations is there, migrates each set in order. */
static int migrate_locked(PGconn *conn, const struct mig_set *ms, size_t n,
                          struct rb_errors *errs)
{
    const char *lock[] = {RB_MIGRATE_LOCK};
    if (exec_ok(conn, "SELECT pg_advisory_lock($1::int8)", 1, lock, "taking the migration lock",
                errs, NULL) != RB_OK)
        return RB_ERR;
    int applied = 0;
    PGresult *r = PQexec(conn, create_sql); /* several commands: not as one prepared */
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        add_pg_error(errs, "creating rabta_migrations", conn, r);
        applied = RB_ERR;
    }
    PQclear(r);
    for (size_t i = 0; applied >= 0 && i < n; i++) {
        int k = migrate_set(conn, &ms[i], errs);
        applied = k < 0 ? RB_ERR : applied + k;
    }
    PQclear(PQexecParams(conn, "SELECT pg_advisory_unlock($1::int8)", 1, NULL, lock, NULL, NULL,
                         0));
    return applied;
}

int rb_migrate_sets(PGconn *conn, const struct rb_migration_set *sets, size_t n,
                    struct rb_errors *errs)
{
    if (sodium_init() < 0) {
        rb_errors_add(errs, "libsodium failed to initialise");
        return RB_ERR;
    }
    struct mig_set *ms = rb_calloc(n + 1, sizeof(*ms));
    int rc = RB_OK;
    for (size_t i = 0; i < n; i++) {
        ms[i].set = &sets[i];
        if (load_files(sets[i].dir, strcmp(sets[i].owner, "core") != 0, &ms[i].files,
                       &ms[i].nf, errs) != RB_OK)
            rc = RB_ERR;
    }
    int applied = rc == RB_OK ? migrate_locked(conn, ms, n, errs) : RB_ERR;
    for (size_t i = 0; i < n; i++)
        files_free(ms[i].files, ms[i].nf);
    free(ms);
    return applied;
}

int rb_migrate(PGconn *conn, const char *dir, struct rb_errors *errs)
{
    const struct rb_migration_set core = {.owner = "core", .dir = dir};
    return rb_migrate_sets(conn, &core, 1, errs);
}
