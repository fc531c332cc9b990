/* Notifications and contact details under the staff API (staff_notify.h). */
#include "staff/staff_notify.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/phone.h"
#include "base/process.h"
#include "db/db.h"
#include "net/http.h"
#include "staff/staff_account.h"
#include "staff/staff_api.h"

#define TS_FMT "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"
#define LIST_DEFAULT 50
#define LIST_MAX 200

/* $1 staff id  $2 unread only  $3 before id (NULL: newest)  $4 limit + 1. One row: the unread
 * count and the page as a JSON array, newest first. A notification's id is its case event's
 * (one per person and event: the table's key). */
static const char list_sql[] =
    "SELECT (SELECT count(*) FROM staff_notifications WHERE staff_id = $1::bigint"
    "   AND read_at IS NULL),"
    " (SELECT coalesce(json_agg(x.o ORDER BY x.id DESC), '[]')::text FROM ("
    "  SELECT n.event_id AS id, json_build_object('id', n.event_id, 'kind', n.kind,"
    "   'level', n.level,"
    "   'tracking_no', c.tracking_no, 'department', c.department_id, 'service', c.service_id,"
    "   'text', n.body, 'read', n.read_at IS NOT NULL,"
    "   'created_at', to_char(n.created_at AT TIME ZONE 'UTC', " TS_FMT "),"
    "   'read_at', to_char(n.read_at AT TIME ZONE 'UTC', " TS_FMT ")) AS o"
    "  FROM staff_notifications n JOIN cases c ON c.id = n.case_id"
    "  WHERE n.staff_id = $1::bigint AND (NOT $2::boolean OR n.read_at IS NULL)"
    "   AND ($3::bigint IS NULL OR n.event_id < $3::bigint)"
    "  ORDER BY n.event_id DESC LIMIT $4::int) x)";

struct call {
    struct rb_server *srv; /* borrowed */
    struct rb_http_req *req;
    int limit;
    char id[24];  /* the notification, for read */
    char username[65];
};

/* Sends sql with n params, fn answers; frees c and answers 503 when it cannot be queued. */
static void send_query(struct call *c, const char *sql, int n, const char *const *p, rb_db_fn fn)
{
    if (rb_db_query(c->srv->db, sql, n, p, fn, c) != RB_OK) {
        rb_http_reply_busy(c->req);
        free(c);
    }
}

static int db_error(struct call *c, const char *err)
{
    if (!err)
        return 0;
    rb_warn(rb_http_req_id(c->req), "staff notifications: database: %s", err);
    rb_http_reply_error(c->req, 503, "unavailable",
                        "the database did not answer; nothing was changed, try again");
    free(c);
    return 1;
}

static void listed(PGresult *res, const char *err, void *arg)
{
    struct call *c = arg;
    if (db_error(c, err))
        return;
    json_t *page = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    if (!page)
        rb_fatal("notifications page is not JSON");
    json_t *next = json_null();
    if ((int)json_array_size(page) > c->limit) {
        json_array_remove(page, (size_t)c->limit);
        next = json_copy(json_object_get(json_array_get(page, (size_t)c->limit - 1), "id"));
    }
    rb_http_reply_json(c->req, 200, json_pack("{s:o, s:I, s:o}", "notifications", page,
                                              "unread", (json_int_t)atoll(PQgetvalue(res, 0, 0)),
                                              "next_before", next));
    free(c);
}

/* A whole number in 1..max from the query, or -1 (absent: def). */
static long query_num(struct rb_http_req *req, const char *name, long def, long max)
{
    const char *s = rb_http_req_query(req, name);
    if (!s)
        return def;
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v >= 1 && v <= max ? v : -1;
}

static void list_authed(struct rb_http_req *req, const struct rb_staff_user *u, void *arg)
{
    struct call *c = arg;
    if (!u) {
        free(c);
        return;
    }
    const char *unread = rb_http_req_query(req, "unread");
    long limit = query_num(req, "limit", LIST_DEFAULT, LIST_MAX);
    long before = query_num(req, "before", 0, 0x7fffffffffffffffL);
    if ((unread && strcmp(unread, "true") && strcmp(unread, "false")) || limit < 0 ||
        before < 0) {
        rb_http_reply_error(req, 400, "invalid_field",
                            "unread is true or false, limit a number from 1 to %d, before a "
                            "notification id", LIST_MAX);
        free(c);
        return;
    }
    c->limit = (int)limit;
    char sid[24], bs[24], lim[24];
    snprintf(sid, sizeof(sid), "%lld", u->id);
    snprintf(bs, sizeof(bs), "%ld", before);
    snprintf(lim, sizeof(lim), "%ld", limit + 1);
    const char *p[4] = {sid, unread && !strcmp(unread, "true") ? "true" : "false",
                        before ? bs : NULL, lim};
    send_query(c, list_sql, 4, p, listed);
}

static void marked(PGresult *res, const char *err, void *arg)
{
    struct call *c = arg;
    if (db_error(c, err))
        return;
    if (PQntuples(res) != 1)
        rb_http_reply_error(c->req, 404, "not_found", "you have no notification %s", c->id);
    else
        rb_http_reply_json(c->req, 200, json_pack("{s:I, s:b, s:s}", "id",
                                                  (json_int_t)atoll(c->id), "read", 1,
                                                  "read_at", PQgetvalue(res, 0, 0)));
    free(c);
}

