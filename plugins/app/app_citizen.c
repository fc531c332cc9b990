/* app plugin: a signed-in citizen's own cases.
 *
 *   GET  /api/v1/me/cases?limit=&before=          the citizen's cases, newest first
 *   GET  /api/v1/cases/:tracking/timeline         the case and its citizen-visible events
 *   POST /api/v1/cases/:tracking/comments {text}  a comment; the reply when one is awaited
 *   POST /api/v1/cases/:tracking/rating {rating, satisfied?, comment?}
 *
 * Only the case's own citizen sees or touches it; for anyone else it does not exist (404).
 *
 * State changes follow the state machine in core/cases/case_state.c, which a plugin cannot link:
 * each change is ONE statement that locks the case, updates it only if its status (and kind)
 * is one the machine allows for the action — UPDATE ... WHERE id = c.id AND status = <the
 * locked status> after a guard listing the allowed from-states — and inserts the case_events
 * rows, so the change and its history commit together or not at all. The guards mirror these
 * rows of the table (actor: citizen):
 *   awaiting_citizen  citizen_reply → in_progress   all kinds
 *   resolved          rate → closed                 complaint, feedback
 *                     reopen → reopened             complaint
 *   answered          rate → closed, reopen → reopened   information
 *   closed            rate → closed                 all kinds
 *                     reopen → reopened             complaint, information
 * Keep them in step with core/cases/case_state.c (tests/integration/test_app_cases.py walks them). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "app.h"

static const struct rb_host_api *api;

/* Refusal phrases of core/cases/case_state.h's RB_CASE_STATE_LIST, for 409 messages. */
static const char *state_phrase(const char *status)
{
    static const char *const phrases[][2] = {
        {"submitted", "has not been routed to a department yet"},
        {"routed", "is already with a department"},
        {"acknowledged", "has already been acknowledged"},
        {"in_progress", "is in progress"},
        {"awaiting_citizen", "is awaiting the citizen's reply"},
        {"resolved", "has been resolved"},
        {"answered", "has been answered"},
        {"closed", "is closed"},
        {"rejected", "has been rejected"},
        {"transferred", "is being transferred to another department"},
        {"reopened", "has been reopened"},
    };
    for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++)
        if (status && strcmp(phrases[i][0], status) == 0)
            return phrases[i][1];
    return "is in a state that does not allow it";
}

static void not_found(struct rb_http_req *req)
{
    api->reply_error(req, 404, "not_found", "you have no case with this tracking number");
}

/* The canonical tracking number of the :tracking segment into out, or answers 400. */
static int tracking_param(struct rb_http_req *req, char out[32])
{
    const char *why = NULL;
    if (api->tracking_parse(api->req_param(req, "tracking"), out, 32, &why) != RB_OK) {
        api->reply_error(req, 400, "invalid_tracking_number", "%s",
                         why ? why : "not a tracking number");
        return -1;
    }
    return 0;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* ---- GET /api/v1/me/cases ----------------------------------------------------------------- */

#define LIST_DEFAULT 20
#define LIST_MAX 100

/* $1 citizen  $2 cursor: tracking number of the last case of the previous page, or ''
 * $3 rows to fetch (limit + 1, to know whether there is a next page).
 * Always one row at least: column 0 says whether the cursor is one of the citizen's cases;
 * the case columns are NULL when the page is empty. */
static const char list_sql[] =
    "WITH b AS (SELECT created_at, id FROM rabta_citizen_cases"
    "  WHERE tracking_no = $2 AND citizen_id = $1::bigint),"
    " page AS ("
    "  SELECT c.id, c.created_at AS created, c.tracking_no, c.kind, c.status,"
    "    c.service_id, c.department_id,"
    "    to_char(c.created_at AT TIME ZONE 'UTC', " RB_APP_TS ") AS created_at,"
    "    to_char(c.updated_at AT TIME ZONE 'UTC', " RB_APP_TS ") AS updated_at,"
    "    to_char(c.resolve_due_at AT TIME ZONE 'UTC', " RB_APP_TS ") AS resolve_due_at,"
    "    c.sla"
    "  FROM rabta_citizen_cases c WHERE c.citizen_id = $1::bigint"
    "    AND ($2 = '' OR (c.created_at, c.id) < (SELECT created_at, id FROM b))"
    "  ORDER BY c.created_at DESC, c.id DESC LIMIT $3::int)"
    " SELECT $2 = '' OR EXISTS (SELECT 1 FROM b), p.tracking_no, p.kind, p.status,"
    "  p.service_id, p.department_id, p.created_at, p.updated_at, p.resolve_due_at, p.sla"
    " FROM (SELECT 1) one LEFT JOIN page p ON true ORDER BY p.created DESC, p.id DESC";

struct listing {
    struct rb_http_req *req;
    int limit;
};

static void listed(const struct rb_db_result *res, const char *err, void *arg)
{
    struct listing *l = arg;
    struct rb_http_req *req = l->req;
    int limit = l->limit;
    free(l);
    if (err || api->db_ntuples(res) < 1) {
        api->reply_error(req, 503, "unavailable", "your cases cannot be listed right now");
        return;
    }
    const char *ok = api->db_value(res, 0, 0);
    if (!ok || strcmp(ok, "t") != 0) {
        api->reply_error(req, 400, "invalid_cursor",
                         "\"before\" must be the tracking number of one of your cases, as "
                         "given in next_before");
        return;
    }
    json_t *cases = json_array();
    int n = api->db_ntuples(res);
    const char *last = NULL;
    for (int i = 0; i < n && i < limit; i++) {
        if (!api->db_value(res, i, 1))
            break; /* the empty page's single row */
        last = api->db_value(res, i, 1);
        json_array_append_new(
            cases, json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:o, s:o}", "tracking_no",
                             last, "kind", api->db_value(res, i, 2), "status",
                             api->db_value(res, i, 3), "service",
                             str_or_null(api->db_value(res, i, 4)), "department",
                             str_or_null(api->db_value(res, i, 5)), "created_at",
                             api->db_value(res, i, 6), "updated_at", api->db_value(res, i, 7),
                             "resolve_due_at", str_or_null(api->db_value(res, i, 8)), "sla",
                             rb_app_sla_json(api->db_value(res, i, 9))));
    }
    json_t *next = n > limit && last ? json_string(last) : json_null();
    rb_app_reply_json(req, 200, json_pack("{s:o, s:o}", "cases", cases, "next_before", next));
}

