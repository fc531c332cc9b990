/* The registry of offices and officials, an official's page, and the agents' calls
 * (feedback_api.h). */
#include "feedback/feedback_api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/common.h"
#include "base/log.h"
#include "base/phone.h"
#include "base/process.h"
#include "config/config.h"
#include "db/db.h"
#include "feedback/feedback_int.h"
#include "lua/script.h"
#include "net/http.h"
#include "outreach/outreach.h"
#include "outreach/outreach_policy.h"
#include "staff/staff_account.h"
#include "staff/staff_api.h"

/* ---- shared ------------------------------------------------------------------------------- */

void rb_feedback_wilson(long long k, long long n, double *low, double *high)
{
    const double z = 1.959963984540054, z2 = z * z;
    double p = (double)k / (double)n, d = 1 + z2 / (double)n;
    double c = (p + z2 / (2.0 * (double)n)) / d;
    double h = z * sqrt(p * (1 - p) / (double)n + z2 / (4.0 * (double)n * (double)n)) / d;
    *low = c - h < 0 ? 0 : c - h;
    *high = c + h > 1 ? 1 : c + h;
}

json_t *rb_feedback_share(long long k, long long n)
{
    json_t *o = json_pack("{s:I, s:I, s:b}", "n", (json_int_t)n, "k", (json_int_t)k,
                          "small_sample", n < RB_FEEDBACK_SMALL_N);
    if (n <= 0) {
        json_object_set_new(o, "share", json_null());
        json_object_set_new(o, "low", json_null());
        json_object_set_new(o, "high", json_null());
        return o;
    }
    double lo, hi;
    rb_feedback_wilson(k, n, &lo, &hi);
    json_object_set_new(o, "share", json_real(round((double)k / (double)n * 1e4) / 1e4));
    json_object_set_new(o, "low", json_real(round(lo * 1e4) / 1e4));
    json_object_set_new(o, "high", json_real(round(hi * 1e4) / 1e4));
    return o;
}

/* One staff request under way. */
struct freq {
    struct rb_server *srv; /* borrowed */
    struct rb_http_req *req;
    struct rb_staff_user u;
    int what; /* enum route */
};

enum route { R_OFFICES, R_OFFICE_ADD, R_OFFICIALS, R_OFFICIAL_ADD, R_OFFICIAL, R_NEXT, R_ANSWER };

static void db_answer_failed(struct freq *f, const char *err)
{
    rb_http_reply_db_error(f->req, err, "feedback api"); /* bad bytes 400, else 503; logged */
}

/* Answers a JSON text from column 0 of row 0 as {key: value}. */
static void json_text_reply(PGresult *res, const char *err, void *arg, const char *key)
{
    struct freq *f = arg;
    if (err) {
        db_answer_failed(f, err);
    } else {
        json_t *v = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
        rb_http_reply_json(f->req, 200, json_pack("{s:o}", key, v ? v : json_array()));
    }
    free(f);
}

/* ---- the registry ------------------------------------------------------------------------- */

static const char offices_sql[] =
    "SELECT coalesce(json_agg(json_build_object('id', id, 'name_en', name_en, 'name_ur',"
    "  name_ur, 'department', department_id, 'district', district_id, 'services', services,"
    "  'supervisor', supervisor) ORDER BY id), '[]')::text FROM offices"
    " WHERE ($1::text IS NULL OR department_id = $1)"
    "  AND ($2::text IS NULL OR district_id = ANY (string_to_array($2, ',')))";

static const char officials_sql[] =
    "SELECT coalesce(json_agg(json_build_object('id', f.id, 'name', f.name, 'designation',"
    "  f.designation, 'office', f.office_id) ORDER BY f.id), '[]')::text"
    " FROM officials f JOIN offices o ON o.id = f.office_id"
    " WHERE ($1::text IS NULL OR o.department_id = $1)"
    "  AND ($2::text IS NULL OR o.district_id = ANY (string_to_array($2, ',')))"
    "  AND ($3::text IS NULL OR f.office_id = $3)";

