/* Evidence reports of proactive feedback (docs/feedback.md "Evidence"):
 *
 *   GET /api/v1/staff/reports/feedback?from=YYYY-MM-DD&to=YYYY-MM-DD
 *       &by=district|office|official|service|department[&department=ID][&format=json|csv]
 *   GET /api/v1/staff/reports/feedback/league?from=...&to=...[&measure=dissatisfied|bribe]
 *
 * Per group, over the transactions completed in the period (UTC days): transactions, the
 * data quality (invalid and repeated phones), contacted by channel, the AAPOR dispositions and
 * RR1/RR2, the shares dissatisfied, asked for a bribe and delayed, each with its 95% Wilson
 * interval and a small-sample flag (n < 30), cases opened, appreciations, and the actions
 * taken against officials in the period with how many were followed up. Read from the
 * roll-up (feedback_rollup), kept up to date as answers arrive: a report over millions of
 * transactions sums thousands of rows. Scoped like the SLA reports. The league table ranks
 * offices by the lower bound of the interval (the worst we are sure of first), not the raw
 * share, so a small office with two unlucky answers does not top it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/common.h"
#include "base/log.h"
#include "base/process.h"
#include "config/config.h"
#include "db/db.h"
#include "feedback/feedback_int.h"
#include "net/http.h"
#include "staff/reports.h"
#include "staff/staff_account.h"
#include "staff/staff_api.h"

/* $1 from  $2 to  $3 by  $4 department  $5 districts "a,b" */
static const char report_sql[] =
    "WITH r AS ("
    "  SELECT CASE $3::text WHEN 'district' THEN o.district_id WHEN 'office' THEN r.office_id"
    "    WHEN 'official' THEN r.official_id WHEN 'service' THEN r.service_id"
    "    ELSE o.department_id END AS g, r.*, o.name_en AS office_name"
    "  FROM feedback_rollup r JOIN offices o ON o.id = r.office_id"
    "  WHERE r.day BETWEEN $1::date AND $2::date"
    "    AND ($4::text IS NULL OR o.department_id = $4)"
    "    AND ($5::text IS NULL OR o.district_id = ANY (string_to_array($5, ',')))),"
    " s AS ("
    "  SELECT g, max(office_name) AS office_name, sum(transactions) t, sum(invalid_phone) ip,"
    "    sum(repeated_phone) rp, sum(skipped) sk, sum(contacted_call) cc, sum(contacted_sms) cs,"
    "    sum(contacted_agent) ca, sum(complete) i, sum(partial) p, sum(refusal) rf,"
    "    sum(non_contact) nc, sum(unknown) u, sum(satisfied_n) sn, sum(dissatisfied) d,"
    "    sum(bribe_n) bn, sum(bribe) b, sum(delayed_n) dn, sum(delayed) dl, sum(cases) cases,"
    "    sum(appreciation) ap FROM r GROUP BY g),"
    " a AS ("
    "  SELECT CASE $3::text WHEN 'district' THEN o.district_id WHEN 'office' THEN o.id"
    "    WHEN 'official' THEN f.id WHEN 'service' THEN NULL ELSE o.department_id END AS g,"
    "    count(*) AS n, count(*) FILTER (WHERE a.followed_up_at IS NOT NULL) AS fu"
    "  FROM official_actions a JOIN officials f ON f.id = a.official_id"
    "  JOIN offices o ON o.id = f.office_id"
    "  WHERE a.at >= ($1::date)::timestamp AT TIME ZONE 'UTC'"
    "    AND a.at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'"
    "    AND ($4::text IS NULL OR o.department_id = $4)"
    "    AND ($5::text IS NULL OR o.district_id = ANY (string_to_array($5, ',')))"
    "  GROUP BY 1)"
    " SELECT s.g, CASE $3::text WHEN 'office' THEN s.office_name WHEN 'official'"
    "    THEN (SELECT name FROM officials WHERE id = s.g) END,"
    "  s.t, s.ip, s.rp, s.sk, s.cc, s.cs, s.ca, s.i, s.p, s.rf, s.nc, s.u, s.sn, s.d, s.bn,"
    "  s.b, s.dn, s.dl, s.cases, s.ap, coalesce(a.n, 0), coalesce(a.fu, 0)"
    " FROM s LEFT JOIN a ON a.g = s.g ORDER BY s.g";

