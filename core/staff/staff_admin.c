/* Staff accounts under the staff API, for administrators (staff_admin.h). The rules and the
 * statements are the CLI's (rb_staff_account_check, rb_staff_add_sql, ...); passwords are
 * hashed on the password pool's threads, never on the loop. */
#include "staff/staff_admin.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "db/db.h"
#include "net/http.h"
#include "base/process.h"
#include "staff/staff_account.h"
#include "staff/staff_api.h"

static const char list_sql[] =
    "SELECT coalesce(json_agg(json_build_object('username', username, 'display_name',"
    "  display_name, 'role', role, 'department', department_id, 'districts', districts,"
    "  'phone', phone, 'email', email, 'disabled', disabled_at IS NOT NULL,"
    "  'state', CASE WHEN disabled_at IS NOT NULL THEN 'disabled'"
    "   WHEN locked_until > now() THEN 'locked'"
    "   WHEN password_hash IS NULL THEN 'no_password' ELSE 'active' END)"
    "  ORDER BY username), '[]')::text FROM staff";

enum verb { V_LIST, V_ADD, V_DISABLE, V_PASSWORD };

struct call {
    struct rb_server *srv; /* borrowed */
    struct rb_http_req *req;
    enum verb verb;
    char username[65];
    char password[RB_STAFF_PASSWORD_MAX + 1]; /* wiped before free */
    int generated;                            /* the answer shows the password once */
    struct rb_staff_account acc;              /* add: points into body */
    json_t *body;                             /* owned: add's request body */
    char districts[RB_STAFF_DISTRICTS_CSV + 2];
};

static void call_free(struct call *c)
{
    sodium_memzero(c->password, sizeof(c->password));
    json_decref(c->body);
    free(c);
}

static void answer_db_error(struct call *c, const char *err)
{
    rb_warn(rb_http_req_id(c->req), "staff accounts: database: %s", err);
    rb_http_reply_error(c->req, 503, "unavailable",
                        "the database did not answer; nothing was changed, try again");
}

static void send_query(struct call *c, const char *sql, int n, const char *const *p, rb_db_fn fn)
{
    if (rb_db_query(c->srv->db, sql, n, p, fn, c) != RB_OK) {
        rb_http_add_header(c->req, "Retry-After", "1");
        rb_http_reply_error(c->req, 503, "overloaded", "the server is busy; try again in a moment");
        call_free(c);
    }
}

static void listed(PGresult *res, const char *err, void *arg)
{
    struct call *c = arg;
    if (err) {
        answer_db_error(c, err);
    } else {
        json_t *v = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
        rb_http_reply_json(c->req, 200, json_pack("{s:o}", "accounts", v ? v : json_array()));
    }
    call_free(c);
}

/* The answer of add, disable and password: one row, or none (taken / no such account). */
static void changed(PGresult *res, const char *err, void *arg)
{
    struct call *c = arg;
    const char *id = rb_http_req_id(c->req);
    if (err) {
        answer_db_error(c, err);
    } else if (PQntuples(res) != 1 && c->verb == V_ADD) {
        rb_http_reply_error(c->req, 409, "exists", "there is already a staff member \"%s\"",
                            c->username);
    } else if (PQntuples(res) != 1) {
        rb_http_reply_error(c->req, 404, "not_found", "there is no staff member \"%s\"",
                            c->username);
    } else if (c->verb == V_DISABLE) {
        rb_staff_forget_user(rb_staff_api_pool(), atoll(PQgetvalue(res, 0, 0)));
        rb_info(id, "staff %s: disabled by an administrator; sessions revoked", c->username);
        rb_http_reply_json(c->req, 200, json_pack("{s:s, s:b}", "username", c->username,
                                                  "disabled", 1));
    } else {
        if (c->verb == V_PASSWORD)
            rb_staff_forget_user(rb_staff_api_pool(), atoll(PQgetvalue(res, 0, 0)));
        rb_info(id, "staff %s: %s by an administrator", c->username,
                c->verb == V_ADD ? "added" : "password set; sessions revoked");
        json_t *out = json_pack("{s:s}", "username", c->username);
        if (c->generated)
            json_object_set_new(out, "password", json_string(c->password));
        rb_http_reply_json(c->req, c->verb == V_ADD ? 201 : 200, out);
    }
    call_free(c);
}

