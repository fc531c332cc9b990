/* core/db/migrate.c against a real PostgreSQL: ordering, idempotence, refusing changed files,
 * newer schemas and bad names, racing migrators, atomic failure, and the real migrations/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <unistd.h>

#include <sodium.h>

#include "base/common.h"
#include "base/log.h"
#include "config/yaml_doc.h"
#include "db/db.h"
#include "db/migrate.h"
#include "pgtest.h"

static struct pgtest pgt;
static PGconn *admin; /* database "rabta": creates one database per test */
static int dbseq;

/* Each test: a fresh database and a fresh migrations directory. */
struct mt {
    char dbname[32];
    char conninfo[600];
    char dir[128];
    PGconn *conn;
};

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static PGconn *connect_to(const char *conninfo)
{
    char *err = NULL;
    PGconn *c = rb_db_connect_blocking(conninfo, 10, &err);
    if (!c)
        fail_msg("connect: %s", err);
    return c;
}

static void mt_init(struct mt *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->dbname, sizeof(m->dbname), "mig_%d", ++dbseq);
    char sql[64];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", m->dbname);
    PGresult *r = PQexec(admin, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    pgtest_conninfo_db(&pgt, m->dbname, m->conninfo, sizeof(m->conninfo));
    m->conn = connect_to(m->conninfo);
    snprintf(m->dir, sizeof(m->dir), "%s/mig-XXXXXX", pgt.dir);
    assert_non_null(mkdtemp(m->dir));
}

static void mt_done(struct mt *m)
{
    PQfinish(m->conn);
    pgtest_rm_rf(m->dir);
}

/* First column of the first row of sql, as a new string ("<null>", or "<error: ...>"). */
static char *scalar(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    char *v;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        v = rb_sprintf("<error: %s>", PQresultErrorMessage(r));
    else if (PQntuples(r) == 0 || PQgetisnull(r, 0, 0))
        v = rb_strdup("<null>");
    else
        v = rb_strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static void assert_scalar(PGconn *c, const char *sql, const char *want)
{
    char *v = scalar(c, sql);
    if (strcmp(v, want) != 0) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s: got %s, want %s", sql, v, want);
        free(v);
        fail_msg("%s", msg);
    }
    free(v);
}

/* Runs rb_migrate; returns its result, and the joined error messages in *msgs (new). */
static int migrate(struct mt *m, char **msgs)
{
    struct rb_errors e;
    rb_errors_init(&e);
    int rc = rb_migrate(m->conn, m->dir, &e);
    size_t len = 1;
    for (size_t i = 0; i < e.n; i++)
        len += strlen(e.msgs[i]) + 1;
    char *all = rb_calloc(1, len);
    for (size_t i = 0; i < e.n; i++) {
        strcat(all, e.msgs[i]);
        strcat(all, "\n");
    }
    rb_errors_free(&e);
    if (msgs)
        *msgs = all;
    else
        free(all);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    rb_log_min_level = RB_LOG_ERROR;
    if (sodium_init() < 0 || pgtest_start(&pgt) != 0)
        return -1;
    char *err = NULL;
    admin = rb_db_connect_blocking(pgt.conninfo, 10, &err);
    if (!admin) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(admin);
    pgtest_stop(&pgt);
    return 0;
}

static const char m1[] = "CREATE TABLE a (id int PRIMARY KEY);\n";
static const char m2[] = "CREATE TABLE b (a_id int REFERENCES a (id));\nINSERT INTO a VALUES (1);\n";

static void test_applies_in_order_and_records_checksums(void **state)
{
    (void)state;
    struct mt m;
    mt_init(&m);
    write_text(m.dir, "0002_b.sql", m2); /* needs 0001 first */
    write_text(m.dir, "0001_a.sql", m1);
    write_text(m.dir, "README.md", "not a migration");
    char *msgs;
    assert_int_equal(migrate(&m, &msgs), 2);
    assert_string_equal(msgs, "");
    free(msgs);
    assert_scalar(m.conn, "SELECT string_agg(version || ':' || name, ',' ORDER BY version) "
                          "FROM rabta_migrations",
                  "1:0001_a.sql,2:0002_b.sql");
    assert_scalar(m.conn, "SELECT applied_by FROM rabta_migrations WHERE version = 1",
                  RB_VERSION);
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[sizeof(h) * 2 + 1];
    crypto_hash_sha256(h, (const unsigned char *)m1, strlen(m1));
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    assert_scalar(m.conn, "SELECT checksum FROM rabta_migrations WHERE version = 1", hex);

    /* Second run: nothing to do. */
    assert_int_equal(migrate(&m, NULL), 0);
    assert_scalar(m.conn, "SELECT count(*) FROM rabta_migrations", "2");
    mt_done(&m);
}