static void list_authed(struct rb_http_req *req, long long citizen, void *arg)
{
    const char *ls = api->req_query(req, "limit"), *before = api->req_query(req, "before");
    int limit = LIST_DEFAULT;
    if (ls) {
        char *end = NULL;
        long v = strtol(ls, &end, 10);
        if (!*ls || *end || ls[0] == '+' || ls[0] == '-' || ls[0] == ' ' || v < 1 ||
            v > LIST_MAX) {
            api->reply_error(req, 400, "invalid_query",
                             "\"limit\" must be a whole number from 1 to %d", LIST_MAX);
            return;
        }
        limit = (int)v;
    }
    char cursor[32] = "";
    if (before && *before) {
        const char *why = NULL;
        if (api->tracking_parse(before, cursor, sizeof(cursor), &why) != RB_OK) {
            api->reply_error(req, 400, "invalid_cursor", "\"before\": %s",
                             why ? why : "not a tracking number");
            return;
        }
    }
    struct listing *l = malloc(sizeof(*l));
    if (!l) {
        api->reply_error(req, 503, "unavailable", "out of memory");
        return;
    }
    l->req = req;
    l->limit = limit;
    char cid[24], rows[16];
    snprintf(cid, sizeof(cid), "%lld", citizen);
    snprintf(rows, sizeof(rows), "%d", limit + 1);
    const char *params[3] = {cid, cursor, rows};
    if (api->db_query(arg, list_sql, 3, params, listed, l) != RB_OK) {
        free(l);
        api->reply_error(req, 503, "unavailable", "the server is overloaded; try again");
    }
}

static void on_list(struct rb_http_req *req, void *arg)
{
    rb_app_authenticate(arg, req, list_authed, arg);
}

/* ---- GET /api/v1/cases/:tracking/timeline ------------------------------------------------- */

/* Staff notes marked internal (data->>'internal' = 'true') never reach the citizen: an
 * internal event without a status (a note) is left out, and one with a status is shown
 * without its note (the status itself is public). Nor does who did it, beyond the kind of
 * actor. Actions on officials (event official.action) are internal events, never shown. The
 * view rabta_citizen_case_events (migration 0061) applies these rules; rabta_citizen_cases
 * holds the case's columns. */
static const char timeline_sql[] =
    "SELECT c.tracking_no, c.kind, c.status, c.service_id, c.department_id,"
    "  to_char(c.created_at AT TIME ZONE 'UTC', " RB_APP_TS "),"
    "  to_char(c.updated_at AT TIME ZONE 'UTC', " RB_APP_TS "),"
    "  to_char(c.resolve_due_at AT TIME ZONE 'UTC', " RB_APP_TS "),"
    "  c.rating,"
    "  coalesce((SELECT json_agg(json_build_object("
    "      'at', to_char(e.at AT TIME ZONE 'UTC', " RB_APP_TS "), 'event', e.event,"
    "      'actor', e.actor_type, 'from_status', e.from_status, 'to_status', e.to_status,"
    "      'note', e.note) ORDER BY e.at, e.id)"
    "    FROM rabta_citizen_case_events e WHERE e.case_id = c.id), '[]'),"
    "  c.sla"
    " FROM rabta_citizen_cases c WHERE c.tracking_no = $1 AND c.citizen_id = $2::bigint";

