/* The staff API (see staff_api.h and docs/api.md "Staff API").
 *
 * Every request but login goes: bearer token → staff member (rb_staff_auth, 401 without) →
 * for a case: load it → scope (rb_staff_scope: 404 out of scope, 403 oversight writing) →
 * the step (rb_case_transition: 409 with its sentence) → ONE statement that changes the case
 * only if its status is still the one checked, and writes the case event (and, for words to
 * the citizen, the message and its send job, rabta_message_queue) with it. */
#include "staff/staff_api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/process.h"
#include "base/text.h"
#include "base/tracking.h"
#include "cases/case_act.h"
#include "cases/case_read.h"
#include "cases/case_state.h"
#include "cases/citizen_auth.h"
#include "config/config.h"
#include "db/db.h"
#include "net/http.h"
#include "staff/staff_account.h"

#define TS_FMT "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"
#define TEXT_MAX 5000
#define INBOX_DEFAULT 50
#define INBOX_MAX 200

enum op {
    OP_LOGIN,
    OP_LOGOUT,
    OP_ME,
    OP_INBOX,
    OP_CASE,
    /* the case actions: a POST under /cases/:tracking/ */
    OP_ACKNOWLEDGE,
    OP_START,
    OP_ASSIGN,
    OP_COMMENT,
    OP_ASK,
    OP_TRANSFER,
    OP_RESOLVE,
    OP_REJECT,
    OP_ANSWER,
    OP_ACTIONS,
    OP_COUNT
};

struct staff_api;

struct op_route {
    struct staff_api *a; /* borrowed back pointer */
    enum op op;
};

struct staff_api {
    struct rb_server *srv;  /* borrowed */
    struct rb_staff *staff; /* owned */
    struct op_route routes[OP_COUNT];
};

/* The API of this process; freed by rb_staff_api_free. (The server struct has no field for
 * it yet: see the report to the lead.) */
static struct staff_api *live;

/* How each case action maps onto the state machine. transition 0: not a status change. */
static const struct {
    const char *path;     /* under /api/v1/staff/cases/:tracking/ */
    int transition;
    enum rb_case_action action;
    const char *field;    /* the body's text: the reason, question, answer, note */
} ops[OP_COUNT] = {
    [OP_ACKNOWLEDGE] = {"acknowledge", 1, RB_CASE_DO_ACKNOWLEDGE, "note"},
    [OP_START] = {"start", 1, RB_CASE_DO_START, "note"},
    [OP_ASSIGN] = {"assign", 0, 0, NULL},
    [OP_COMMENT] = {"comment", 0, 0, "text"},
    [OP_ASK] = {"ask", 1, RB_CASE_DO_ASK_CITIZEN, "question"},
    [OP_TRANSFER] = {"transfer", 1, RB_CASE_DO_TRANSFER, "reason"},
    [OP_RESOLVE] = {"resolve", 1, RB_CASE_DO_RESOLVE, "note"},
    [OP_REJECT] = {"reject", 1, RB_CASE_DO_REJECT, "reason"},
    [OP_ANSWER] = {"answer", 1, RB_CASE_DO_ANSWER, "answer"},
    [OP_ACTIONS] = {"actions", 0, 0, "note"},
};

static const char *const official_actions[] = {"warning", "show_cause", "coaching",
                                               "suspension"};

/* One request under way. */
struct call {
    struct staff_api *a; /* borrowed */
    struct rb_http_req *req;
    enum op op;
    struct rb_staff_user u;
    char token[RB_STAFF_TOKEN_LEN + 1];
    json_t *body; /* owned; POSTs */
    char tracking[33];
    int bad_tracking; /* malformed: 400 once authenticated */
    /* the case, once loaded */
    long long case_id;
    enum rb_case_kind kind;
    enum rb_case_state status;
    char *department, *district, *official; /* owned; NULL when SQL NULL */
    enum rb_case_state to;
    /* login */
    char username[65];
    char *password; /* owned; wiped */
    long long staff_id;
    char *hash; /* owned */
};

static void call_free(struct call *c)
{
    if (!c)
        return;
    json_decref(c->body);
    free(c->department);
    free(c->district);
    free(c->official);
    if (c->password) {
        sodium_memzero(c->password, strlen(c->password));
        free(c->password);
    }
    free(c->hash);
    sodium_memzero(c->token, sizeof(c->token));
    free(c);
}

static void db_failed(struct call *c, const char *err)
{
    if (rb_db_outcome_unknown(err)) {
        rb_warn(rb_http_req_id(c->req), "staff api: database: %s", err);
        rb_http_reply_error(c->req, 503, "outcome_unknown",
                            "the database stopped answering while it worked on this request; "
                            "a change may or may not have been saved: reload the case before "
                            "trying again");
    } else {
        rb_http_reply_db_error(c->req, err, "staff api"); /* bad bytes 400, else 503; logged */
    }
}

static void not_found(struct call *c)
{
    rb_http_reply_error(c->req, 404, "not_found", "there is no case %s that you can see",
                        c->tracking);
}

static char *dup_value(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : rb_strdup(PQgetvalue(res, row, col));
}