static void test_changed_file_is_refused(void **state)
{
    (void)state;
    struct mt m;
    mt_init(&m);
    write_text(m.dir, "0001_core.sql", m1);
    assert_int_equal(migrate(&m, NULL), 1);
    write_text(m.dir, "0001_core.sql", "CREATE TABLE a (id bigint PRIMARY KEY);\n");
    write_text(m.dir, "0002_more.sql", m2);
    char *msgs;
    assert_int_equal(migrate(&m, &msgs), RB_ERR);
    assert_non_null(strstr(msgs, "migration 0001_core.sql was changed after it was applied on "));
    assert_non_null(strstr(msgs, " UTC; restore it and add a new migration instead"));
    free(msgs);
    /* and nothing else was applied */
    assert_scalar(m.conn, "SELECT count(*) FROM rabta_migrations", "1");
    assert_scalar(m.conn, "SELECT to_regclass('b') IS NULL", "t");
    mt_done(&m);
}

/* A fresh database with 0001 and 0003 applied. */
static void mt_init_1_and_3(struct mt *m)
{
    mt_init(m);
    write_text(m->dir, "0001_a.sql", m1);
    write_text(m->dir, "0003_b.sql", m2);
    assert_int_equal(migrate(m, NULL), 2);
}

static void test_newer_schema_is_refused(void **state)
{
    (void)state;
    struct mt m;
    mt_init_1_and_3(&m);
    PQclear(PQexec(m.conn, "INSERT INTO rabta_migrations (version, name, checksum, applied_by) "
                           "VALUES (7, '0007_future.sql', 'x', '9.9.9')"));
    char *msgs;
    assert_int_equal(migrate(&m, &msgs), RB_ERR);
    assert_string_equal(msgs, "database schema is at 0007 but this rabtad only knows up to 0003: "
                              "upgrade rabtad\n");
    free(msgs);
    mt_done(&m);
}

/* docs/database.md, "Append-only": an applied file that is missing and a new file numbered
 * below the latest applied one are refused, nothing applied; a dotfile is ignored. */
static void test_missing_or_out_of_order_files_are_refused(void **state)
{
    (void)state;
    struct mt m;
    mt_init_1_and_3(&m);
    write_text(m.dir, ".0004_editor_swap.sql", "this is no SQL");
    assert_int_equal(migrate(&m, NULL), 0);

    char path[256];
    snprintf(path, sizeof(path), "%s/0001_a.sql", m.dir);
    assert_int_equal(unlink(path), 0);
    char *msgs;
    assert_int_equal(migrate(&m, &msgs), RB_ERR);
    assert_non_null(strstr(msgs, "migration 0001_a.sql was applied on "));
    assert_non_null(strstr(msgs, "but is missing from"));
    free(msgs);

    write_text(m.dir, "0001_a.sql", m1);
    write_text(m.dir, "0002_late.sql", "CREATE TABLE late (x int);\n");
    assert_int_equal(migrate(&m, &msgs), RB_ERR);
    assert_non_null(strstr(msgs, "migration 0002_late.sql is new but numbered below 0003, which "
                                 "the database already has"));
    free(msgs);
    assert_scalar(m.conn, "SELECT to_regclass('late') IS NULL", "t");
    assert_scalar(m.conn, "SELECT count(*) FROM rabta_migrations", "2");
    mt_done(&m);
}

static void test_bad_file_name_is_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {"1_short.sql", "0002-dash.sql", "0002_x.SQL",
                                      "0000_zero.sql", "0002_sp ace.sql", "0002_x.sql~"};
    for (size_t i = 0; i < RB_ARRAY_LEN(bad); i++) {
        struct mt m;
        mt_init(&m);
        write_text(m.dir, "0001_a.sql", m1);
        write_text(m.dir, bad[i], m2);
        char *msgs;
        assert_int_equal(migrate(&m, &msgs), RB_ERR);
        assert_non_null(strstr(msgs, bad[i]));
        assert_non_null(strstr(msgs, "not a migration file name"));
        free(msgs);
        /* refused before touching the database */
        assert_scalar(m.conn, "SELECT to_regclass('rabta_migrations') IS NULL", "t");
        mt_done(&m);
    }
    /* Two files with one version. */
    struct mt m;
    mt_init(&m);
    write_text(m.dir, "0001_a.sql", m1);
    write_text(m.dir, "0001_b.sql", m2);
    char *msgs;
    assert_int_equal(migrate(&m, &msgs), RB_ERR);
    assert_non_null(strstr(msgs, "have the same version 0001"));
    free(msgs);
    mt_done(&m);
}