static void read_authed(struct rb_http_req *req, const struct rb_staff_user *u, void *arg)
{
    struct call *c = arg;
    if (!u) {
        free(c);
        return;
    }
    if (!c->id[0]) {
        rb_http_reply_error(req, 404, "not_found", "that is not a notification id");
        free(c);
        return;
    }
    char sid[24];
    snprintf(sid, sizeof(sid), "%lld", u->id);
    const char *p[2] = {c->id, sid};
    send_query(c,
               "UPDATE staff_notifications SET read_at = coalesce(read_at, now())"
               " WHERE event_id = $1::bigint AND staff_id = $2::bigint"
               " RETURNING to_char(read_at AT TIME ZONE 'UTC', " TS_FMT ")",
               2, p, marked);
}

/* ---- PATCH /api/v1/staff/accounts/:username ------------------------------------------------ */

static void patched(PGresult *res, const char *err, void *arg)
{
    struct call *c = arg;
    if (db_error(c, err))
        return;
    if (PQntuples(res) != 1) {
        rb_http_reply_error(c->req, 404, "not_found", "there is no staff member \"%s\"",
                            c->username);
    } else {
        json_t *out = json_pack("{s:s}", "username", c->username);
        json_object_set_new(out, "phone", PQgetisnull(res, 0, 0)
                                              ? json_null()
                                              : json_string(PQgetvalue(res, 0, 0)));
        json_object_set_new(out, "email", PQgetisnull(res, 0, 1)
                                              ? json_null()
                                              : json_string(PQgetvalue(res, 0, 1)));
        rb_info(rb_http_req_id(c->req), "staff %s: contact details changed", c->username);
        rb_http_reply_json(c->req, 200, out);
    }
    free(c);
}

/* The body's member name: absent (0), null (1, *v NULL) or a string (1). -1: anything else. */
static int contact_field(json_t *body, const char *name, const char **v)
{
    json_t *j = json_object_get(body, name);
    *v = NULL;
    if (!j)
        return 0;
    if (json_is_null(j))
        return 1;
    if (!json_is_string(j))
        return -1;
    *v = json_string_value(j);
    return 1;
}

static void account_authed(struct rb_http_req *req, const struct rb_staff_user *u, void *arg)
{
    struct call *c = arg;
    if (!u) {
        free(c);
        return;
    }
    if (u->role != RB_STAFF_ADMIN) {
        rb_http_reply_error(req, 403, "forbidden", "only administrators change staff accounts");
        free(c);
        return;
    }
    json_t *body = rb_http_req_json(req);
    if (!body) { /* answered */
        free(c);
        return;
    }
    const char *phone, *email, *why = NULL;
    char e164[RB_PHONE_MAX] = "";
    int hp = contact_field(body, "phone", &phone), he = contact_field(body, "email", &email);
    if (hp < 0 || he < 0 || (!hp && !he)) {
        rb_http_reply_error(req, 400, "invalid_field",
                            "send phone and/or email, each a string or null (null clears it)");
    } else if (phone && rb_phone_normalize(phone, e164, &why) != RB_OK) {
        rb_http_reply_error(req, 422, "invalid_phone",
                            "phone \"%s\" is not a phone number (it %s); write it such as "
                            "0300 1234567 or +92 300 1234567", phone, why ? why : "is malformed");
    } else if (email && rb_staff_email_check(email) != RB_OK) {
        rb_http_reply_error(req, 422, "invalid_email",
                            "email \"%s\" is not an e-mail address such as name@punjab.gov.pk",
                            email);
    } else {
        const char *p[5] = {c->username, hp ? "true" : "false", phone ? e164 : NULL,
                            he ? "true" : "false", email};
        send_query(c,
                   "UPDATE staff SET phone = CASE WHEN $2::boolean THEN $3::text ELSE phone END,"
                   " email = CASE WHEN $4::boolean THEN $5::text ELSE email END"
                   " WHERE username = $1::text RETURNING phone, email",
                   5, p, patched);
        json_decref(body);
        return;
    }
    json_decref(body);
    free(c);
}

/* ---- routes -------------------------------------------------------------------------------- */

static struct call *call_new(struct rb_server *srv, struct rb_http_req *req)
{
    struct call *c = rb_calloc(1, sizeof(*c));
    c->srv = srv;
    c->req = req;
    return c;
}

static void on_list(struct rb_http_req *req, void *arg)
{
    rb_staff_api_authenticate(req, list_authed, call_new(arg, req));
}

static void on_read(struct rb_http_req *req, void *arg)
{
    struct call *c = call_new(arg, req);
    const char *id = rb_http_req_param(req, "id");
    if (id && *id && strlen(id) < 19 && strspn(id, "0123456789") == strlen(id))
        snprintf(c->id, sizeof(c->id), "%s", id);
    rb_staff_api_authenticate(req, read_authed, c);
}

static void on_account(struct rb_http_req *req, void *arg)
{
    struct call *c = call_new(arg, req);
    const char *name = rb_http_req_param(req, "username");
    snprintf(c->username, sizeof(c->username), "%s", name ? name : "");
    rb_staff_api_authenticate(req, account_authed, c);
}

int rb_staff_notify_init(struct rb_server *srv)
{
    struct rb_http *h = srv->http;
    if (rb_http_route(h, RB_HTTP_GET, "/api/v1/staff/notifications", on_list, srv) != RB_OK ||
        rb_http_route(h, RB_HTTP_POST, "/api/v1/staff/notifications/:id/read", on_read, srv) !=
            RB_OK ||
        rb_http_route(h, RB_HTTP_PATCH, "/api/v1/staff/accounts/:username", on_account, srv) !=
            RB_OK) {
        rb_error("staff", "cannot register the notification routes");
        return RB_ERR;
    }
    return RB_OK;
}