/* The body's string member name, or NULL when absent or not a string. */
static const char *body_str(const struct call *c, const char *name)
{
    json_t *v = c->body ? json_object_get(c->body, name) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A non-blank string, or NULL (its length and characters were checked by clean_texts). */
static const char *body_text(const struct call *c, const char *name)
{
    const char *s = body_str(c, name);
    if (!s || strspn(s, " \t\r\n") == strlen(s))
        return NULL;
    return s;
}

/* Staff texts that may reach a citizen get the hygiene of citizens' own (core/base/text.c):
 * each text member of the body is cleaned in place (line ends, bidi overrides, stray spaces)
 * and checked (control characters, invalid UTF-8, length in characters). 0, or -1 after
 * answering 400: a text over its limit is refused, never dropped while the action goes on. */
static int clean_texts(struct call *c)
{
    static const struct {
        const char *name;
        size_t max;
        unsigned flags;
    } fields[] = {{"text", TEXT_MAX, RB_TEXT_BODY | RB_TEXT_TABS},
                  {"note", TEXT_MAX, RB_TEXT_BODY | RB_TEXT_TABS},
                  {"reason", TEXT_MAX, RB_TEXT_BODY | RB_TEXT_TABS},
                  {"question", TEXT_MAX, RB_TEXT_BODY | RB_TEXT_TABS},
                  {"answer", TEXT_MAX, RB_TEXT_BODY | RB_TEXT_TABS},
                  {"official", 200, RB_TEXT_LINE}};
    for (size_t i = 0; c->body && i < RB_ARRAY_LEN(fields); i++) {
        json_t *v = json_object_get(c->body, fields[i].name);
        if (!v || json_is_null(v))
            continue;
        const char *why = "must be a string";
        if (json_is_string(v)) {
            size_t len = json_string_length(v);
            char *t = rb_strndup(json_string_value(v), len);
            int rc = rb_text_sanitize(t, &len, fields[i].max, fields[i].flags, &why);
            if (rc == RB_OK)
                json_object_set_new(c->body, fields[i].name, json_stringn(t, len));
            free(t);
            if (rc == RB_OK)
                continue;
        }
        rb_http_reply_error(c->req, 400, "invalid_field", "field \"%s\" %s (at most %zu "
                            "characters of text)", fields[i].name, why, fields[i].max);
        return -1;
    }
    return 0;
}

/* ---- login and logout ---------------------------------------------------------------------- */

/* $1 username  $2 failures that lock  $3 lock seconds. Always one row: the user (or NULLs),
 * the lock on that name, its seconds left and whether this sign-in may check the password. A
 * sign-in claims its check here, in the statement that reads the lock: the check is counted
 * as a failure before it is made (a success deletes the count), so however many sign-ins run
 * at once, in however many processes and hashing threads, a name gets at most $2 checks
 * before the lock. While $2 are counted and no lock is set yet (checks under way), a claim is
 * refused without locking: the failures themselves lock (login_fail_sql). A claim long after
 * the previous failure (or after a lock ran out) starts the count again. */
static const char login_sql[] =
    "WITH a AS ("
    "  INSERT INTO staff_login_attempts AS a (username, failures, last_failed_at, locked_until)"
    "  VALUES ($1::text, 1, now(), NULL)"
    "  ON CONFLICT (username) DO UPDATE SET"
    "    failures = CASE WHEN a.locked_until > now() THEN a.failures"
    "      WHEN a.last_failed_at < now() - make_interval(secs => $3::int) THEN 1"
    "      WHEN a.failures >= $2::int THEN a.failures"
    "      ELSE a.failures + 1 END,"
    "    last_failed_at = CASE WHEN a.locked_until > now() THEN a.last_failed_at"
    "      WHEN a.last_failed_at < now() - make_interval(secs => $3::int) THEN now()"
    "      WHEN a.failures >= $2::int THEN a.last_failed_at"
    "      ELSE now() END,"
    "    locked_until = CASE WHEN a.locked_until > now() THEN a.locked_until END"
    "  RETURNING locked_until, last_failed_at = now() AS claimed)"
    " SELECT s.id, s.password_hash, s.disabled_at IS NOT NULL,"
    "  coalesce(a.locked_until > now(), false),"
    "  coalesce(ceil(extract(epoch from a.locked_until - now())), 0), a.claimed"
    " FROM a LEFT JOIN staff s ON s.username = $1::text";

/* $1 staff id  $2 username  $3 token hash  $4 lifetime (s) */
static const char login_ok_sql[] =
    "WITH d AS (DELETE FROM staff_login_attempts WHERE username = $2::text),"
    " s AS (UPDATE staff SET failed_logins = 0, locked_until = NULL"
    "  WHERE id = $1::bigint AND disabled_at IS NULL"
    "  RETURNING id, role, coalesce(department_id, '') AS department, display_name),"
    " t AS (INSERT INTO staff_tokens (token_hash, staff_id, expires_at)"
    "  SELECT $3::bytea, id, now() + make_interval(secs => $4::int) FROM s"
    "  RETURNING expires_at)"
    " SELECT s.role, s.department, s.display_name,"
    "  to_char(t.expires_at AT TIME ZONE 'UTC', " TS_FMT ")"
    " FROM s, t";

/* $1 username  $2 failures that lock  $3 lock seconds. The failure was counted by its claim
 * (login_sql); the last one allowed locks the name. Each failure also deletes up to 100 rows
 * that no longer count (their last failure older than the window, not locked: the same as no
 * row), so guesses at ever new names do not grow the table past the names of one window. */
static const char login_fail_sql[] =
    "WITH tidy AS ("
    "  DELETE FROM staff_login_attempts WHERE username IN (SELECT username"
    "    FROM staff_login_attempts WHERE last_failed_at < now() - make_interval(secs => $3::int)"
    "    AND coalesce(locked_until < now(), true) AND username <> $1::text"
    "    ORDER BY last_failed_at LIMIT 100)),"
    " a AS ("
    "  UPDATE staff_login_attempts SET locked_until = CASE WHEN failures >= $2::int"
    "    THEN coalesce(locked_until, now() + make_interval(secs => $3::int)) ELSE locked_until END"
    "  WHERE username = $1::text"
    "  RETURNING failures, locked_until),"
    " s AS (UPDATE staff SET failed_logins = a.failures, locked_until = a.locked_until FROM a"
    "  WHERE staff.username = $1::text)"
    " SELECT failures, locked_until IS NOT NULL FROM a";

/* $2 and $3 of login_sql and login_fail_sql. */
struct lock_params {
    char fails[12], secs[12];
};

static struct lock_params *lock_params(struct lock_params *lp)
{
    snprintf(lp->fails, sizeof(lp->fails), "%d", RB_STAFF_LOCK_FAILURES);
    snprintf(lp->secs, sizeof(lp->secs), "%d", RB_STAFF_LOCK_SECONDS);
    return lp;
}

static void locked_out(struct rb_http_req *req, long seconds)
{
    char ra[24];
    long minutes = (seconds + 59) / 60;
    snprintf(ra, sizeof(ra), "%ld", seconds > 0 ? seconds : 1);
    rb_http_add_header(req, "Retry-After", ra);
    rb_http_reply_error(req, 429, "locked",
                        "too many failed sign-ins for this account: it is locked for %ld more "
                        "minute%s; try again later or ask an administrator",
                        minutes > 0 ? minutes : 1, minutes == 1 ? "" : "s");
}

static void login_failed_done(PGresult *res, const char *err, void *arg)
{
    struct call *c = arg;
    if (err) {
        db_failed(c, err);
    } else if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
        rb_info(rb_http_req_id(c->req), "staff sign-in for %s locked after %s failures",
                c->username, PQgetvalue(res, 0, 0));
        locked_out(c->req, RB_STAFF_LOCK_SECONDS);
    } else {
        rb_http_reply_error(c->req, 401, "unauthorized", "wrong username or password");
    }
    call_free(c);
}

static void login_ok_done(PGresult *res, const char *err, void *arg)
{
    struct call *c = arg;
    if (err) {
        db_failed(c, err);
    } else if (PQntuples(res) != 1) {
        /* disabled between the look-up and now */
        rb_http_reply_error(c->req, 401, "unauthorized", "wrong username or password");
    } else {
        const char *dept = PQgetvalue(res, 0, 1);
        json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "token", c->token,
                                "token_type", "Bearer", "expires_at", PQgetvalue(res, 0, 3),
                                "role", PQgetvalue(res, 0, 0), "username", c->username,
                                "display_name", PQgetvalue(res, 0, 2));
        json_object_set_new(out, "department", *dept ? json_string(dept) : json_null());
        rb_info(rb_http_req_id(c->req), "staff %s signed in", c->username);
        rb_http_reply_json(c->req, 200, out);
    }
    call_free(c);
}

