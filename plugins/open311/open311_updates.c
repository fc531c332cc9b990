/* open311 service request updates (mySociety's extension of GeoReport v2, as FixMyStreet's
 * Open311 client uses it; docs/open311.md, "Service request updates"):
 *
 *   GET  servicerequestupdates.{json,xml}?start_date&end_date   public events of our requests
 *   POST servicerequestupdates.{json,xml}                       a public update (api_key)
 *
 * Which events are public, and what of them, is the schema contract of migration 0028
 * (rabta_case_public_events); an update is written by rabta_case_public_comment, one
 * statement: the case's "comment" event, or nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "open311.h"

#define MAX_UPDATES 10000 /* in one answer; a window holding more is refused, never cut */

static const struct rb_host_api *api;

void o311_updates_init(const struct rb_host_api *host)
{
    api = host;
}

/* Public events of Open311 requests in a window, oldest first; one row more than MAX_UPDATES
 * tells that the window holds too many. */
static const char updates_sql[] =
    "SELECT p.id, c.tracking_no, p.status, " O311_TS("p.at") ", p.description, p.media_url "
    "FROM rabta_case_public_events p JOIN rabta_case_public c ON c.id = p.case_id "
    "WHERE c.channel = 'open311' AND c.kind = 'complaint' "
    "  AND p.at >= to_timestamp($1::float8) AND p.at <= to_timestamp($2::float8) "
    "ORDER BY p.at, p.id LIMIT $3::int";

struct list {
    struct rb_http_req *req;
    struct o311 *o;
    enum o311_fmt fmt;
};

static json_t *update_entry(const struct rb_db_result *res, int r)
{
    const char *desc = api->db_value(res, r, 4), *media = api->db_value(res, r, 5);
    const char *status = api->db_value(res, r, 2);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "update_id",
                     api->db_value(res, r, 0), "service_request_id", api->db_value(res, r, 1),
                     "status", o311_status_of(status)->extended, "updated_datetime",
                     api->db_value(res, r, 3), "description", desc ? desc : "", "media_url",
                     media ? media : "", "external_status_code", status ? status : "");
}

static void updates_found(const struct rb_db_result *res, const char *err, void *arg)
{
    struct list *l = arg;
    int n = err ? 0 : api->db_ntuples(res);
    if (err) {
        api->log(l->o->ctx, RB_LOG_WARN, "reading updates failed: %s", err);
        o311_error(l->req, 503, l->fmt, "updates cannot be read right now; try again");
    } else if (n > MAX_UPDATES) {
        o311_error(l->req, 400, l->fmt, "more than %d updates between start_date and "
                                        "end_date: ask for a shorter window", MAX_UPDATES);
    } else {
        json_t *out = json_array();
        for (int r = 0; r < n; r++)
            json_array_append_new(out, update_entry(res, r));
        o311_send(l->req, 200, l->fmt, "service_request_updates", out);
    }
    free(l);
}

void o311_updates_list(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt,
                       const char *base)
{
    (void)base;
    double start = 0, end = 0;
    char start_s[32], end_s[32], limit[16];
    if (o311_wrong_jurisdiction(o, req, api->req_query(req, "jurisdiction_id"), fmt) ||
        o311_window(req, fmt, &start, &end) != 0)
        return;
    struct list *l = calloc(1, sizeof(*l));
    if (!l) {
        o311_error(req, 503, fmt, "out of memory");
        return;
    }
    *l = (struct list){req, o, fmt};
    snprintf(start_s, sizeof(start_s), "%.6f", start);
    snprintf(end_s, sizeof(end_s), "%.6f", end);
    snprintf(limit, sizeof(limit), "%d", MAX_UPDATES + 1);
    const char *params[3] = {start_s, end_s, limit};
    if (api->db_query(o->ctx, updates_sql, 3, params, updates_found, l) != RB_OK) {
        o311_error(req, 503, fmt, "the server is overloaded; try again");
        free(l);
    }
}

/* ---- POST: a public update ---------------------------------------------------------------- */

static const char comment_sql[] =
    "SELECT event_id, replayed FROM rabta_case_public_comment($1::text, 'open311', $2::text, "
    "  $3::text, $4::text, $5::jsonb)";