static void test_failing_migration_leaves_nothing(void **state)
{
    (void)state;
    struct mt m;
    mt_init(&m);
    write_text(m.dir, "0001_a.sql", m1);
    write_text(m.dir, "0002_bad.sql",
               "CREATE TABLE half (x int);\nINSERT INTO half VALUES (1);\nSELEC oops;\n");
    write_text(m.dir, "0003_after.sql", "CREATE TABLE after (x int);\n");
    char *msgs;
    assert_int_equal(migrate(&m, &msgs), RB_ERR);
    assert_non_null(strstr(msgs, "0002_bad.sql:3: syntax error at or near \"SELEC\""));
    assert_non_null(strstr(msgs, "nothing of it was applied"));
    free(msgs);
    assert_scalar(m.conn, "SELECT to_regclass('half') IS NULL", "t");
    assert_scalar(m.conn, "SELECT to_regclass('after') IS NULL", "t");
    assert_scalar(m.conn, "SELECT string_agg(version::text, ',') FROM rabta_migrations", "1");
    /* The session is usable and the lock was released: fixing the file lets it through. */
    write_text(m.dir, "0002_bad.sql", "CREATE TABLE half (x int);\n");
    assert_int_equal(migrate(&m, NULL), 2);
    assert_scalar(m.conn, "SELECT pg_try_advisory_lock(1)::text", "true");
    mt_done(&m);
}

static void test_racing_migrators_apply_exactly_once(void **state)
{
    (void)state;
    struct mt m;
    mt_init(&m);
    write_text(m.dir, "0001_race.sql", "CREATE TABLE race (x int);\nSELECT pg_sleep(0.5);\n");
    write_text(m.dir, "0002_row.sql", "INSERT INTO race VALUES (1);\n");
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            char *err = NULL;
            PGconn *c = rb_db_connect_blocking(m.conninfo, 10, &err);
            if (!c)
                _exit(100);
            struct rb_errors e;
            rb_errors_init(&e);
            int rc = rb_migrate(c, m.dir, &e);
            for (size_t j = 0; j < e.n; j++)
                fprintf(stderr, "child %d: %s\n", i, e.msgs[j]);
            rb_errors_free(&e);
            PQfinish(c);
            _exit(rc < 0 ? 101 : rc);
        }
    }
    int total = 0;
    for (int i = 0; i < 2; i++) {
        int status;
        assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
        assert_true(WIFEXITED(status));
        assert_true(WEXITSTATUS(status) <= 2); /* no failure */
        total += WEXITSTATUS(status);
    }
    assert_int_equal(total, 2);
    assert_scalar(m.conn, "SELECT count(*) FROM race", "1");
    assert_scalar(m.conn, "SELECT count(*) FROM rabta_migrations", "2");
    mt_done(&m);
}

static void expect_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

static void expect_error(PGconn *c, const char *sql, const char *what)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_FATAL_ERROR || !strstr(PQresultErrorMessage(r), what))
        fail_msg("%s: expected an error with \"%s\", got %s", sql, what,
                 PQresultErrorMessage(r));
    PQclear(r);
}

/* rb_jobs_enqueue's statement (core/jobs/jobs.c) must find the dedup index. */
static const char enqueue[] =
    "INSERT INTO jobs (kind, payload, run_at, dedup_key) "
    "VALUES ('sla.check', '{}', now(), 'case-1') "
    "ON CONFLICT (dedup_key) WHERE state IN ('queued', 'running') DO NOTHING RETURNING id";