static void offices_done(PGresult *res, const char *err, void *arg)
{
    json_text_reply(res, err, arg, "offices");
}

static void officials_done(PGresult *res, const char *err, void *arg)
{
    json_text_reply(res, err, arg, "officials");
}

static void list(struct freq *f, int officials)
{
    char districts[RB_STAFF_DISTRICTS_CSV];
    const char *dept = rb_staff_scoped(&f->u, districts) ? f->u.department : NULL;
    const char *p[3] = {dept, districts[0] ? districts : NULL,
                        rb_http_req_query(f->req, "office")};
    int rc = officials ? rb_db_query(f->srv->db, officials_sql, 3, p, officials_done, f)
                       : rb_db_query(f->srv->db, offices_sql, 2, p, offices_done, f);
    if (rc != RB_OK) {
        rb_http_reply_busy(f->req);
        free(f);
    }
}

static void stored(PGresult *res, const char *err, void *arg)
{
    struct freq *f = arg;
    (void)res;
    if (err)
        rb_http_reply_error(f->req, 400, "refused", "%s", err);
    else
        rb_http_reply_json(f->req, 201, json_pack("{s:b}", "stored", 1));
    free(f);
}

/* Field name of the body, a string (or ""). */
static const char *str(json_t *b, const char *name)
{
    const char *s = json_string_value(json_object_get(b, name));
    return s ? s : "";
}

/* The services list of an office, checked: "a;b" in out. NULL, or why. */
static const char *office_services(const struct rb_config *cfg, json_t *list, const char *dept,
                                   struct rb_sbuf *out)
{
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > 64)
        return "services must be a list of the service ids the office delivers";
    for (size_t i = 0; i < json_array_size(list); i++) {
        const struct rb_service *s = rb_config_service(
            cfg, json_string_value(json_array_get(list, i)) ? json_string_value(
                                                                  json_array_get(list, i))
                                                            : "");
        if (!s || strcmp(s->department, dept) != 0)
            return "services must be services of the office's department";
        rb_sbuf_puts(out, i ? ";" : "");
        rb_sbuf_puts(out, s->id);
    }
    return NULL;
}

static const char office_add_sql[] =
    "INSERT INTO offices (id, name_en, name_ur, department_id, district_id, services,"
    " supervisor) VALUES ($1, $2, $3, $4, $5, string_to_array($6, ';'), nullif($7, ''))"
    " ON CONFLICT (id) DO UPDATE SET name_en = excluded.name_en, name_ur = excluded.name_ur,"
    "  department_id = excluded.department_id, district_id = excluded.district_id,"
    "  services = excluded.services, supervisor = excluded.supervisor";

static const char official_add_sql[] =
    "INSERT INTO officials (id, name, designation, office_id, phone)"
    " VALUES ($1, $2, $3, $4, nullif($5, ''))"
    " ON CONFLICT (id) DO UPDATE SET name = excluded.name, designation = excluded.designation,"
    "  office_id = excluded.office_id, phone = excluded.phone";