static void timeline_found(const struct rb_db_result *res, const char *err, void *arg)
{
    struct rb_http_req *req = arg;
    if (err) {
        api->reply_error(req, 503, "unavailable", "the timeline cannot be read right now");
        return;
    }
    if (api->db_ntuples(res) != 1) {
        not_found(req);
        return;
    }
    json_error_t e;
    json_t *events = json_loads(api->db_value(res, 0, 9), 0, &e);
    if (!events) {
        api->reply_error(req, 500, "internal_error", "the timeline could not be read");
        return;
    }
    const char *rating = api->db_value(res, 0, 8);
    json_t *c = json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:o, s:o}", "tracking_no",
                          api->db_value(res, 0, 0), "kind", api->db_value(res, 0, 1), "status",
                          api->db_value(res, 0, 2), "service",
                          str_or_null(api->db_value(res, 0, 3)), "department",
                          str_or_null(api->db_value(res, 0, 4)), "created_at",
                          api->db_value(res, 0, 5), "updated_at", api->db_value(res, 0, 6),
                          "resolve_due_at", str_or_null(api->db_value(res, 0, 7)), "rating",
                          rating ? json_integer(atoi(rating)) : json_null());
    json_object_set_new(c, "sla", rb_app_sla_json(api->db_value(res, 0, 10)));
    rb_app_reply_json(req, 200, json_pack("{s:o, s:o}", "case", c, "events", events));
}

static void timeline_authed(struct rb_http_req *req, long long citizen, void *arg)
{
    char tracking[32], cid[24];
    if (tracking_param(req, tracking) != 0)
        return;
    snprintf(cid, sizeof(cid), "%lld", citizen);
    const char *params[2] = {tracking, cid};
    if (api->db_query(arg, timeline_sql, 2, params, timeline_found, req) != RB_OK)
        api->reply_error(req, 503, "unavailable", "the server is overloaded; try again");
}

static void on_timeline(struct rb_http_req *req, void *arg)
{
    rb_app_authenticate(arg, req, timeline_authed, arg);
}

/* ---- POST /api/v1/cases/:tracking/comments ------------------------------------------------ */

/* The statement lives in the core (core/cases/case_comment.c, host API case_comment), shared with
 * the SMS channel's replies to an officer's question. A comment on a case awaiting the
 * citizen is also the citizen's reply: awaiting_citizen → in_progress (citizen_reply), in the
 * same statement. Answers: status before, status after, the comment's time; no row: not the
 * citizen's case. */
struct commenting {
    struct rb_http_req *req;
    char tracking[32];
};

static void commented(const struct rb_db_result *res, const char *err, void *arg)
{
    struct commenting *cm = arg;
    struct rb_http_req *req = cm->req;
    if (err) {
        rb_app_write_failed(req, "your comment", err);
    } else if (api->db_ntuples(res) != 1) {
        not_found(req);
    } else {
        const char *before = api->db_value(res, 0, 0), *after = api->db_value(res, 0, 1);
        json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:b}", "tracking_no", cm->tracking,
                                "event", "comment", "at", api->db_value(res, 0, 2), "status",
                                after, "replied", strcmp(before, after) != 0);
        rb_app_reply_json(req, 201, out);
    }
    free(cm);
}

static void comment_authed(struct rb_http_req *req, long long citizen, void *arg)
{
    static const char *const fields[] = {"text", NULL};
    char tracking[32];
    if (tracking_param(req, tracking) != 0)
        return;
    json_t *o = rb_app_body_object(req);
    if (!o)
        return;
    const char *text;
    if (rb_app_known_fields(req, o, fields) != 0 || rb_app_opt_str(req, o, "text", &text) != 0) {
        json_decref(o);
        return;
    }
    if (!text) {
        api->reply_error(req, 400, "missing_field", "field \"text\" is required");
        json_decref(o);
        return;
    }
    if (rb_app_text_field(req, "text", text) != 0) {
        json_decref(o);
        return;
    }
    struct commenting *cm = malloc(sizeof(*cm));
    if (!cm) {
        api->reply_error(req, 503, "unavailable", "out of memory");
        json_decref(o);
        return;
    }
    cm->req = req;
    memcpy(cm->tracking, tracking, sizeof(cm->tracking));
    const struct rb_case_comment c = {
        .size = sizeof(c), .tracking = tracking, .citizen_id = citizen, .text = text,
        .channel = "app",
    };
    int rc = api->case_comment(arg, &c, commented, cm);
    json_decref(o);
    if (rc != RB_OK) {
        free(cm);
        api->reply_error(req, 503, "unavailable", "the server is overloaded; try again");
    }
}