enum { C_G, C_NAME, C_T, C_IP, C_RP, C_SK, C_CC, C_CS, C_CA, C_I, C_P, C_R, C_NC, C_U, C_SN,
       C_D, C_BN, C_B, C_DN, C_DL, C_CASES, C_AP, C_ACT, C_FU, C_COUNT };

static const char *const bys[] = {"district", "office", "official", "service", "department"};

struct report {
    struct rb_server *srv; /* borrowed */
    struct rb_http_req *req;
    char from[11], to[11], by[16], department[65], measure[16];
    int csv, league;
};

static long long v(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : atoll(PQgetvalue(res, row, col));
}

/* RR1 = I / (I + P + R + NC + U), RR2 = (I + P) / (...) (AAPOR Standard Definitions; every
 * unit of unknown eligibility counted as eligible, e = 1). */
static json_t *rates(long long i, long long p, long long r, long long nc, long long u)
{
    long long d = i + p + r + nc + u;
    return json_pack("{s:o, s:o}", "rr1", rb_feedback_share(i, d), "rr2",
                     rb_feedback_share(i + p, d));
}

static const char *group_name(const struct report *r, PGresult *res, int row)
{
    if (!PQgetisnull(res, row, C_NAME))
        return PQgetvalue(res, row, C_NAME);
    return rb_reports_group_name(r->srv->cfg, r->by, PQgetvalue(res, row, C_G));
}

static json_t *group_json(const struct report *r, PGresult *res, int i)
{
    long long responded = v(res, i, C_I) + v(res, i, C_P);
    json_t *disp = json_pack("{s:I, s:I, s:I, s:I, s:I}", "complete", (json_int_t)v(res, i, C_I),
                             "partial", (json_int_t)v(res, i, C_P), "refusal",
                             (json_int_t)v(res, i, C_R), "non_contact",
                             (json_int_t)v(res, i, C_NC), "unknown_eligibility",
                             (json_int_t)v(res, i, C_U));
    json_t *contacted = json_pack("{s:I, s:I, s:I}", "call", (json_int_t)v(res, i, C_CC), "sms",
                                  (json_int_t)v(res, i, C_CS), "agent",
                                  (json_int_t)v(res, i, C_CA));
    long long finished = responded + v(res, i, C_R) + v(res, i, C_NC) + v(res, i, C_U);
    return json_pack(
        "{s:s, s:s, s:I, s:{s:I, s:I}, s:I, s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I,"
        " s:{s:I, s:I}, s:b}",
        "group", PQgetvalue(res, i, C_G), "name", group_name(r, res, i), "transactions",
        (json_int_t)v(res, i, C_T), "data_quality", "invalid_phone",
        (json_int_t)v(res, i, C_IP), "repeated_phone", (json_int_t)v(res, i, C_RP), "skipped",
        (json_int_t)v(res, i, C_SK), "contacted", contacted, "responded",
        (json_int_t)responded, "dispositions", disp, "response_rate",
        rates(v(res, i, C_I), v(res, i, C_P), v(res, i, C_R), v(res, i, C_NC), v(res, i, C_U)),
        "response", rb_feedback_share(responded, finished), "dissatisfied",
        rb_feedback_share(v(res, i, C_D), v(res, i, C_SN)), "bribe",
        rb_feedback_share(v(res, i, C_B), v(res, i, C_BN)), "delayed",
        rb_feedback_share(v(res, i, C_DL), v(res, i, C_DN)), "cases",
        (json_int_t)v(res, i, C_CASES), "appreciation", (json_int_t)v(res, i, C_AP), "actions",
        "taken", (json_int_t)v(res, i, C_ACT), "followed_up", (json_int_t)v(res, i, C_FU),
        "small_sample", responded < RB_FEEDBACK_SMALL_N);
}

/* The league: groups ranked by the lower bound of the measure's interval, highest first
 * (ties: the higher share, then the id). */