/* POST offices / officials (administrators). */
static void add(struct freq *f, json_t *b, int official)
{
    const struct rb_config *cfg = f->srv->cfg;
    const char *why = NULL, *id = str(b, "id");
    struct rb_sbuf svc = {0};
    char e164[RB_PHONE_MAX] = "";
    rb_sbuf_puts(&svc, "");
    const char *name = str(b, official ? "name" : "name_en");
    if (rb_outreach_check_text(id, 64, 1) || strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
                                                         "KLMNOPQRSTUVWXYZ0123456789_.-") !=
                                                 strlen(id))
        why = "id: 1 to 64 letters, digits, _ . -";
    else if (rb_outreach_check_text(name, 200, 1))
        why = official ? "name: 1 to 200 characters, no formula" : "name_en: 1 to 200 "
                                                                   "characters, no formula";
    else if (!official && !rb_config_department(cfg, str(b, "department")))
        why = "department: a department of the configuration";
    else if (!official && !rb_config_district(cfg, str(b, "district")))
        why = "district: a district of the configuration";
    else if (!official)
        why = office_services(cfg, json_object_get(b, "services"), str(b, "department"), &svc);
    else if (str(b, "phone")[0] && rb_phone_normalize(str(b, "phone"), e164, NULL) != RB_OK)
        why = "phone: not a phone number";
    if (why) {
        rb_http_reply_error(f->req, 400, "invalid_field", "%s", why);
        free(svc.p);
        free(f);
        return;
    }
    const char *po[7] = {id, name, str(b, "name_ur"), str(b, "department"), str(b, "district"),
                         svc.p, str(b, "supervisor")};
    const char *pf[5] = {id, name, str(b, "designation"), str(b, "office"), e164};
    int rc = official ? rb_db_query(f->srv->db, official_add_sql, 5, pf, stored, f)
                      : rb_db_query(f->srv->db, office_add_sql, 7, po, stored, f);
    free(svc.p);
    if (rc != RB_OK) {
        rb_http_reply_busy(f->req);
        free(f);
    }
}

/* ---- an official's page ------------------------------------------------------------------- */

static const char official_sql[] =
    "SELECT json_build_object('id', f.id, 'name', f.name, 'designation', f.designation,"
    "  'office', f.office_id, 'office_name', o.name_en, 'department', o.department_id,"
    "  'district', o.district_id)::text, o.department_id, o.district_id, f.name,"
    "  coalesce(sum(r.transactions), 0), coalesce(sum(r.complete + r.partial), 0),"
    "  coalesce(sum(r.satisfied_n), 0), coalesce(sum(r.dissatisfied), 0),"
    "  coalesce(sum(r.bribe_n), 0), coalesce(sum(r.bribe), 0),"
    "  coalesce(sum(r.appreciation), 0), coalesce(sum(r.cases), 0),"
    "  (SELECT coalesce(json_agg(json_build_object('action', a.action, 'at', a.at, 'note',"
    "     a.note, 'case', c.tracking_no, 'by', s.username, 'followed_up_at', a.followed_up_at,"
    "     'follow_up', a.follow_up) ORDER BY a.at DESC, a.id DESC), '[]')"
    "   FROM official_actions a LEFT JOIN cases c ON c.id = a.case_id"
    "   LEFT JOIN staff s ON s.id = a.staff_id WHERE a.official_id = f.id)::text"
    " FROM officials f JOIN offices o ON o.id = f.office_id"
    " LEFT JOIN feedback_rollup r ON r.official_id = f.id"
    " WHERE f.id = $1 GROUP BY f.id, o.id";

static void official_done(PGresult *res, const char *err, void *arg)
{
    struct freq *f = arg;
    if (err) {
        db_answer_failed(f, err);
    } else if (PQntuples(res) != 1 ||
               rb_staff_scope(&f->u, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
                              PQgetvalue(res, 0, 3), 0) != RB_OK) {
        rb_http_reply_error(f->req, 404, "not_found", "there is no official %.64s that you "
                            "can see", rb_http_req_param(f->req, "id"));
    } else {
        long long v[8];
        for (int i = 0; i < 8; i++)
            v[i] = atoll(PQgetvalue(res, 0, 4 + i));
        json_t *o = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
        json_object_set_new(o, "figures",
                            json_pack("{s:I, s:I, s:o, s:o, s:I, s:I}", "transactions",
                                      (json_int_t)v[0], "responded", (json_int_t)v[1],
                                      "dissatisfied", rb_feedback_share(v[3], v[2]), "bribe",
                                      rb_feedback_share(v[5], v[4]), "appreciation",
                                      (json_int_t)v[6], "cases", (json_int_t)v[7]));
        json_t *acts = json_loads(PQgetvalue(res, 0, 12), 0, NULL);
        json_object_set_new(o, "actions", acts ? acts : json_array());
        rb_http_reply_json(f->req, 200, o);
    }
    free(f);
}

/* ---- agents ------------------------------------------------------------------------------- */