static void comment_written(const struct rb_db_result *res, const char *err, void *arg)
{
    struct o311_post *p = arg;
    if (err) {
        api->log(p->o->ctx, RB_LOG_WARN, "writing an update failed: %s", err);
        o311_error(p->req, 503, p->fmt, "the update could not be stored right now; nothing "
                                        "was saved, please try again");
    } else if (api->db_ntuples(res) != 1) {
        o311_error(p->req, 404, p->fmt, "service_request_id: no service request with this id");
    } else {
        const char *id = api->db_value(res, 0, 0);
        int replayed = strcmp(api->db_value(res, 0, 1), "t") == 0;
        api->log(p->o->ctx, RB_LOG_INFO, "update %s on %s %s (API key \"%s\")", id,
                 o311_form_get(&p->form, "service_request_id"),
                 replayed ? "was already stored" : "stored", p->key_name);
        o311_send(p->req, replayed ? 200 : 201, p->fmt, "service_request_updates",
                  json_pack("[{s:s}]", "update_id", id));
    }
    o311_post_free(p);
}

/* One optional field into data after check: 0, or -1 after answering 400 with what. */
static int update_field(struct o311_post *p, json_t *data, const char *key, int ok,
                        const char *what)
{
    const char *v = o311_form_get(&p->form, key);
    if (!v || !*v)
        return 0;
    if (!ok) {
        o311_error(p->req, 400, p->fmt, "%s: %s", key, what);
        return -1;
    }
    json_object_set_new(data, key, json_string(v));
    return 0;
}

/* What the update keeps besides its words (staff see it; the public never does). NULL after
 * answering 400. */
static json_t *update_data(struct o311_post *p)
{
    const struct o311_form *f = &p->form;
    const char *when = o311_form_get(f, "updated_datetime"), *st = o311_form_get(f, "status");
    const char *email = o311_form_get(f, "email"), *phone = o311_form_get(f, "phone");
    char e164[24];
    const char *why = "";
    double t;
    json_t *data = o311_extras(p);
    if (!data)
        return NULL;
    size_t stl = st ? strlen(st) : 0;
    if (update_field(p, data, "updated_datetime", when && o311_parse_datetime(when, &t) == 0,
                     "expected an ISO 8601 datetime such as 2024-05-01T09:30:00+05:00") ||
        update_field(p, data, "status",
                     stl <= O311_SHORT_MAX && strspn(st ? st : "", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                     "abcdefghijklmnopqrstuvwxyz_ ") == stl,
                     "expected a status word such as OPEN, CLOSED or FIXED") ||
        update_field(p, data, "email",
                     email && strlen(email) <= 254 && strchr(email, '@') &&
                         o311_text_ok(email, 254, 1) == 0 && !strchr(email, ' '),
                     "not an email address")) {
        json_decref(data);
        return NULL;
    }
    if (phone && *phone) {
        if (api->phone_normalize(phone, e164, sizeof(e164), &why) != RB_OK) {
            o311_error(p->req, 400, p->fmt, "phone: %s", why);
            json_decref(data);
            return NULL;
        }
        json_object_set_new(data, "phone", json_string(e164));
    }
    return data;
}

/* The key is good: check the update and write it. */
void o311_update_submit(struct o311_post *p)
{
    const struct o311_form *f = &p->form;
    const char *sid = o311_form_get(f, "service_request_id");
    const char *desc = o311_form_get(f, "description");
    const char *client_id = o311_form_get(f, "update_id");
    char tracking[32];
    const char *why = "";
    if (!sid || !*sid || api->tracking_parse(sid, tracking, sizeof(tracking), &why) != RB_OK) {
        o311_error(p->req, 404, p->fmt, "service_request_id: no service request with this id%s%s",
                   *why ? ": " : "", why);
        goto fail;
    }
    if (!desc || !*desc || o311_text_ok(desc, O311_TEXT_MAX, 0) != 0) {
        o311_error(p->req, 400, p->fmt, "description is required: at most %d characters of "
                                        "text", O311_TEXT_MAX);
        goto fail;
    }
    if (client_id && (strlen(client_id) > O311_SHORT_MAX ||
                      o311_text_ok(client_id, O311_SHORT_MAX, 1) != 0)) {
        o311_error(p->req, 400, p->fmt, "update_id: at most %d bytes on one line",
                   O311_SHORT_MAX);
        goto fail;
    }
    if (o311_wrong_jurisdiction(p->o, p->req, o311_form_get(f, "jurisdiction_id"), p->fmt))
        goto fail;
    json_t *data = update_data(p);
    if (!data)
        goto fail;
    p->origin = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    const char *params[5] = {tracking, p->key_name, client_id && *client_id ? client_id : NULL,
                             desc, p->origin};
    if (!p->origin ||
        api->db_query(p->o->ctx, comment_sql, 5, params, comment_written, p) != RB_OK) {
        o311_error(p->req, 503, p->fmt, "the server is overloaded; try again");
        goto fail;
    }
    return;
fail:
    o311_post_free(p);
}