static int league_cmp(const void *a, const void *b, void *arg)
{
    const char *m = arg;
    json_t *x = json_object_get(*(json_t *const *)a, m), *y = json_object_get(*(json_t *const *)b, m);
    double lx = json_is_number(json_object_get(x, "low")) ? json_number_value(json_object_get(x, "low")) : -1;
    double ly = json_is_number(json_object_get(y, "low")) ? json_number_value(json_object_get(y, "low")) : -1;
    if (lx != ly)
        return lx < ly ? 1 : -1;
    double sx = json_number_value(json_object_get(x, "share")),
           sy = json_number_value(json_object_get(y, "share"));
    return sx < sy ? 1 : sx > sy ? -1 : 0;
}

static void reply_json(struct report *r, PGresult *res)
{
    size_t n = (size_t)PQntuples(res);
    json_t **g = rb_calloc(n ? n : 1, sizeof(*g));
    for (size_t i = 0; i < n; i++)
        g[i] = group_json(r, res, (int)i);
    if (r->league)
        qsort_r(g, n, sizeof(*g), league_cmp, r->measure);
    json_t *groups = json_array();
    for (size_t i = 0; i < n; i++) {
        if (r->league)
            json_object_set_new(g[i], "rank", json_integer((json_int_t)i + 1));
        json_array_append_new(groups, g[i]);
    }
    free(g);
    json_t *out = json_pack("{s:s, s:s, s:s, s:o, s:o}", "from", r->from, "to", r->to, "by",
                            r->by, "department",
                            r->department[0] ? json_string(r->department) : json_null(),
                            r->league ? "league" : "groups", groups);
    if (r->league)
        json_object_set_new(out, "ranked_by", json_sprintf("%s: the lower bound of its 95%% "
                                                           "Wilson interval", r->measure));
    rb_http_reply_json(r->req, 200, out);
}

static void csv_share(FILE *out, json_t *s)
{
    json_t *sh = json_object_get(s, "share");
    if (json_is_null(sh)) {
        fputs(",,,", out);
        return;
    }
    fprintf(out, ",%.4f,%.4f,%.4f", json_number_value(sh),
            json_number_value(json_object_get(s, "low")),
            json_number_value(json_object_get(s, "high")));
}

static void reply_csv(struct report *r, PGresult *res)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        rb_fatal("out of memory");
    fputs("group,name,transactions,invalid_phone,repeated_phone,skipped,contacted_call,"
          "contacted_sms,contacted_agent,complete,partial,refusal,non_contact,"
          "unknown_eligibility,responded,rr1,rr2,dissatisfied_n,dissatisfied,"
          "dissatisfied_low,dissatisfied_high,bribe_n,bribe,bribe_low,bribe_high,cases,"
          "appreciation,actions,followed_up,small_sample\r\n", out);
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *g = group_json(r, res, i);
        rb_reports_csv_field(out, PQgetvalue(res, i, C_G));
        fputc(',', out);
        rb_reports_csv_field(out, group_name(r, res, i));
        for (int c = C_T; c <= C_U; c++)
            fprintf(out, ",%lld", v(res, i, c));
        fprintf(out, ",%lld", v(res, i, C_I) + v(res, i, C_P));
        json_t *rr = json_object_get(g, "response_rate");
        for (int k = 0; k < 2; k++) {
            json_t *x = json_object_get(json_object_get(rr, k ? "rr2" : "rr1"), "share");
            if (json_is_null(x))
                fputs(",", out);
            else
                fprintf(out, ",%.4f", json_number_value(x));
        }
        fprintf(out, ",%lld", v(res, i, C_SN));
        csv_share(out, json_object_get(g, "dissatisfied"));
        fprintf(out, ",%lld", v(res, i, C_BN));
        csv_share(out, json_object_get(g, "bribe"));
        fprintf(out, ",%lld,%lld,%lld,%lld,%s\r\n", v(res, i, C_CASES), v(res, i, C_AP),
                v(res, i, C_ACT), v(res, i, C_FU),
                json_is_true(json_object_get(g, "small_sample")) ? "true" : "false");
        json_decref(g);
    }
    fclose(out);
    rb_http_reply(r->req, 200, "text/csv; charset=utf-8", text, len);
    free(text);
}