static void login_verified(int ok, void *arg)
{
    struct call *c = arg;
    struct rb_db *db = c->a->srv->db;
    int rc;
    if (ok && c->staff_id > 0) {
        char id[24], life[16], hash[2 + 64 + 1];
        snprintf(id, sizeof(id), "%lld", c->staff_id);
        snprintf(life, sizeof(life), "%d", RB_STAFF_TOKEN_TTL);
        rb_staff_token_new(c->token);
        rb_auth_token_hash(c->token, hash);
        const char *p[4] = {id, c->username, hash, life};
        rc = rb_db_query(db, login_ok_sql, 4, p, login_ok_done, c);
    } else {
        struct lock_params lp;
        const char *p[3] = {c->username, lock_params(&lp)->fails, lp.secs};
        rc = rb_db_query(db, login_fail_sql, 3, p, login_failed_done, c);
    }
    if (rc != RB_OK) {
        rb_http_reply_busy(c->req);
        call_free(c);
    }
}

static void login_looked_up(PGresult *res, const char *err, void *arg)
{
    struct call *c = arg;
    if (err) {
        db_failed(c, err);
        call_free(c);
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 3), "t") == 0) {
        locked_out(c->req, atol(PQgetvalue(res, 0, 4)));
        call_free(c);
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 5), "t") != 0) {
        rb_http_add_header(c->req, "Retry-After", "1");
        rb_http_reply_error(c->req, 429, "rate_limited", "too many sign-ins for this account "
                                                         "are under way; try again in a moment");
        call_free(c);
        return;
    }
    int usable = !PQgetisnull(res, 0, 0) && strcmp(PQgetvalue(res, 0, 2), "f") == 0 &&
                 !PQgetisnull(res, 0, 1);
    c->staff_id = usable ? atoll(PQgetvalue(res, 0, 0)) : 0;
    c->hash = usable ? rb_strdup(PQgetvalue(res, 0, 1)) : NULL;
    /* Unknown, disabled or without a password: the dummy hash, the same cost. */
    int rc = rb_staff_verify(c->a->staff, c->hash, c->password, login_verified, c);
    sodium_memzero(c->password, strlen(c->password));
    if (rc != RB_OK) {
        rb_http_reply_busy(c->req);
        call_free(c);
    }
}

static void on_login(struct rb_http_req *req, void *arg)
{
    struct op_route *r = arg;
    json_t *body = rb_http_req_json(req);
    if (!body)
        return;
    json_t *ju = json_object_get(body, "username"), *jp = json_object_get(body, "password");
    const char *user = json_is_string(ju) ? json_string_value(ju) : "";
    const char *pw = json_is_string(jp) ? json_string_value(jp) : "";
    if (!*user || strlen(user) > 64 || !*pw || strlen(pw) > RB_STAFF_PASSWORD_MAX) {
        json_decref(body);
        rb_http_reply_error(req, 400, "missing_field", "username and password are required (a "
                                                       "username has at most 64 characters)");
        return;
    }
    struct call *c = rb_calloc(1, sizeof(*c));
    c->a = r->a;
    c->req = req;
    c->op = OP_LOGIN;
    snprintf(c->username, sizeof(c->username), "%s", user);
    c->password = rb_strdup(pw);
    json_decref(body);
    struct lock_params lp;
    const char *p[3] = {c->username, lock_params(&lp)->fails, lp.secs};
    if (rb_db_query(c->a->srv->db, login_sql, 3, p, login_looked_up, c) != RB_OK) {
        rb_http_reply_busy(req);
        call_free(c);
    }
}

static void logout_done(PGresult *res, const char *err, void *arg)
{
    struct call *c = arg;
    (void)res;
    if (err) {
        db_failed(c, err);
    } else {
        rb_staff_forget(c->a->staff, c->token);
        rb_http_reply_json(c->req, 200, json_pack("{s:b}", "signed_out", 1));
    }
    call_free(c);
}

static void do_logout(struct call *c)
{
    char hash[2 + 64 + 1];
    rb_auth_token_hash(c->token, hash);
    const char *p[1] = {hash};
    if (rb_db_query(c->a->srv->db,
                    "UPDATE staff_tokens SET revoked_at = now() "
                    "WHERE token_hash = $1::bytea AND revoked_at IS NULL",
                    1, p, logout_done, c) != RB_OK) {
        rb_http_reply_busy(c->req);
        call_free(c);
    }
}

static json_t *user_json(const struct rb_staff_user *u)
{
    json_t *d = json_array();
    for (int i = 0; i < u->n_districts; i++)
        json_array_append_new(d, json_string(u->districts[i]));
    json_t *out = json_pack("{s:s, s:s, s:s, s:o}", "username", u->username, "display_name",
                            u->display_name, "role", rb_staff_role_str(u->role), "districts", d);
    json_object_set_new(out, "department",
                        u->department[0] ? json_string(u->department) : json_null());
    return out;
}

static void me_done(PGresult *res, const char *err, void *arg)
{
    struct call *c = arg;
    if (err) {
        db_failed(c, err);
    } else {
        json_t *out = user_json(&c->u);
        int row = PQntuples(res) == 1;
        json_object_set_new(out, "phone", row && !PQgetisnull(res, 0, 0)
                                              ? json_string(PQgetvalue(res, 0, 0))
                                              : json_null());
        json_object_set_new(out, "email", row && !PQgetisnull(res, 0, 1)
                                              ? json_string(PQgetvalue(res, 0, 1))
                                              : json_null());
        json_object_set_new(out, "unread_notifications",
                            json_integer(row ? atoll(PQgetvalue(res, 0, 2)) : 0));
        rb_http_reply_json(c->req, 200, out);
    }
    call_free(c);
}

/* GET /me: the account, its contact details and its unread notifications (staff_notify.h). */
static void do_me(struct call *c)
{
    char id[24];
    snprintf(id, sizeof(id), "%lld", c->u.id);
    const char *p[1] = {id};
    if (rb_db_query(c->a->srv->db,
                    "SELECT phone, email, (SELECT count(*) FROM staff_notifications"
                    " WHERE staff_id = $1::bigint AND read_at IS NULL)"
                    " FROM staff WHERE id = $1::bigint",
                    1, p, me_done, c) != RB_OK) {
        rb_http_reply_busy(c->req);
        call_free(c);
    }
}

/* ---- inbox --------------------------------------------------------------------------------- */

/* $1 department (NULL: all)  $2 districts "a,b" (NULL: all)  $3 status (NULL: the open ones)
 * $4 service  $5 district  $6 priority  $7 overdue only  $8,$9 cursor (due, id)  $10 limit+1
 * $11 username  $12 display name: cases naming this person are left out (NULL: nobody's)
 * $13 escalated only (escalation_level > 0)  $14 flagged for oversight only. */