static void test_real_migrations_apply(void **state)
{
    (void)state;
    struct mt m;
    mt_init(&m);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/migrations", RB_SOURCE_DIR);
    struct rb_errors e;
    rb_errors_init(&e);
    int rc = rb_migrate(m.conn, dir, &e);
    for (size_t i = 0; i < e.n; i++)
        fprintf(stderr, "%s\n", e.msgs[i]);
    rb_errors_free(&e);
    assert_true(rc >= 1);
    rb_errors_init(&e);
    assert_int_equal(rb_migrate(m.conn, dir, &e), 0);
    rb_errors_free(&e);

    /* The schema takes a case's life. */
    expect_ok(m.conn, "INSERT INTO citizens (phone, name) VALUES ('+923001234567', 'Ali')");
    expect_error(m.conn, "INSERT INTO citizens (phone) VALUES ('03001234567')", "check");
    expect_ok(m.conn, "INSERT INTO cases (tracking_no, kind, citizen_id, channel, text) "
                      "SELECT 'K7Q2M9XH', 'complaint', id, 'sms', 'bribe asked' FROM citizens");
    expect_error(m.conn, "UPDATE cases SET status = 'lost'", "cases_status_check");
    expect_ok(m.conn, "UPDATE cases SET status = 'routed', department_id = 'revenue'");
    expect_ok(m.conn, "INSERT INTO case_events (case_id, actor_type, event, from_status, "
                      "to_status) SELECT id, 'system', 'routed', 'submitted', 'routed' FROM cases");
    expect_error(m.conn, "UPDATE case_events SET note = 'x'", "append-only");
    expect_error(m.conn, "DELETE FROM case_events", "append-only");
    assert_scalar(m.conn, "SELECT updated_at > created_at OR updated_at = now() FROM cases", "t");
    expect_ok(m.conn, "INSERT INTO staff (username, role, department_id) "
                      "VALUES ('officer1', 'officer', 'revenue')");
    expect_ok(m.conn, "INSERT INTO staff_tokens (token_hash, staff_id, expires_at) "
                      "SELECT sha256('t'), id, now() + interval '1 day' FROM staff");
    expect_ok(m.conn, "INSERT INTO messages (case_id, channel, to_address, body) "
                      "SELECT id, 'sms', '+923001234567', 'received' FROM cases");

    /* docs/database.md's table notes: an e-mail is unique whatever its letter case, and a
     * citizen needs a phone or an e-mail; a location is both coordinates or none; priority
     * and rating 1-5; a staff member's tokens go with the staff row. */
    expect_ok(m.conn, "INSERT INTO citizens (email) VALUES ('Amina@Example.pk')");
    expect_error(m.conn, "INSERT INTO citizens (email) VALUES ('amina@example.PK')",
                 "citizens_email_key");
    expect_error(m.conn, "INSERT INTO citizens (name) VALUES ('Nobody')", "check constraint");
    expect_error(m.conn, "UPDATE cases SET lat = 31.5", "check constraint");
    expect_ok(m.conn, "UPDATE cases SET lat = 31.5, long = 74.3");
    expect_error(m.conn, "UPDATE cases SET priority = 0", "check constraint");
    expect_error(m.conn, "UPDATE cases SET priority = 6", "check constraint");
    expect_error(m.conn, "UPDATE cases SET rating = 6", "check constraint");
    expect_ok(m.conn, "DELETE FROM staff WHERE username = 'officer1'");
    assert_scalar(m.conn, "SELECT count(*) FROM staff_tokens", "0");

    /* A new case's delivery is queued by intake (0020), not by its routed event; a transfer
     * event queues the delivery to the new department (0011's trigger, 0012's row) in the
     * same statement. */
    assert_scalar(m.conn, "SELECT count(*) FROM jobs WHERE kind = 'case.deliver'", "0");
    expect_ok(m.conn, "INSERT INTO case_events (case_id, actor_type, event, from_status, "
                      "to_status, data) SELECT id, 'staff', 'transfer', 'routed', 'transferred', "
                      "'{\"to_department\": \"police\"}' FROM cases");
    assert_scalar(m.conn,
                  "SELECT count(*) FROM jobs WHERE kind = 'case.deliver' AND "
                  "payload->>'event' = 'transfer' AND payload->>'case_id' = "
                  "(SELECT id::text FROM cases)",
                  "1");
    /* ... and may be tried until the department's plugin gives up, up to 100 times */
    assert_scalar(m.conn, "SELECT max_attempts FROM jobs WHERE kind = 'case.deliver'", "100");

    /* Jobs de-duplicate while pending, and again once done. */
    char *first = scalar(m.conn, enqueue);
    assert_true(first[0] >= '1' && first[0] <= '9'); /* an id */
    free(first);
    assert_scalar(m.conn, enqueue, "<null>"); /* duplicate: no row */
    expect_ok(m.conn, "UPDATE jobs SET state = 'done'");
    assert_scalar(m.conn, "SELECT max(max_attempts) FROM jobs WHERE kind = 'sla.check'", "10");
    char *v = scalar(m.conn, enqueue);
    assert_true(v[0] >= '1' && v[0] <= '9'); /* a new id */
    free(v);
    mt_done(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_applies_in_order_and_records_checksums),
        cmocka_unit_test(test_changed_file_is_refused),
        cmocka_unit_test(test_newer_schema_is_refused),
        cmocka_unit_test(test_bad_file_name_is_refused),
        cmocka_unit_test(test_missing_or_out_of_order_files_are_refused),
        cmocka_unit_test(test_failing_migration_leaves_nothing),
        cmocka_unit_test(test_racing_migrators_apply_exactly_once),
        cmocka_unit_test(test_real_migrations_apply),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