/* $1 the agent. The transaction the agent holds, else the next of the sample (held from now
 * on by this agent only; a claim over an hour old is free again), its attempt counted. */
static const char next_sql[] =
    "WITH mine AS (SELECT id FROM transactions WHERE state = 'agent' AND agent_id = $1::bigint"
    "  ORDER BY id LIMIT 1),"
    " pick AS (SELECT id FROM transactions WHERE state = 'agent'"
    "  AND (agent_id IS NULL OR agent_at < now() - interval '1 hour')"
    "  AND NOT EXISTS (SELECT 1 FROM mine) ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED),"
    " claim AS (UPDATE transactions t SET agent_id = $1::bigint, agent_at = now() FROM pick"
    "  WHERE t.id = pick.id RETURNING t.id),"
    " att AS (INSERT INTO outreach_attempts (transaction_id, channel, staff_id)"
    "  SELECT id, 'agent', $1::bigint FROM claim),"
    " cnt AS (SELECT rabta_feedback_count(id, 'contacted_agent') FROM claim)"
    " SELECT t.id, coalesce(t.citizen_name, ''), t.phone, t.service_id, t.language,"
    "  o.name_en, t.reference, (SELECT count(*) FROM cnt)"
    " FROM transactions t JOIN offices o ON o.id = t.office_id"
    " WHERE t.id = coalesce((SELECT id FROM mine), (SELECT id FROM claim))";

static void next_done(PGresult *res, const char *err, void *arg)
{
    struct freq *f = arg;
    if (err) {
        db_answer_failed(f, err);
        free(f);
        return;
    }
    if (PQntuples(res) != 1) {
        rb_http_reply_json(f->req, 200, json_pack("{s:n}", "transaction"));
        free(f);
        return;
    }
    const char *service = PQgetvalue(res, 0, 3), *lang = PQgetvalue(res, 0, 4);
    const struct rb_outreach_policy *p = rb_outreach_policy(f->srv->outreach, service);
    json_t *req = json_pack("{s:s, s:s}", "survey", p ? p->survey : "default", "language", lang);
    char why[256];
    json_t *survey = rb_script_call(f->srv->rules, "surveys", "questions", req, why,
                                    sizeof(why));
    json_decref(req);
    json_t *out = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "transaction",
                            (json_int_t)atoll(PQgetvalue(res, 0, 0)), "citizen_name",
                            PQgetvalue(res, 0, 1), "phone", PQgetvalue(res, 0, 2), "service",
                            service, "language", lang, "office", PQgetvalue(res, 0, 5),
                            "reference", PQgetvalue(res, 0, 6), "survey",
                            survey ? survey : json_null());
    rb_http_reply_json(f->req, 200, out);
    free(f);
}

static void answered(int found, const char *err, void *arg)
{
    struct freq *f = arg;
    if (!found && err)
        rb_http_reply_error(f->req, 400, "invalid_field", "%s", err);
    else if (!found)
        rb_http_reply_error(f->req, 404, "not_found", "you hold no such transaction (GET "
                                                      "/api/v1/staff/agent/next)");
    else
        rb_http_reply_json(f->req, 200, json_pack("{s:b}", "recorded", 1));
    free(f);
}

static void agent_answer(struct freq *f, json_t *b)
{
    const char *id = rb_http_req_param(f->req, "id"), *outcome = str(b, "outcome");
    char *end = NULL;
    long long tx = id ? strtoll(id, &end, 10) : 0;
    json_t *answers = json_object_get(b, "answers");
    int rc = RB_EINVAL;
    if (tx > 0 && end && !*end && (!answers || json_is_object(answers)))
        rc = rb_outreach_record(f->srv, "agent", tx, f->u.id, answers,
                                strcmp(outcome, "complete") == 0 || !outcome[0] ? NULL
                                                                                : outcome,
                                answered, f);
    if (rc == RB_EINVAL)
        rb_http_reply_error(f->req, 400, "invalid_field",
                            "answers must map question ids to answers, outcome is complete, "
                            "refusal, non_contact or unknown");
    else if (rc != RB_OK)
        rb_http_reply_busy(f->req);
    if (rc != RB_OK)
        free(f);
}