static const char inbox_sql[] =
    "SELECT json_build_object("
    "  'tracking_no', c.tracking_no, 'kind', c.kind, 'status', c.status,"
    "  'service', c.service_id, 'department', c.department_id, 'district', c.district_id,"
    "  'category', c.category, 'priority', c.priority, 'anonymous', c.anonymous,"
    "  'escalation_level', c.escalation_level, 'assigned_to', s.username,"
    "  'flagged', c.flagged_oversight_at IS NOT NULL,"
    "  'created_at', to_char(c.created_at AT TIME ZONE 'UTC', " TS_FMT "),"
    "  'ack_due_at', to_char(c.ack_due_at AT TIME ZONE 'UTC', " TS_FMT "),"
    "  'resolve_due_at', to_char(c.resolve_due_at AT TIME ZONE 'UTC', " TS_FMT "),"
    "  'overdue', coalesce(c.resolve_due_at < now(), false),"
    "  'sla', rabta_sla_view(c.status, c.resolve_due_at, c.paused_at))::text,"
    " CASE WHEN c.resolve_due_at IS NULL THEN 'infinity' ELSE"
    "  to_char(c.resolve_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') END"
    "  || '~' || c.id"
    " FROM cases c LEFT JOIN staff s ON s.id = c.assigned_staff_id"
    " WHERE ($1::text IS NULL OR c.department_id = $1::text)"
    "  AND ($2::text IS NULL OR c.district_id = ANY (string_to_array($2::text, ',')))"
    "  AND CASE WHEN $3::text IS NULL THEN c.status IN ('routed', 'acknowledged',"
    "      'in_progress', 'awaiting_citizen', 'transferred', 'reopened')"
    "    ELSE c.status = $3::text END"
    "  AND ($4::text IS NULL OR c.service_id = $4::text)"
    "  AND ($5::text IS NULL OR c.district_id = $5::text)"
    "  AND ($6::int IS NULL OR c.priority = $6::int)"
    "  AND (NOT $7::boolean OR c.resolve_due_at < now())"
    "  AND (NOT $13::boolean OR c.escalation_level > 0)"
    "  AND (NOT $14::boolean OR c.flagged_oversight_at IS NOT NULL)"
    "  AND ($8::timestamptz IS NULL OR (coalesce(c.resolve_due_at, 'infinity'), c.id) >"
    "       ($8::timestamptz, $9::bigint))"
    "  AND ($11::text IS NULL OR c.names_official IS NULL OR"
    "       lower(regexp_replace(btrim(c.names_official), '\\s+', ' ', 'g'))"
    "       NOT IN (lower($11::text), lower(regexp_replace(btrim($12::text), '\\s+', ' ', 'g'))))"
    " ORDER BY coalesce(c.resolve_due_at, 'infinity'), c.id"
    " LIMIT $10::int";

static void inbox_done(PGresult *res, const char *err, void *arg)
{
    struct call *c = arg;
    if (err) {
        db_failed(c, err);
        call_free(c);
        return;
    }
    int limit = (int)c->case_id; /* stashed by do_inbox */
    int n = PQntuples(res);
    /* The rows are JSON objects made by PostgreSQL (json_build_object): spliced as they are,
     * not parsed and printed again. The cursor is ours (timestamp~id): no escaping needed. */
    struct rb_sbuf b = {0};
    rb_sbuf_puts(&b, "{\"cases\":[");
    for (int i = 0; i < n && i < limit; i++) {
        if (i)
            rb_sbuf_puts(&b, ",");
        rb_sbuf_puts(&b, PQgetvalue(res, i, 0));
    }
    rb_sbuf_puts(&b, "],\"next_cursor\":");
    if (n > limit) {
        rb_sbuf_puts(&b, "\"");
        rb_sbuf_puts(&b, PQgetvalue(res, limit - 1, 1));
        rb_sbuf_puts(&b, "\"}");
    } else {
        rb_sbuf_puts(&b, "null}");
    }
    rb_http_reply(c->req, 200, "application/json", b.p, b.n);
    free(b.p);
    call_free(c);
}

/* "2026-01-02T03:04:05.123456Z~42" or "infinity~42" → ts, id. 0 or -1. */
static int parse_cursor(const char *s, char ts[40], char id[24])
{
    const char *t = strrchr(s, '~');
    if (!t || t == s || (size_t)(t - s) >= 40 || strlen(t + 1) == 0 || strlen(t + 1) >= 24 ||
        strspn(t + 1, "0123456789") != strlen(t + 1))
        return -1;
    memcpy(ts, s, (size_t)(t - s));
    ts[t - s] = '\0';
    int y, mo, d, h, mi, se, us;
    char z;
    if (strcmp(ts, "infinity") != 0 &&
        (sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%6d%c", &y, &mo, &d, &h, &mi, &se, &us, &z) != 8 ||
         z != 'Z' || strlen(ts) != 27))
        return -1;
    snprintf(id, 24, "%s", t + 1);
    return 0;
}

/* The inbox filter naming something the configuration does not hold, or NULL: a typo answers
 * 400, not an empty inbox. */
static const char *unknown_filter(const struct rb_config *cfg, struct rb_http_req *req,
                                  int scoped)
{
    const char *v = rb_http_req_query(req, "service");
    if (v && !rb_config_service(cfg, v))
        return "service";
    v = rb_http_req_query(req, "district");
    if (v && !rb_config_district(cfg, v))
        return "district";
    v = rb_http_req_query(req, "department");
    if (!scoped && v && *v && !rb_config_department(cfg, v))
        return "department";
    return NULL;
}