static void on_comment(struct rb_http_req *req, void *arg)
{
    rb_app_authenticate(arg, req, comment_authed, arg);
}

/* ---- POST /api/v1/cases/:tracking/rating -------------------------------------------------- */

/* The statement lives in the core (core/cases/case_rating.c, host API case_rate), shared with the
 * SMS channel's "reply 1 or 2". */
struct rating {
    struct rb_http_req *req;
    char tracking[32];
    int rating, satisfied;
};

static void rated(const struct rb_db_result *res, const char *err, void *arg)
{
    struct rating *r = arg;
    struct rb_http_req *req = r->req;
    if (err) {
        rb_app_write_failed(req, "your rating", err);
    } else if (api->db_ntuples(res) != 1) {
        not_found(req);
    } else if (!api->db_value(res, 0, 2) && api->db_nfields(res) > 4 && api->db_value(res, 0, 4)) {
        api->reply_error(req, 409, "rating_closed",
                         "case %s can no longer be rated or reopened: the time to do so ended "
                         "at %s; if the problem is still there, please send a new complaint",
                         r->tracking, api->db_value(res, 0, 4));
    } else if (!api->db_value(res, 0, 2)) {
        const char *kind = api->db_value(res, 0, 0), *status = api->db_value(res, 0, 1);
        int reopen = !r->satisfied && strcmp(kind, "feedback") != 0;
        api->reply_error(req, 409, "invalid_transition",
                         "cannot %s a case that %s; a case can be rated once it has been "
                         "resolved or answered", reopen ? "reopen" : "rate",
                         state_phrase(status));
    } else {
        const char *to = api->db_value(res, 0, 2);
        json_t *out = json_pack("{s:s, s:s, s:i, s:b, s:b}", "tracking_no", r->tracking,
                                "status", to, "rating", r->rating, "satisfied", r->satisfied,
                                "escalated", strcmp(to, "reopened") == 0);
        rb_app_reply_json(req, 200, out);
    }
    free(r);
}

static void rating_authed(struct rb_http_req *req, long long citizen, void *arg)
{
    static const char *const fields[] = {"rating", "satisfied", "comment", NULL};
    char tracking[32];
    if (tracking_param(req, tracking) != 0)
        return;
    json_t *o = rb_app_body_object(req);
    if (!o)
        return;
    double rating;
    int satisfied = 0;
    const char *comment;
    if (rb_app_known_fields(req, o, fields) != 0 ||
        rb_app_opt_num(req, o, "rating", &rating) != 0 ||
        rb_app_opt_bool(req, o, "satisfied", &satisfied) != 0 ||
        rb_app_opt_str(req, o, "comment", &comment) != 0) {
        json_decref(o);
        return;
    }
    if (isnan(rating)) {
        api->reply_error(req, 400, "missing_field", "field \"rating\" is required (1 to 5)");
        json_decref(o);
        return;
    }
    if (rating != floor(rating) || rating < 1 || rating > 5) {
        api->reply_error(req, 400, "invalid_field",
                         "field \"rating\": expected a whole number from 1 to 5");
        json_decref(o);
        return;
    }
    /* The citizen's explicit answer wins; without one, 3 stars or more is satisfied. */
    json_t *sv = json_object_get(o, "satisfied");
    if (!sv || json_is_null(sv))
        satisfied = rating >= 3;
    if (comment && rb_app_text_field(req, "comment", comment) != 0) {
        json_decref(o);
        return;
    }
    struct rating *r = malloc(sizeof(*r));
    if (!r) {
        api->reply_error(req, 503, "unavailable", "out of memory");
        json_decref(o);
        return;
    }
    r->req = req;
    memcpy(r->tracking, tracking, sizeof(r->tracking));
    r->rating = (int)rating;
    r->satisfied = satisfied;
    int rc = api->case_rate(arg, tracking, citizen, r->rating, satisfied, comment, rated, r);
    json_decref(o);
    if (rc != RB_OK) {
        free(r);
        api->reply_error(req, 503, "unavailable", "the server is overloaded; try again");
    }
}

static void on_rating(struct rb_http_req *req, void *arg)
{
    rb_app_authenticate(arg, req, rating_authed, arg);
}

int rb_app_citizen_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    api = host;
    if (api->http_route(ctx, RB_HTTP_GET, "/api/v1/me/cases", on_list, ctx) != RB_OK ||
        api->http_route(ctx, RB_HTTP_GET, "/api/v1/cases/:tracking/timeline", on_timeline,
                        ctx) != RB_OK ||
        api->http_route(ctx, RB_HTTP_POST, "/api/v1/cases/:tracking/comments", on_comment,
                        ctx) != RB_OK ||
        api->http_route(ctx, RB_HTTP_POST, "/api/v1/cases/:tracking/rating", on_rating, ctx) !=
            RB_OK)
        return RB_ERR;
    return RB_OK;
}
