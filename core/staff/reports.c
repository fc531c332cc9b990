/* SLA reports under the staff API. See reports.h. */
#include "staff/reports.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/process.h"
#include "config/config.h"
#include "db/db.h"
#include "net/http.h"
#include "sla/sla_policy.h"
#include "staff/staff_account.h"
#include "staff/staff_api.h"

#define PERIOD_MAX_DAYS 731 /* two years, a leap day included */

/* $1 from (date)  $2 to (date, included)  $3 group by  $4 department (NULL: all)
 * $5 districts "a,b" (NULL: all). Days are UTC days. One row per group, in group order:
 * group, officer's display name, cases, on-time acknowledgement % and resolution % (NULL when
 * no case has reached that deadline), median and 90th percentile seconds from creation to
 * resolution (NULL: none resolved), the open backlog aged <1d, 1-3d, 3-7d, >7d, and the
 * breaches {"ack": n, "level_1": n, ...} as JSON. */
static const char report_sql[] =
    "WITH c AS ("
    "  SELECT c.id, c.created_at, c.ack_due_at, c.resolve_due_at, c.acknowledged_at,"
    "    c.resolved_at, c.rating, s.display_name AS officer,"
    "    c.status IN ('submitted', 'routed', 'acknowledged', 'in_progress',"
    "      'awaiting_citizen', 'transferred', 'reopened') AS open,"
    "    coalesce(CASE $3::text WHEN 'department' THEN c.department_id"
    "      WHEN 'service' THEN c.service_id WHEN 'district' THEN c.district_id"
    "      ELSE s.username END, '') AS g"
    "  FROM cases c LEFT JOIN staff s ON s.id = c.assigned_staff_id"
    "  WHERE c.created_at >= ($1::date)::timestamp AT TIME ZONE 'UTC'"
    "    AND c.created_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'"
    "    AND ($4::text IS NULL OR c.department_id = $4::text)"
    "    AND ($5::text IS NULL OR c.district_id = ANY (string_to_array($5::text, ',')))),"
    " b AS ("
    "  SELECT c.g, CASE WHEN f.check_kind = 'ack' THEN 'ack'"
    "    ELSE 'level_' || (f.level + 1) END AS k, count(*) AS n"
    "  FROM c JOIN sla_firings f ON f.case_id = c.id"
    "  WHERE f.breached AND f.check_kind IN ('ack', 'resolve', 'citizen') GROUP BY 1, 2),"
    " bj AS (SELECT g, jsonb_object_agg(k, n) AS breaches FROM b GROUP BY g),"
    " g AS ("
    "  SELECT g, max(officer) AS officer, count(*) AS cases,"
    "    count(*) FILTER (WHERE ack_due_at IS NOT NULL"
    "      AND (acknowledged_at IS NOT NULL OR ack_due_at < now())) AS ack_n,"
    "    count(*) FILTER (WHERE acknowledged_at <= ack_due_at) AS ack_ok,"
    "    count(*) FILTER (WHERE resolve_due_at IS NOT NULL"
    "      AND (resolved_at IS NOT NULL OR resolve_due_at < now())) AS res_n,"
    "    count(*) FILTER (WHERE resolved_at <= resolve_due_at) AS res_ok,"
    "    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM resolved_at - created_at))"
    "      FILTER (WHERE resolved_at IS NOT NULL) AS med,"
    "    percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM resolved_at - created_at))"
    "      FILTER (WHERE resolved_at IS NOT NULL) AS p90,"
    "    count(*) FILTER (WHERE open AND now() - created_at < interval '1 day') AS b1,"
    "    count(*) FILTER (WHERE open AND now() - created_at >= interval '1 day'"
    "      AND now() - created_at < interval '3 days') AS b3,"
    "    count(*) FILTER (WHERE open AND now() - created_at >= interval '3 days'"
    "      AND now() - created_at < interval '7 days') AS b7,"
    "    count(*) FILTER (WHERE open AND now() - created_at >= interval '7 days') AS b8,"
    "    count(rating) AS rated, avg(rating) AS rating_avg,"
    "    count(*) FILTER (WHERE rating >= 3) AS satisfied"
    "  FROM c GROUP BY g)"
    " SELECT g.g, coalesce(g.officer, ''), g.cases,"
    "  CASE WHEN ack_n > 0 THEN round(100.0 * ack_ok / ack_n, 1) END,"
    "  CASE WHEN res_n > 0 THEN round(100.0 * res_ok / res_n, 1) END,"
    "  round(med::numeric), round(p90::numeric), b1, b3, b7, b8,"
    "  coalesce(bj.breaches, '{}')::text, rated,"
    "  CASE WHEN rated > 0 THEN round(rating_avg, 2) END,"
    "  CASE WHEN rated > 0 THEN round(100.0 * satisfied / rated, 1) END"
    " FROM g LEFT JOIN bj ON bj.g = g.g ORDER BY g.g";

enum { COL_GROUP, COL_OFFICER, COL_CASES, COL_ACK, COL_RES, COL_MED, COL_P90, COL_B1, COL_B3,
       COL_B7, COL_B8, COL_BREACHES, COL_RATED, COL_RATING_AVG, COL_SATISFIED };