static void do_inbox(struct call *c)
{
    struct rb_http_req *req = c->req;
    const struct rb_staff_user *u = &c->u;
    if (u->role == RB_STAFF_AGENT) {
        rb_http_reply_error(req, 403, "forbidden", "agents call citizens; they have no inbox");
        call_free(c);
        return;
    }
    char districts[RB_STAFF_DISTRICTS_CSV];
    int scoped = rb_staff_scoped(u, districts);
    const char *dept = scoped ? u->department : rb_http_req_query(req, "department");
    const char *bad = unknown_filter(c->a->srv->cfg, req, scoped);
    if (bad) {
        rb_http_reply_error(req, 400, "invalid_field", "%s \"%s\" is not in the configuration",
                            bad, rb_http_req_query(req, bad));
        goto out;
    }
    const char *status = rb_http_req_query(req, "status");
    enum rb_case_state st;
    if (status && rb_case_state_from_str(status, &st) != RB_OK) {
        rb_http_reply_error(req, 400, "invalid_field", "status \"%s\" is not a case status", status);
        goto out;
    }
    const char *prio = rb_http_req_query(req, "priority");
    if (prio && (strlen(prio) != 1 || prio[0] < '1' || prio[0] > '5')) {
        rb_http_reply_error(req, 400, "invalid_field", "priority is a number from 1 to 5");
        goto out;
    }
    const char *overdue = rb_http_req_query(req, "overdue");
    if (overdue && strcmp(overdue, "true") != 0 && strcmp(overdue, "false") != 0) {
        rb_http_reply_error(req, 400, "invalid_field", "overdue is true or false");
        goto out;
    }
    const char *esc = rb_http_req_query(req, "escalated"), *flag = rb_http_req_query(req, "flagged");
    if ((esc && strcmp(esc, "true") && strcmp(esc, "false")) ||
        (flag && strcmp(flag, "true") && strcmp(flag, "false"))) {
        rb_http_reply_error(req, 400, "invalid_field", "escalated and flagged are true or false");
        goto out;
    }
    const char *ls = rb_http_req_query(req, "limit");
    long limit = INBOX_DEFAULT;
    if (ls) {
        char *end;
        limit = strtol(ls, &end, 10);
        if (*end || !*ls || limit < 1 || limit > INBOX_MAX) {
            rb_http_reply_error(req, 400, "invalid_field", "limit is a number from 1 to %d",
                                INBOX_MAX);
            goto out;
        }
    }
    const char *cursor = rb_http_req_query(req, "cursor");
    char cts[40], cid[24];
    if (cursor && parse_cursor(cursor, cts, cid) != 0) {
        rb_http_reply_error(req, 400, "invalid_field", "cursor is not one this server gave out");
        goto out;
    }
    char lim[24];
    snprintf(lim, sizeof(lim), "%ld", limit + 1);
    c->case_id = limit;
    const char *p[14] = {
        dept && *dept ? dept : NULL,
        scoped && u->n_districts ? districts : NULL,
        status,
        rb_http_req_query(req, "service"),
        rb_http_req_query(req, "district"),
        prio,
        overdue && strcmp(overdue, "true") == 0 ? "true" : "false",
        cursor ? cts : NULL,
        cursor ? cid : NULL,
        lim,
        scoped ? u->username : NULL,
        scoped ? u->display_name : NULL,
        esc && !strcmp(esc, "true") ? "true" : "false",
        flag && !strcmp(flag, "true") ? "true" : "false",
    };
    if (rb_db_query(c->a->srv->db, inbox_sql, 14, p, inbox_done, c) != RB_OK) {
        rb_http_reply_busy(req);
        goto out;
    }
    return;
out:
    call_free(c);
}

/* ---- one case ------------------------------------------------------------------------------ */

/* $1 tracking. The scope columns, then the whole case as JSON: timeline with internal notes;
 * the citizen's contact only when they agreed, or when the case is neither anonymous nor about
 * a named official. */
static const char case_sql[] =
    "SELECT c.id, c.kind, c.status, c.department_id, c.district_id, c.names_official,"
    " json_build_object("
    "  'tracking_no', c.tracking_no, 'kind', c.kind, 'status', c.status,"
    "  'channel', c.channel, 'service', c.service_id, 'department', c.department_id,"
    "  'category', c.category, 'priority', c.priority, 'sla_policy', c.sla_policy,"
    "  'district', c.district_id, 'text', c.text, 'language', c.language,"
    "  'lat', c.lat, 'long', c.long, 'anonymous', c.anonymous,"
    "  'share_contact', c.share_contact, 'names_official', c.names_official,"
    "  'rating', c.rating, 'escalation_level', c.escalation_level,"
    "  'assigned_to', s.username,"
    "  'created_at', to_char(c.created_at AT TIME ZONE 'UTC', " TS_FMT "),"
    "  'updated_at', to_char(c.updated_at AT TIME ZONE 'UTC', " TS_FMT "),"
    "  'ack_due_at', to_char(c.ack_due_at AT TIME ZONE 'UTC', " TS_FMT "),"
    "  'resolve_due_at', to_char(c.resolve_due_at AT TIME ZONE 'UTC', " TS_FMT "),"
    "  'acknowledged_at', to_char(c.acknowledged_at AT TIME ZONE 'UTC', " TS_FMT "),"
    "  'resolved_at', to_char(c.resolved_at AT TIME ZONE 'UTC', " TS_FMT "),"
    "  'closed_at', to_char(c.closed_at AT TIME ZONE 'UTC', " TS_FMT "),"
    "  'overdue', coalesce(c.resolve_due_at < now() AND c.status IN ('routed', 'acknowledged',"
    "    'in_progress', 'awaiting_citizen', 'transferred', 'reopened'), false),"
    "  'sla', rabta_sla_view(c.status, c.resolve_due_at, c.paused_at),"
    "  'contact_hidden', NOT " RB_SQL_CONTACT_VISIBLE ","
    "  'citizen', CASE WHEN z.id IS NOT NULL AND " RB_SQL_CONTACT_VISIBLE
    "    THEN json_build_object('phone', z.phone, 'email', z.email, 'name', z.name) END,"
    "  'timeline', (SELECT coalesce(json_agg(json_build_object("
    "      'at', to_char(e.at AT TIME ZONE 'UTC', " TS_FMT "), 'actor_type', e.actor_type,"
    "      'actor', CASE WHEN e.actor_type <> 'citizen' THEN e.actor_id END,"
    "      'event', e.event, 'from_status', e.from_status,"
    "      'to_status', e.to_status, 'note', e.note,"
    "      'data', CASE WHEN " RB_SQL_CONTACT_VISIBLE " THEN e.data ELSE e.data"
    "        - '{first_name,last_name,phone,email}'::text[] #- '{origin,first_name}'"
    "        #- '{origin,last_name}' #- '{origin,phone}' #- '{origin,email}' END,"
    "      'internal', coalesce(e.data->>'internal', '') = 'true') ORDER BY e.id), '[]')"
    "    FROM case_events e WHERE e.case_id = c.id)"
    " )::text"
    " FROM cases c LEFT JOIN staff s ON s.id = c.assigned_staff_id"
    " LEFT JOIN citizens z ON z.id = c.citizen_id"
    " WHERE c.tracking_no = $1::text";

static void run_op(struct call *c);

static void case_loaded(PGresult *res, const char *err, void *arg)
{
    struct call *c = arg;
    if (err) {
        db_failed(c, err);
        call_free(c);
        return;
    }
    if (PQntuples(res) != 1 || rb_case_kind_from_str(PQgetvalue(res, 0, 1), &c->kind) != RB_OK ||
        rb_case_state_from_str(PQgetvalue(res, 0, 2), &c->status) != RB_OK) {
        not_found(c);
        call_free(c);
        return;
    }
    c->case_id = atoll(PQgetvalue(res, 0, 0));
    c->department = dup_value(res, 0, 3);
    c->district = dup_value(res, 0, 4);
    c->official = dup_value(res, 0, 5);
    int write = c->op != OP_CASE;
    int rc = rb_staff_scope(&c->u, c->department, c->district, c->official, write);
    if (rc == RB_ENOTFOUND) {
        not_found(c);
    } else if (rc != RB_OK) {
        rb_http_reply_error(c->req, 403, "forbidden",
                            "the %s role can read cases but not change them",
                            rb_staff_role_str(c->u.role));
    } else if (c->op == OP_CASE) {
        json_t *out = json_loads(PQgetvalue(res, 0, 6), 0, NULL);
        if (!out)
            rb_fatal("case row is not JSON");
        json_t *acts = json_array();
        unsigned bits = rb_case_actions(c->kind, c->status, RB_CASE_BY_STAFF);
        for (int a = 0; a < RB_CASE_ACTION_COUNT; a++)
            if (bits & (1u << a))
                json_array_append_new(acts, json_string(rb_case_action_str(a)));
        json_object_set_new(out, "allowed_actions", acts);
        rb_http_reply_json(c->req, 200, out);
    } else {
        run_op(c);
        return;
    }
    call_free(c);
}