/* ---- the door ----------------------------------------------------------------------------- */

static void authed(struct rb_http_req *req, const struct rb_staff_user *u, void *arg)
{
    struct freq *f = arg;
    if (!u) {
        free(f);
        return;
    }
    f->u = *u;
    int agent_route = f->what == R_NEXT || f->what == R_ANSWER;
    int admin_route = f->what == R_OFFICE_ADD || f->what == R_OFFICIAL_ADD;
    if (agent_route != (u->role == RB_STAFF_AGENT) || (admin_route && u->role != RB_STAFF_ADMIN)) {
        rb_http_reply_error(req, 403, "forbidden", "%s", agent_route ? "only agents call the "
                            "sample" : admin_route ? "administrators keep the registry"
                                                   : "agents call citizens; nothing more");
        free(f);
        return;
    }
    json_t *b = f->what == R_OFFICE_ADD || f->what == R_OFFICIAL_ADD || f->what == R_ANSWER
                    ? rb_http_req_json(req)
                    : NULL;
    const char *p[1] = {rb_http_req_param(req, "id")};
    char sid[24];
    snprintf(sid, sizeof(sid), "%lld", u->id);
    const char *ps[1] = {sid};
    int rc = RB_OK;
    if ((admin_route || f->what == R_ANSWER) && !b) {
        free(f); /* answered 400 */
    } else if (f->what == R_OFFICES || f->what == R_OFFICIALS) {
        list(f, f->what == R_OFFICIALS);
    } else if (admin_route) {
        add(f, b, f->what == R_OFFICIAL_ADD);
    } else if (f->what == R_OFFICIAL) {
        rc = rb_db_query(f->srv->db, official_sql, 1, p, official_done, f);
    } else if (f->what == R_NEXT) {
        rc = rb_db_query(f->srv->db, next_sql, 1, ps, next_done, f);
    } else {
        agent_answer(f, b);
    }
    json_decref(b);
    if (rc != RB_OK) {
        rb_http_reply_busy(req);
        free(f);
    }
}

static struct {
    struct rb_server *srv;
    int what[R_ANSWER + 1];
} routes;

static void on_staff(struct rb_http_req *req, void *arg)
{
    struct freq *f = rb_calloc(1, sizeof(*f));
    f->srv = routes.srv;
    f->req = req;
    f->what = *(int *)arg;
    rb_staff_api_authenticate(req, authed, f);
}

int rb_feedback_api_init(struct rb_server *srv)
{
    static const struct {
        enum rb_http_method m;
        const char *path;
    } t[] = {
        [R_OFFICES] = {RB_HTTP_GET, "/api/v1/staff/offices"},
        [R_OFFICE_ADD] = {RB_HTTP_POST, "/api/v1/staff/offices"},
        [R_OFFICIALS] = {RB_HTTP_GET, "/api/v1/staff/officials"},
        [R_OFFICIAL_ADD] = {RB_HTTP_POST, "/api/v1/staff/officials"},
        [R_OFFICIAL] = {RB_HTTP_GET, "/api/v1/staff/officials/:id"},
        [R_NEXT] = {RB_HTTP_GET, "/api/v1/staff/agent/next"},
        [R_ANSWER] = {RB_HTTP_POST, "/api/v1/staff/agent/transactions/:id"},
    };
    routes.srv = srv;
    int rc = RB_OK;
    for (int i = 0; rc == RB_OK && i <= R_ANSWER; i++) {
        routes.what[i] = i;
        rc = rb_http_route(srv->http, t[i].m, t[i].path, on_staff, &routes.what[i]);
    }
    if (rc == RB_OK)
        rc = rb_feedback_tx_init(srv);
    if (rc == RB_OK)
        rc = rb_feedback_reports_init(srv);
    if (rc != RB_OK) {
        rb_error("feedback", "cannot register the feedback routes");
        return RB_ERR;
    }
    return RB_OK;
}