static const char *const bys[] = {"department", "service", "officer", "district"};
static const char *const backlog_names[] = {"lt_1d", "1_3d", "3_7d", "gt_7d"};

struct report {
    struct rb_server *srv; /* borrowed */
    struct rb_http_req *req;
    char from[11], to[11], by[16], department[65];
    int csv;
    size_t levels; /* escalation levels the CSV has columns for */
};

/* ---- helpers ------------------------------------------------------------------------------ */

static long days_from_civil(long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long)doe - 719468;
}

int rb_reports_parse_date(const char *s, long *days)
{
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return -1;
    long y = atol(s);
    unsigned m = (unsigned)atoi(s + 5), d = (unsigned)atoi(s + 8);
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1900 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && leap))
        return -1;
    *days = days_from_civil(y, m, d);
    return 0;
}

/* 1 when s is a plain decimal number ("-3", "12.5"): no spreadsheet reads it as a formula. */
static int plain_number(const char *s)
{
    size_t n = strspn(s + (*s == '-'), "0123456789.");
    return n > 0 && s[(*s == '-') + n] == '\0';
}

void rb_reports_csv_field(FILE *out, const char *s)
{
    if (!s)
        return;
    /* A cell a spreadsheet would run as a formula gets a leading quote (OWASP CSV injection). */
    const char *lead = strchr("=+-@\t\r", *s) && *s && !plain_number(s) ? "'" : "";
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(lead, out);
        fputs(s, out);
        return;
    }
    fputc('"', out);
    fputs(lead, out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

/* The group's display name: the department's, service's or district's English name from the
 * configuration, the officer's display name; "" when unknown. Borrowed. */
static const char *group_name(const struct report *r, PGresult *res, int row)
{
    if (!strcmp(r->by, "officer"))
        return PQgetvalue(res, row, COL_OFFICER);
    return rb_reports_group_name(r->srv->cfg, r->by, PQgetvalue(res, row, COL_GROUP));
}

const char *rb_reports_group_name(const struct rb_config *cfg, const char *by, const char *id)
{
    const struct rb_department *d = !strcmp(by, "department") ? rb_config_department(cfg, id)
                                                               : NULL;
    const struct rb_service *s = !strcmp(by, "service") ? rb_config_service(cfg, id) : NULL;
    const struct rb_district *t = !strcmp(by, "district") ? rb_config_district(cfg, id) : NULL;
    const char *name = d ? d->name.en : s ? s->name.en : t ? t->name.en : NULL;
    return name ? name : "";
}

static const char *value(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static json_t *num_or_null(const char *v)
{
    return v ? json_real(atof(v)) : json_null();
}

static json_t *int_or_null(const char *v)
{
    return v ? json_integer(atoll(v)) : json_null();
}

/* ---- answers ------------------------------------------------------------------------------ */

static void reply_json(struct report *r, PGresult *res)
{
    json_t *groups = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *backlog = json_object();
        for (int b = 0; b < 4; b++)
            json_object_set_new(backlog, backlog_names[b],
                                json_integer(atoll(PQgetvalue(res, i, COL_B1 + b))));
        json_t *breaches = json_loads(PQgetvalue(res, i, COL_BREACHES), 0, NULL);
        if (!breaches)
            rb_fatal("report breaches are not JSON");
        const char *g = PQgetvalue(res, i, COL_GROUP);
        json_t *row = json_pack(
            "{s:o, s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "group",
            *g ? json_string(g) : json_null(), "name", group_name(r, res, i), "cases",
            (json_int_t)atoll(PQgetvalue(res, i, COL_CASES)), "acknowledged_on_time_pct",
            num_or_null(value(res, i, COL_ACK)), "resolved_on_time_pct",
            num_or_null(value(res, i, COL_RES)), "time_to_resolve_median_s",
            int_or_null(value(res, i, COL_MED)), "time_to_resolve_p90_s",
            int_or_null(value(res, i, COL_P90)), "backlog", backlog, "breaches", breaches);
        json_object_set_new(row, "rated",
                            json_integer(atoll(PQgetvalue(res, i, COL_RATED))));
        json_object_set_new(row, "rating_avg", num_or_null(value(res, i, COL_RATING_AVG)));
        json_object_set_new(row, "satisfied_pct", num_or_null(value(res, i, COL_SATISFIED)));
        json_array_append_new(groups, row);
    }
    json_t *out = json_pack("{s:s, s:s, s:s, s:o, s:o}", "from", r->from, "to", r->to, "by",
                            r->by, "department",
                            r->department[0] ? json_string(r->department) : json_null(),
                            "groups", groups);
    rb_http_reply_json(r->req, 200, out);
}

static void reply_csv(struct report *r, PGresult *res)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        rb_fatal("out of memory");
    fputs("group,name,cases,acknowledged_on_time_pct,resolved_on_time_pct,"
          "time_to_resolve_median_s,time_to_resolve_p90_s,backlog_lt_1d,backlog_1_3d,"
          "backlog_3_7d,backlog_gt_7d,breaches_ack",
          out);
    for (size_t l = 1; l <= r->levels; l++)
        fprintf(out, ",breaches_level_%zu", l);
    fputs("\r\n", out);
    for (int i = 0; i < PQntuples(res); i++) {
        rb_reports_csv_field(out, PQgetvalue(res, i, COL_GROUP));
        fputc(',', out);
        rb_reports_csv_field(out, group_name(r, res, i));
        for (int col = COL_CASES; col <= COL_B8; col++) {
            fputc(',', out);
            rb_reports_csv_field(out, value(res, i, col));
        }
        json_t *b = json_loads(PQgetvalue(res, i, COL_BREACHES), 0, NULL);
        fprintf(out, ",%lld", (long long)json_integer_value(json_object_get(b, "ack")));
        for (size_t l = 1; l <= r->levels; l++) {
            char key[32];
            snprintf(key, sizeof(key), "level_%zu", l);
            fprintf(out, ",%lld", (long long)json_integer_value(json_object_get(b, key)));
        }
        json_decref(b);
        fputs("\r\n", out);
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

/* ---- the request -------------------------------------------------------------------------- */

int rb_reports_period(struct rb_http_req *req, char from[11], char to[11])
{
    const char *f = rb_http_req_query(req, "from"), *t = rb_http_req_query(req, "to");
    long a = 0, z = 0;
    if (!f || !t || rb_reports_parse_date(f, &a) != 0 || rb_reports_parse_date(t, &z) != 0) {
        rb_http_reply_error(req, 400, "invalid_period",
                            "from and to are required dates, YYYY-MM-DD (e.g. "
                            "from=2026-01-01&to=2026-01-31)");
    } else if (a > z) {
        rb_http_reply_error(req, 400, "invalid_period", "from (%s) is after to (%s)", f, t);
    } else if (z - a + 1 > PERIOD_MAX_DAYS) {
        rb_http_reply_error(req, 400, "invalid_period",
                            "the period is %ld days; a report covers at most %d days (two years)",
                            z - a + 1, PERIOD_MAX_DAYS);
    } else {
        snprintf(from, 11, "%s", f);
        snprintf(to, 11, "%s", t);
        return 0;
    }
    return -1;
}

/* The parameters, checked; 0, or -1 after answering 400 or 404. */
static int parse_params(struct report *r)
{
    struct rb_http_req *req = r->req;
    const char *by = rb_http_req_query(req, "by"), *fmt = rb_http_req_query(req, "format");
    const char *dept = rb_http_req_query(req, "department");
    int known_by = 0;
    for (size_t i = 0; by && i < RB_ARRAY_LEN(bys); i++)
        known_by |= strcmp(by, bys[i]) == 0;
    if (rb_reports_period(req, r->from, r->to) != 0)
        return -1;
    if (by && !known_by) {
        rb_http_reply_error(req, 400, "invalid_field",
                            "by must be department, service, officer or district");
    } else if (fmt && strcmp(fmt, "json") != 0 && strcmp(fmt, "csv") != 0) {
        rb_http_reply_error(req, 400, "invalid_field", "format must be json or csv");
    } else if (dept && (strlen(dept) >= sizeof(r->department) ||
                        !rb_config_department(r->srv->cfg, dept))) {
        rb_http_reply_error(req, 404, "not_found", "there is no department \"%.64s\"", dept);
    } else {
        snprintf(r->by, sizeof(r->by), "%s", by ? by : "department");
        snprintf(r->department, sizeof(r->department), "%s", dept ? dept : "");
        r->csv = fmt && strcmp(fmt, "csv") == 0;
        r->levels = r->srv->sla ? r->srv->sla->n_levels : 0;
        return 0;
    }
    return -1;
}

static void authed(struct rb_http_req *req, const struct rb_staff_user *u, void *arg)
{
    struct report *r = arg;
    if (!u || parse_params(r) != 0) { /* answered */
        free(r);
        return;
    }
    if (u->role == RB_STAFF_AGENT) {
        rb_http_reply_error(req, 403, "forbidden", "agents see no reports");
        free(r);
        return;
    }
    char districts[RB_STAFF_DISTRICTS_CSV];
    int scoped = rb_staff_scoped(u, districts);
    if (scoped && r->department[0] && strcmp(r->department, u->department) != 0) {
        rb_http_reply_error(req, 403, "forbidden",
                            "the %s role sees the reports of its own department (%s) only",
                            rb_staff_role_str(u->role), u->department);
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

/* Staff first (an anonymous caller learns nothing), then the parameters, then the scope. */
static void on_sla_report(struct rb_http_req *req, void *arg)
{
    struct report *r = rb_calloc(1, sizeof(*r));
    r->srv = arg;
    r->req = req;
    rb_staff_api_authenticate(req, authed, r);
}

int rb_reports_init(struct rb_server *srv)
{
    if (rb_http_route(srv->http, RB_HTTP_GET, "/api/v1/staff/reports/sla", on_sla_report,
                      srv) != RB_OK) {
        rb_error("reports", "cannot register the report routes");
        return RB_ERR;
    }
    return RB_OK;
}