/* ---- case actions -------------------------------------------------------------------------- */

/* $1 case  $2 event  $3 staff username  $4 note  $5 data  $6 assign to (staff id)  $7 assign?
 * $8 text for the citizen. Not a status change: notes, assignment, actions on officials. */
static const char note_sql[] =
    "WITH c AS (SELECT id, citizen_id, language FROM cases WHERE id = $1::bigint FOR UPDATE),"
    " a AS ("
    "  UPDATE cases SET assigned_staff_id = $6::bigint FROM c"
    "  WHERE cases.id = c.id AND $7::boolean RETURNING cases.id),"
    " ev AS ("
    "  INSERT INTO case_events (case_id, actor_type, actor_id, event, note, data)"
    "  SELECT id, 'staff', $3::text, $2::text, $4::text, $5::jsonb FROM c),"
    " r AS ("
    "  SELECT c.id, c.citizen_id, CASE WHEN z.phone IS NOT NULL THEN 'sms' ELSE 'email' END"
    "    AS channel, coalesce(z.phone, z.email) AS to_address,"
    "    CASE WHEN c.language IN ('ur', 'en') THEN c.language ELSE z.language END AS language"
    "  FROM c JOIN citizens z ON z.id = c.citizen_id"
    "  WHERE $8::text IS NOT NULL AND coalesce(z.phone, z.email) IS NOT NULL),"
    " msg AS MATERIALIZED ("
    "  SELECT * FROM rabta_message_queue((SELECT array_agg(channel) FROM r),"
    "    (SELECT array_agg(to_address) FROM r), (SELECT array_agg($8::text) FROM r),"
    "    case_id => (SELECT array_agg(id) FROM r),"
    "    citizen_id => (SELECT array_agg(citizen_id) FROM r),"
    "    language => (SELECT array_agg(language) FROM r)))"
    " SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM msg), (SELECT count(*) FROM a)";

static void written(PGresult *res, const char *err, void *arg)
{
    struct call *c = arg;
    if (err) {
        db_failed(c, err);
    } else if (strcmp(PQgetvalue(res, 0, 0), "1") != 0) {
        rb_http_reply_error(c->req, 409, "conflict",
                            "case %s changed while you were acting on it; reload it and try "
                            "again", c->tracking);
    } else {
        int transition = ops[c->op].transition;
        const char *status = rb_case_state_str(transition ? c->to : c->status);
        json_t *out = json_pack("{s:s, s:s, s:s, s:b}", "tracking_no", c->tracking, "event",
                                c->op == OP_ACTIONS ? "official.action"
                                : c->op == OP_COMMENT ? "note"
                                                      : ops[c->op].path,
                                "status", status, "message_queued",
                                strcmp(PQgetvalue(res, 0, 1), "0") != 0);
        if (transition)
            json_object_set_new(out, "from_status",
                                json_string(rb_case_state_str(c->status)));
        rb_info(rb_http_req_id(c->req), "case %s: %s by %s", c->tracking, ops[c->op].path,
                c->u.username);
        rb_http_reply_json(c->req, c->op == OP_COMMENT || c->op == OP_ACTIONS ? 201 : 200, out);
    }
    call_free(c);
}

static void submit(struct call *c, const char *sql, int n, const char *const *p)
{
    if (rb_db_query(c->a->srv->db, sql, n, p, written, c) != RB_OK) {
        rb_http_reply_busy(c->req);
        call_free(c);
    }
}

static void do_transition(struct call *c)
{
    const char *why = NULL;
    const char *text = body_text(c, ops[c->op].field);
    if (!text && c->op != OP_ASK && c->op != OP_ANSWER)
        text = body_text(c, "reason");
    if (!text)
        text = body_text(c, "note");
    const char *new_dept = NULL;
    if (c->op == OP_TRANSFER) {
        new_dept = body_str(c, "department");
        if (!new_dept) {
            rb_http_reply_error(c->req, 400, "missing_field",
                                "transfer needs department (where the case goes) and reason");
            call_free(c);
            return;
        }
        if (!rb_config_department(c->a->srv->cfg, new_dept)) {
            rb_http_reply_error(c->req, 422, "unknown_department",
                                "department \"%s\" is not one of the configured departments",
                                new_dept ? new_dept : "");
            call_free(c);
            return;
        }
        if (c->department && strcmp(new_dept, c->department) == 0) {
            rb_http_reply_error(c->req, 409, "invalid_transition",
                                "case %s is already with %s", c->tracking, new_dept);
            call_free(c);
            return;
        }
    }
    char *data = NULL;
    if (new_dept) {
        json_t *d = json_pack("{s:s?, s:s}", "from_department", c->department, "to_department",
                              new_dept);
        data = json_dumps(d, JSON_COMPACT);
        json_decref(d);
    }
    /* the step, its event and any SMS to the citizen: case_act.c, shared with departments'
     * own systems */
    const struct rb_case_step step = {
        .case_id = c->case_id, .kind = c->kind, .from = c->status, .action = ops[c->op].action,
        .event = ops[c->op].path, .actor_type = "staff", .actor_id = c->u.username,
        .text = text, .data_json = data, .to_department = new_dept,
    };
    int rc = rb_case_step_apply(c->a->srv->db, &step, &c->to, &why, written, c);
    free(data);
    if (rc == RB_ECASE_REASON) {
        rb_http_reply_error(c->req, 400, "missing_field", "%s (send it as \"%s\")", why,
                            ops[c->op].field);
        call_free(c);
    } else if (rc == RB_EINVAL || rc == RB_ECASE_ACTOR) {
        rb_http_reply_error(c->req, 409, "invalid_transition", "%s", why ? why : "not allowed");
        call_free(c);
    } else if (rc != RB_OK) {
        rb_http_reply_busy(c->req);
        call_free(c);
    }
}