static void hashed(const char *hash, void *arg)
{
    struct call *c = arg;
    if (!hash) {
        rb_http_reply_error(c->req, 503, "unavailable", "hashing the password failed; try again");
        call_free(c);
        return;
    }
    if (c->verb == V_PASSWORD) {
        const char *p[2] = {c->username, hash};
        send_query(c, rb_staff_passwd_sql, 2, p, changed);
        return;
    }
    const struct rb_staff_account *a = &c->acc;
    const char *p[9] = {c->username, a->name ? a->name : "", hash, a->role, a->department,
                        c->districts, a->phone ? a->e164 : NULL, a->email, a->office};
    send_query(c, rb_staff_add_sql, 9, p, changed);
}

/* c->password from the body's "password" (at least RB_STAFF_PASSWORD_MIN characters), or a
 * generated one. 0, or -1 after answering 400. */
static int take_password(struct call *c, json_t *body)
{
    json_t *pw = json_object_get(body, "password");
    if (!pw || json_is_null(pw)) {
        rb_staff_password_new(c->password);
        c->generated = 1;
        return 0;
    }
    const char *s = json_string_value(pw);
    if (!s || strlen(s) < RB_STAFF_PASSWORD_MIN || strlen(s) > RB_STAFF_PASSWORD_MAX) {
        rb_http_reply_error(c->req, 400, "invalid_field",
                            "password is a string of %d to %d characters, or absent (then one "
                            "is made and shown once in the answer)",
                            RB_STAFF_PASSWORD_MIN, RB_STAFF_PASSWORD_MAX);
        return -1;
    }
    snprintf(c->password, sizeof(c->password), "%s", s);
    return 0;
}

/* The body's optional string field into *out. 0, or -1 (not a string). */
static int opt_str(json_t *body, const char *name, const char **out)
{
    json_t *j = json_object_get(body, name);
    *out = json_is_string(j) && *json_string_value(j) ? json_string_value(j) : NULL;
    return !j || json_is_null(j) || json_is_string(j) ? 0 : -1;
}

/* Reads add's body into c->acc and c->districts. 0, or -1 after answering. */
static int read_account(struct call *c)
{
    struct rb_staff_account *a = &c->acc;
    json_t *b = c->body;
    const char *user = NULL;
    int bad = opt_str(b, "username", &user) | opt_str(b, "role", &a->role) |
              opt_str(b, "department", &a->department) | opt_str(b, "display_name", &a->name) |
              opt_str(b, "phone", &a->phone) | opt_str(b, "email", &a->email) |
              opt_str(b, "office", &a->office);
    json_t *ds = json_object_get(b, "districts");
    char csv[RB_STAFF_DISTRICTS_CSV] = "";
    size_t i, n = 0;
    json_t *d;
    json_array_foreach(ds, i, d)
    {
        const char *s = json_string_value(d);
        bad |= !s || strlen(s) > 64 || n + strlen(s) + 2 > sizeof(csv) ? -1 : 0;
        if (s && n + strlen(s) + 2 <= sizeof(csv))
            n += (size_t)snprintf(csv + n, sizeof(csv) - n, "%s%s", n ? "," : "", s);
    }
    if (bad || (ds && !json_is_array(ds) && !json_is_null(ds))) {
        rb_http_reply_error(c->req, 400, "invalid_field",
                            "username, role, department, display_name, phone, email and office "
                            "are strings; districts a list of district ids");
        return -1;
    }
    if (!user || !rb_staff_username_ok(user)) {
        rb_http_reply_error(c->req, 400, "invalid_field",
                            "username is 1 to 64 letters, digits or . _ @ -");
        return -1;
    }
    snprintf(c->username, sizeof(c->username), "%s", user);
    a->username = c->username;
    a->districts = n ? csv : NULL;
    char why[512];
    int rc = rb_staff_account_check(c->srv->cfg, a, "", why, sizeof(why));
    a->districts = NULL; /* csv is about to go; the statement takes c->districts */
    if (rc != RB_OK) {
        rb_http_reply_error(c->req, 422, "invalid_account", "%s", why);
        return -1;
    }
    snprintf(c->districts, sizeof(c->districts), "{%s}", csv);
    return 0;
}