static void report_done(PGresult *res, const char *err, void *arg)
{
    struct report *r = arg;
    if (err) {
        rb_http_reply_db_error(r->req, err, "the report"); /* bad bytes 400, else 503 */
    } else if (r->csv) {
        reply_csv(r, res);
    } else {
        reply_json(r, res);
    }
    free(r);
}

/* The parameters, checked; 0, or -1 after answering 400 or 404. */
static int parse_params(struct report *r)
{
    struct rb_http_req *req = r->req;
    const char *by = rb_http_req_query(req, "by"), *fmt = rb_http_req_query(req, "format");
    const char *dept = rb_http_req_query(req, "department");
    const char *measure = rb_http_req_query(req, "measure");
    int known_by = 0;
    for (size_t i = 0; by && i < RB_ARRAY_LEN(bys); i++)
        known_by |= strcmp(by, bys[i]) == 0;
    if (rb_reports_period(req, r->from, r->to) != 0)
        return -1;
    if (by && (!known_by || r->league))
        rb_http_reply_error(req, 400, "invalid_field", "by must be district, office, official, "
                            "service or department (the league is of offices)");
    else if (fmt && strcmp(fmt, "json") != 0 && (strcmp(fmt, "csv") != 0 || r->league))
        rb_http_reply_error(req, 400, "invalid_field", "format must be json or csv");
    else if (measure && strcmp(measure, "dissatisfied") != 0 && strcmp(measure, "bribe") != 0)
        rb_http_reply_error(req, 400, "invalid_field", "measure must be dissatisfied or bribe");
    else if (dept && (strlen(dept) >= sizeof(r->department) ||
                      !rb_config_department(r->srv->cfg, dept)))
        rb_http_reply_error(req, 404, "not_found", "there is no department \"%.64s\"", dept);
    else {
        snprintf(r->by, sizeof(r->by), "%s", r->league ? "office" : by ? by : "office");
        snprintf(r->department, sizeof(r->department), "%s", dept ? dept : "");
        snprintf(r->measure, sizeof(r->measure), "%s", measure ? measure : "dissatisfied");
        r->csv = fmt && strcmp(fmt, "csv") == 0;
        return 0;
    }
    return -1;
}

static void authed(struct rb_http_req *req, const struct rb_staff_user *u, void *arg)
{
    struct report *r = arg;
    if (!u || parse_params(r) != 0) {
        free(r);
        return;
    }
    char districts[RB_STAFF_DISTRICTS_CSV];
    int scoped = rb_staff_scoped(u, districts);
    if (u->role == RB_STAFF_AGENT ||
        (scoped && r->department[0] && strcmp(r->department, u->department) != 0)) {
        rb_http_reply_error(req, 403, "forbidden", "the %s role sees %s", rb_staff_role_str(u->role),
                            scoped ? "the reports of its own department only" : "no reports");
        free(r);
        return;
    }
    if (scoped)
        snprintf(r->department, sizeof(r->department), "%s", u->department);
    const char *p[5] = {r->from, r->to, r->by, r->department[0] ? r->department : NULL,
                        districts[0] ? districts : NULL};
    if (rb_db_query(r->srv->db, report_sql, 5, p, report_done, r) != RB_OK) {
        rb_http_reply_busy(req);
        free(r);
    }
}

static void start(struct rb_http_req *req, struct rb_server *srv, int league)
{
    struct report *r = rb_calloc(1, sizeof(*r));
    r->srv = srv;
    r->req = req;
    r->league = league;
    rb_staff_api_authenticate(req, authed, r);
}

static void on_report(struct rb_http_req *req, void *arg)
{
    start(req, arg, 0);
}

static void on_league(struct rb_http_req *req, void *arg)
{
    start(req, arg, 1);
}

int rb_feedback_reports_init(struct rb_server *srv)
{
    int rc = rb_http_route(srv->http, RB_HTTP_GET, "/api/v1/staff/reports/feedback", on_report,
                           srv);
    if (rc == RB_OK)
        rc = rb_http_route(srv->http, RB_HTTP_GET, "/api/v1/staff/reports/feedback/league",
                           on_league, srv);
    return rc;
}