static void assign_target(PGresult *res, const char *err, void *arg)
{
    struct call *c = arg;
    if (err) {
        db_failed(c, err);
        call_free(c);
        return;
    }
    const char *target = body_str(c, "username");
    if (PQntuples(res) != 1) {
        rb_http_reply_error(c->req, 422, "unknown_staff", "there is no active staff member \"%s\"",
                            target);
    } else if (!c->department || strcmp(PQgetvalue(res, 0, 2), c->department) != 0 ||
               (strcmp(PQgetvalue(res, 0, 3), "officer") != 0 &&
                strcmp(PQgetvalue(res, 0, 3), "supervisor") != 0)) {
        rb_http_reply_error(c->req, 409, "wrong_department",
                            "%s does not work in the department that holds case %s", target,
                            c->tracking);
    } else if (rb_staff_names_match(c->official, PQgetvalue(res, 0, 1), target)) {
        rb_http_reply_error(c->req, 409, "names_official",
                            "case %s is about %s: it cannot be assigned to them", c->tracking,
                            target);
    } else {
        char id[24];
        snprintf(id, sizeof(id), "%lld", c->case_id);
        json_t *d = json_pack("{s:s}", "assigned_to", target);
        char *data = json_dumps(d, JSON_COMPACT);
        json_decref(d);
        const char *p[8] = {id, "assigned", c->u.username, NULL, data, PQgetvalue(res, 0, 0),
                            "true", NULL};
        submit(c, note_sql, 8, p);
        free(data);
        return;
    }
    call_free(c);
}

static void do_assign(struct call *c)
{
    const char *target = body_str(c, "username");
    if (!target || !*target || strlen(target) > 64) {
        rb_http_reply_error(c->req, 400, "missing_field", "assign needs the username to assign to");
    } else if (rb_staff_may_assign(&c->u, target) != RB_OK) {
        rb_http_reply_error(c->req, 403, "forbidden",
                            "an officer may take a case but not assign it to someone else");
    } else if (!rb_case_state_is_open(c->status)) {
        rb_http_reply_error(c->req, 409, "invalid_transition",
                            "cannot assign a case that is %s", rb_case_state_str(c->status));
    } else {
        const char *p[1] = {target};
        if (rb_db_query(c->a->srv->db,
                        "SELECT id, display_name, coalesce(department_id, ''), role FROM staff "
                        "WHERE username = $1::text AND disabled_at IS NULL",
                        1, p, assign_target, c) == RB_OK)
            return;
        rb_http_reply_busy(c->req);
    }
    call_free(c);
}

static void do_comment(struct call *c)
{
    const char *text = body_text(c, "text");
    json_t *ji = c->body ? json_object_get(c->body, "internal") : NULL;
    if (!text || (ji && !json_is_boolean(ji))) {
        rb_http_reply_error(c->req, 400, text ? "invalid_field" : "missing_field",
                            "a comment needs text (at most %d characters) and internal: true or "
                            "false",
                            TEXT_MAX);
        call_free(c);
        return;
    }
    /* Unless told otherwise a note stays inside: nothing reaches a citizen by accident. */
    int internal = ji ? json_is_true(ji) : 1;
    if (!internal && rb_case_state_is_terminal(c->status)) {
        rb_http_reply_error(c->req, 409, "invalid_transition",
                            "cannot write to the citizen about a case that %s",
                            "has been rejected");
        call_free(c);
        return;
    }
    char id[24];
    snprintf(id, sizeof(id), "%lld", c->case_id);
    const char *p[8] = {id,    "note", c->u.username,  text,
                        internal ? "{\"internal\": true}" : "{\"internal\": false}",
                        NULL,  "false", internal ? NULL : text};
    submit(c, note_sql, 8, p);
}

/* $1 case  $2 staff username  $3 note  $4 official (a registered official's id)  $5 action
 * $6 staff id. The case event and the official's record of actions, in one statement. Answers
 * (the case found, 0, 0, the official found). */
static const char action_sql[] =
    "WITH f AS (SELECT id, name FROM officials WHERE id = $4),"
    " c AS (SELECT id FROM cases WHERE id = $1::bigint AND EXISTS (SELECT 1 FROM f)"
    "  FOR UPDATE),"
    " ev AS ("
    "  INSERT INTO case_events (case_id, actor_type, actor_id, event, note, data)"
    "  SELECT c.id, 'staff', $2, 'official.action', $3, jsonb_build_object('official', f.id,"
    "    'official_name', f.name, 'action', $5::text, 'internal', true) FROM c, f),"
    " oa AS ("
    "  INSERT INTO official_actions (official_id, action, case_id, staff_id, note)"
    "  SELECT f.id, $5, c.id, $6::bigint, $3 FROM c, f)"
    " SELECT (SELECT count(*) FROM c), 0, 0, (SELECT count(*) FROM f)";

static void action_written(PGresult *res, const char *err, void *arg)
{
    struct call *c = arg;
    if (!err && strcmp(PQgetvalue(res, 0, 3), "0") == 0) {
        rb_http_reply_error(c->req, 400, "invalid_field",
                            "official must be the id of a registered official "
                            "(GET /api/v1/staff/officials)");
        call_free(c);
        return;
    }
    written(res, err, arg);
}

static void do_actions(struct call *c)
{
    const char *official = body_text(c, "official");
    const char *action = body_str(c, "action");
    const char *note = body_text(c, "note");
    int known = 0;
    for (size_t i = 0; action && i < RB_ARRAY_LEN(official_actions); i++)
        known |= strcmp(action, official_actions[i]) == 0;
    if (rb_staff_may_act_on_official(&c->u) != RB_OK) {
        rb_http_reply_error(c->req, 403, "forbidden",
                            "actions against officials are recorded by supervisors and "
                            "administrators");
    } else if (!official || !known) {
        rb_http_reply_error(c->req, 400, !official || !action ? "missing_field" : "invalid_field",
                            "actions needs official (a registered official's id) and action: "
                            "warning, show_cause, coaching or suspension");
    } else {
        char id[24], sid[24];
        snprintf(id, sizeof(id), "%lld", c->case_id);
        snprintf(sid, sizeof(sid), "%lld", c->u.id);
        const char *p[6] = {id, c->u.username, note, official, action, sid};
        if (rb_db_query(c->a->srv->db, action_sql, 6, p, action_written, c) != RB_OK) {
            rb_http_reply_busy(c->req);
            call_free(c);
        }
        return;
    }
    call_free(c);
}

static void run_op(struct call *c)
{
    if (clean_texts(c) != 0) {
        call_free(c);
        return;
    }
    switch (c->op) {
    case OP_ASSIGN:
        do_assign(c);
        break;
    case OP_COMMENT:
        do_comment(c);
        break;
    case OP_ACTIONS:
        do_actions(c);
        break;
    default:
        do_transition(c);
        break;
    }
}

/* ---- the common door: token → staff member → operation ------------------------------------ */