static void authed(struct rb_http_req *req, const struct rb_staff_user *u, void *arg)
{
    struct call *c = arg;
    if (!u) {
        call_free(c);
        return;
    }
    if (u->role != RB_STAFF_ADMIN) {
        rb_http_reply_error(req, 403, "forbidden", "only administrators manage staff accounts");
        call_free(c);
        return;
    }
    if (c->verb == V_LIST) {
        send_query(c, list_sql, 0, NULL, listed);
        return;
    }
    if (c->verb == V_DISABLE) {
        if (strcmp(u->username, c->username) == 0) {
            rb_http_reply_error(req, 409, "own_account",
                                "you cannot disable your own account; ask another administrator");
            call_free(c);
            return;
        }
        const char *p[1] = {c->username};
        send_query(c, rb_staff_disable_sql, 1, p, changed);
        return;
    }
    size_t len = 0;
    rb_http_req_body(req, &len);
    /* password may come without a body: a generated one */
    c->body = c->verb == V_PASSWORD && len == 0 ? json_object() : rb_http_req_json(req);
    if (!c->body || (c->verb == V_ADD && read_account(c) != 0) ||
        take_password(c, c->body) != 0) {
        call_free(c);
        return;
    }
    int rc = rb_staff_hash(rb_staff_api_pool(), c->password, hashed, c);
    if (rc != RB_OK) {
        rb_http_add_header(req, "Retry-After", "1");
        rb_http_reply_error(req, 503, "overloaded", "the server is busy; try again in a moment");
        call_free(c);
    }
}

static void on_request(struct rb_http_req *req, enum verb verb, void *srv)
{
    struct call *c = rb_calloc(1, sizeof(*c));
    c->srv = srv;
    c->req = req;
    c->verb = verb;
    const char *name = rb_http_req_param(req, "username");
    snprintf(c->username, sizeof(c->username), "%s", name ? name : "");
    rb_staff_api_authenticate(req, authed, c);
}

static void on_list(struct rb_http_req *req, void *arg)
{
    on_request(req, V_LIST, arg);
}

static void on_add(struct rb_http_req *req, void *arg)
{
    on_request(req, V_ADD, arg);
}

static void on_disable(struct rb_http_req *req, void *arg)
{
    on_request(req, V_DISABLE, arg);
}

static void on_password(struct rb_http_req *req, void *arg)
{
    on_request(req, V_PASSWORD, arg);
}

int rb_staff_admin_init(struct rb_server *srv)
{
    struct rb_http *h = srv->http;
    if (rb_http_route(h, RB_HTTP_GET, "/api/v1/staff/accounts", on_list, srv) != RB_OK ||
        rb_http_route(h, RB_HTTP_POST, "/api/v1/staff/accounts", on_add, srv) != RB_OK ||
        rb_http_route(h, RB_HTTP_POST, "/api/v1/staff/accounts/:username/disable", on_disable,
                      srv) != RB_OK ||
        rb_http_route(h, RB_HTTP_POST, "/api/v1/staff/accounts/:username/password",
                      on_password, srv) != RB_OK) {
        rb_error("staff", "cannot register the staff account routes");
        return RB_ERR;
    }
    return RB_OK;
}