static void authed(const struct rb_staff_user *u, const char *err, void *arg)
{
    struct call *c = arg;
    if (err) {
        db_failed(c, err);
        call_free(c);
        return;
    }
    if (!u) {
        rb_http_reply_error(c->req, 401, "unauthorized",
                            "the token is unknown, expired or revoked: sign in again");
        call_free(c);
        return;
    }
    c->u = *u;
    switch (c->op) {
    case OP_LOGOUT:
        do_logout(c);
        return;
    case OP_ME:
        do_me(c);
        return;
    case OP_INBOX:
        do_inbox(c);
        return;
    default:
        break;
    }
    if (c->bad_tracking) {
        rb_http_reply_error(c->req, 400, "invalid_tracking_number",
                            "that is not a tracking number (they look like RB-7K2QD-M9XRT-4)");
        call_free(c);
        return;
    }
    const char *p[1] = {c->tracking};
    if (rb_db_query(c->a->srv->db, case_sql, 1, p, case_loaded, c) != RB_OK) {
        rb_http_reply_busy(c->req);
        call_free(c);
    }
}

/* The request's bearer token, or NULL after answering 401. Borrowed from the request. */
static const char *bearer(struct rb_http_req *req)
{
    const char *h = rb_http_req_header(req, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        rb_http_add_header(req, "WWW-Authenticate", "Bearer");
        rb_http_reply_error(req, 401, "unauthorized",
                            "sign in first: POST /api/v1/staff/login, then send "
                            "Authorization: Bearer TOKEN");
        return NULL;
    }
    const char *token = h + 7;
    while (*token == ' ')
        token++;
    return token;
}

static void on_request(struct rb_http_req *req, void *arg)
{
    struct op_route *r = arg;
    const char *token = bearer(req);
    if (!token)
        return;
    struct call *c = rb_calloc(1, sizeof(*c));
    c->a = r->a;
    c->req = req;
    c->op = r->op;
    snprintf(c->token, sizeof(c->token), "%s", token);
    if (r->op >= OP_CASE) {
        const char *tn = rb_http_req_param(req, "tracking");
        char canon[RB_TRACKING_LEN];
        /* answered after authentication: an anonymous caller learns nothing */
        c->bad_tracking = !tn || rb_tracking_parse(tn, canon) != RB_OK;
        snprintf(c->tracking, sizeof(c->tracking), "%s", c->bad_tracking ? "?" : canon);
    }
    if (r->op > OP_CASE) {
        size_t len = 0;
        rb_http_req_body(req, &len);
        if (len == 0) {
            c->body = json_object();
        } else if (!(c->body = rb_http_req_json(req))) {
            call_free(c);
            return;
        }
    }
    int rc = strlen(token) == RB_STAFF_TOKEN_LEN
                 ? rb_staff_auth(c->a->staff, c->token, authed, c)
                 : RB_EINVAL;
    if (rc == RB_EINVAL) {
        rb_http_reply_error(req, 401, "unauthorized",
                            "the token is unknown, expired or revoked: sign in again");
        call_free(c);
    } else if (rc != RB_OK) {
        rb_http_reply_busy(req);
        call_free(c);
    }
}

/* ---- the door for staff routes outside this file (core/staff/reports.c) -------------------------- */

struct door {
    struct rb_http_req *req;
    rb_staff_api_authed_fn fn;
    void *arg;
    char token[RB_STAFF_TOKEN_LEN + 1];
};

static void door_authed(const struct rb_staff_user *u, const char *err, void *arg)
{
    struct door *d = arg;
    if (err) {
        rb_warn(rb_http_req_id(d->req), "staff api: database: %s", err);
        rb_http_reply_error(d->req, 503, "unavailable",
                            "the database did not answer; nothing was changed, try again");
    } else if (!u) {
        rb_http_reply_error(d->req, 401, "unauthorized",
                            "the token is unknown, expired or revoked: sign in again");
    }
    d->fn(d->req, err ? NULL : u, d->arg);
    sodium_memzero(d->token, sizeof(d->token));
    free(d);
}

void rb_staff_api_authenticate(struct rb_http_req *req, rb_staff_api_authed_fn fn, void *arg)
{
    const char *token = live ? bearer(req) : NULL;
    if (!live)
        rb_http_reply_busy(req);
    else if (token && strlen(token) != RB_STAFF_TOKEN_LEN)
        rb_http_reply_error(req, 401, "unauthorized",
                            "the token is unknown, expired or revoked: sign in again");
    if (!token || strlen(token) != RB_STAFF_TOKEN_LEN) {
        fn(req, NULL, arg);
        return;
    }
    struct door *d = rb_calloc(1, sizeof(*d));
    d->req = req;
    d->fn = fn;
    d->arg = arg;
    memcpy(d->token, token, RB_STAFF_TOKEN_LEN);
    int rc = rb_staff_auth(live->staff, d->token, door_authed, d);
    if (rc == RB_EINVAL)
        rb_http_reply_error(req, 401, "unauthorized",
                            "the token is unknown, expired or revoked: sign in again");
    else if (rc != RB_OK)
        rb_http_reply_busy(req);
    if (rc != RB_OK) {
        fn(req, NULL, arg);
        free(d);
    }
}

struct rb_staff *rb_staff_api_pool(void)
{
    return live ? live->staff : NULL;
}

int rb_staff_api_init(struct rb_server *srv)
{
    if (live) {
        rb_error("staff", "the staff API is already initialised");
        return RB_ERR;
    }
    struct rb_staff *st = rb_staff_new(srv->base, srv->db);
    if (!st)
        return RB_ERR;
    struct staff_api *a = rb_calloc(1, sizeof(*a));
    a->srv = srv;
    a->staff = st;
    for (int i = 0; i < OP_COUNT; i++) {
        a->routes[i].a = a;
        a->routes[i].op = (enum op)i;
    }
    live = a;
    struct rb_http *h = srv->http;
    int rc = rb_http_route(h, RB_HTTP_POST, "/api/v1/staff/login", on_login,
                           &a->routes[OP_LOGIN]);
    if (rc == RB_OK)
        rc = rb_http_route(h, RB_HTTP_POST, "/api/v1/staff/logout", on_request,
                           &a->routes[OP_LOGOUT]);
    if (rc == RB_OK)
        rc = rb_http_route(h, RB_HTTP_GET, "/api/v1/staff/me", on_request, &a->routes[OP_ME]);
    if (rc == RB_OK)
        rc = rb_http_route(h, RB_HTTP_GET, "/api/v1/staff/inbox", on_request,
                           &a->routes[OP_INBOX]);
    if (rc == RB_OK)
        rc = rb_http_route(h, RB_HTTP_GET, "/api/v1/staff/cases/:tracking", on_request,
                           &a->routes[OP_CASE]);
    for (int i = OP_CASE + 1; rc == RB_OK && i < OP_COUNT; i++) {
        char path[96];
        snprintf(path, sizeof(path), "/api/v1/staff/cases/:tracking/%s", ops[i].path);
        rc = rb_http_route(h, RB_HTTP_POST, path, on_request, &a->routes[i]);
    }
    if (rc != RB_OK) {
        rb_error("staff", "cannot register the staff routes");
        return RB_ERR;
    }
    return RB_OK;
}

void rb_staff_api_free(void)
{
    if (!live)
        return;
    rb_staff_free(live->staff);
    free(live);
    live = NULL;
}
