/* The oversight dashboard (/staff/dashboard, docs/web.md "Dashboard"): per department, the
 * share of cases resolved on time in each of the last six months, the open backlog by age,
 * escalations by level and the citizens' satisfaction, drawn as SVG by the template from
 * numbers computed here; and its CSV export (/staff/dashboard.csv, the SLA report's CSV).
 *
 * The figures come from the staff API's SLA report (docs/api.md), one call per month, with the
 * viewer's token, so each person sees only their scope. A report over a million cases takes a
 * good part of a second, so the answers are kept for CACHE_TTL seconds per scope (role,
 * department and districts) and month: a page is drawn from what is kept, and a month whose
 * figures are older than that is asked again in the background by the next viewer; only a
 * scope's very first view waits for the reports. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "web.h"

#define MONTHS 6
#define CACHE_TTL 60.0
#define CACHE_SLOTS 32
#define BAR_H 40 /* height of a month's bar at 100% */

struct slot {
    char key[400]; /* scope | uri */
    json_t *answer; /* owned: the report, or NULL while the first call is under way */
    double at;      /* when answer was stored (monotonic seconds) */
    int asking;     /* a call for this slot is under way */
};

static struct slot cache[CACHE_SLOTS];

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The slot for key: the one holding it, else an empty one, else the oldest that no call is
 * filling (emptied). */
static struct slot *slot_for(const char *key)
{
    struct slot *empty = NULL, *oldest = NULL;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        struct slot *s = &cache[i];
        if (strcmp(s->key, key) == 0)
            return s;
        if (!s->key[0]) {
            empty = empty ? empty : s;
        } else if (!s->asking && (!oldest || s->at < oldest->at)) {
            oldest = s;
        }
    }
    struct slot *pick = empty ? empty : oldest ? oldest : &cache[0];
    json_decref(pick->answer);
    memset(pick, 0, sizeof(*pick));
    snprintf(pick->key, sizeof(pick->key), "%s", key);
    return pick;
}

/* One page being drawn: the months' URIs and how many answers are still awaited. */
struct dash {
    struct page *pg;
    char scope[200];
    char month[MONTHS][16];     /* "2026-07" */
    char uri[MONTHS][160];
    int waiting;                /* answers the page still waits for */
};

static void draw(struct dash *d);

/* A refresh in the background: the page does not wait for it. */
struct refresh {
    char key[400];
    struct dash *d; /* the page waiting for this answer, or NULL */
};

static void month_answered(int status, const char *ct, const char *body, size_t len, void *arg)
{
    struct refresh *r = arg;
    struct slot *s = slot_for(r->key);
    s->asking = 0;
    if (status == 200 && ct && strncmp(ct, "application/json", 16) == 0) {
        json_t *j = json_loadb(body, len, 0, NULL);
        if (j) {
            json_decref(s->answer);
            s->answer = j;
            s->at = now_mono();
        }
    }
    struct dash *d = r->d;
    free(r);
    if (d && --d->waiting == 0)
        draw(d);
}

/* Asks for month i of d: the page waits when wait is set. */
static void ask(struct dash *d, int i, const char *key, int wait)
{
    struct refresh *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    snprintf(r->key, sizeof(r->key), "%s", key);
    r->d = wait ? d : NULL;
    slot_for(key)->asking = 1;
    char auth[WEB_TOKEN_MAX + 32];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", d->pg->staff);
    const char *hdrs[2] = {auth, NULL};
    if (wait)
        d->waiting++;
    if (web_g.api->api_request(web_g.ctx, d->pg->req, RB_HTTP_GET, d->uri[i], hdrs, NULL, 0,
                               month_answered, r) != RB_OK) {
        slot_for(key)->asking = 0;
        if (wait)
            d->waiting--;
        free(r);
    }
    sodium_memzero(auth, sizeof(auth));
}

/* ---- drawing ------------------------------------------------------------------------------- */

static double num(const json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

/* The department's entry in out (made when missing). */
static json_t *dept_row(json_t *out, const json_t *g, const char *lang)
{
    const char *id = json_string_value(json_object_get(g, "group"));
    size_t i;
    json_t *x;
    json_array_foreach(out, i, x)
    {
        if (strcmp(json_string_value(json_object_get(x, "id")), id ? id : "") == 0)
            return x;
    }
    const char *name = json_string_value(json_object_get(g, "name"));
    json_array_foreach(web_g.departments[WEB_LANG_IX(lang)], i, x)
    {
        if (id && strcmp(json_string_value(json_object_get(x, "id")), id) == 0)
            name = json_string_value(json_object_get(x, "name"));
    }
    x = json_pack("{s:s, s:s?, s:[], s:[], s:[], s:I, s:n, s:n}", "id", id ? id : "", "name",
                  name, "months", "backlog", "breaches", "open", (json_int_t)0, "rating_avg",
                  "satisfied_pct");
    if (!x)
        abort(); /* the format above is wrong */
    json_array_append_new(out, x);
    return x;
}

/* Bars of the backlog by age, as x offsets and widths out of 300. */
static void backlog_bars(json_t *row, const json_t *g)
{
    static const char *const ages[] = {"lt_1d", "1_3d", "3_7d", "gt_7d"};
    const json_t *b = json_object_get(g, "backlog");
    double total = 0, x = 0;
    for (int a = 0; a < 4; a++)
        total += num(b, ages[a]);
    json_object_set_new(row, "open", json_integer((json_int_t)total));
    for (int a = 0; a < 4; a++) {
        double n = num(b, ages[a]), w = total > 0 ? 300.0 * n / total : 0;
        json_array_append_new(json_object_get(row, "backlog"),
                              json_pack("{s:s, s:I, s:i, s:i}", "age", ages[a], "n",
                                        (json_int_t)n, "x", (int)x, "w", (int)(w + 0.5)));
        x += w;
    }
    const json_t *br = json_object_get(g, "breaches");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)br, k, v)
    {
        json_array_append_new(json_object_get(row, "breaches"),
                              json_pack("{s:s, s:I}", "level", k,
                                        (json_int_t)json_integer_value(v)));
    }
    json_object_set(row, "rating_avg", json_object_get(g, "rating_avg"));
    json_object_set(row, "satisfied_pct", json_object_get(g, "satisfied_pct"));
}

static void draw(struct dash *d)
{
    struct page *pg = d->pg;
    json_t *depts = json_array();
    for (int i = 0; i < MONTHS; i++) {
        char key[400];
        snprintf(key, sizeof(key), "%s|%s", d->scope, d->uri[i]);
        const json_t *rep = slot_for(key)->answer;
        size_t k;
        json_t *g;
        json_array_foreach(json_object_get(rep, "groups"), k, g)
        {
            json_t *row = dept_row(depts, g, pg->lang);
            json_t *pct = json_object_get(g, "resolved_on_time_pct");
            int h = json_is_number(pct) ? (int)(json_number_value(pct) * BAR_H / 100 + 0.5) : 0;
            json_array_append_new(json_object_get(row, "months"),
                                  json_pack("{s:s, s:O, s:i, s:i, s:i}", "month", d->month[i],
                                            "pct", pct ? pct : json_null(), "x", i * 20 + 2,
                                            "y", BAR_H - h, "h", h));
            if (i == MONTHS - 1)
                backlog_bars(row, g);
        }
    }
    web_page_set(pg, "departments_dash", depts);
    web_page_set_str(pg, "from", d->month[0]);
    web_page_set_str(pg, "to", d->month[MONTHS - 1]);
    free(d);
    web_page_render(pg, 200, "staff_dashboard");
}

/* ---- the page ------------------------------------------------------------------------------ */

/* The first day of the month `back` months before this one, as "YYYY-MM", and the period's
 * first and last days. */
static void month_of(int back, char ym[16], char from[16], char to[16])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    int m = tm.tm_year * 12 + tm.tm_mon - back;
    int y = m / 12 + 1900, mo = m % 12 + 1;
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int last = days[mo - 1] + (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    snprintf(ym, 16, "%04d-%02d", y % 10000, mo % 100);
    snprintf(from, 16, "%04d-%02d-01", y % 10000, mo % 100);
    snprintf(to, 16, "%04d-%02d-%02d", y % 10000, mo % 100, last % 100);
}

static void me_for_dashboard(struct page *pg, int status, json_t *me)
{
    if (status == 401) {
        web_page_cookie(pg, "rb_staff", "", "/staff", 0);
        web_page_redirect(pg, "/staff/login");
        return;
    }
    if (status != 200) {
        web_page_error(pg, status, "error.api", web_api_message(me, NULL));
        return;
    }
    web_page_set(pg, "me", json_incref(me));
    struct dash *d = calloc(1, sizeof(*d));
    if (!d)
        abort();
    d->pg = pg;
    char *districts = json_dumps(json_object_get(me, "districts"), JSON_COMPACT);
    snprintf(d->scope, sizeof(d->scope), "%s|%s|%s",
             json_string_value(json_object_get(me, "role")),
             json_string_value(json_object_get(me, "department"))
                 ? json_string_value(json_object_get(me, "department"))
                 : "",
             districts ? districts : "");
    free(districts);
    d->waiting = 1; /* held until every month is asked */
    double now = now_mono();
    for (int i = 0; i < MONTHS; i++) {
        char from[16], to[16], key[400];
        month_of(MONTHS - 1 - i, d->month[i], from, to);
        snprintf(d->uri[i], sizeof(d->uri[i]),
                 "/api/v1/staff/reports/sla?by=department&from=%s&to=%s", from, to);
        snprintf(key, sizeof(key), "%s|%s", d->scope, d->uri[i]);
        struct slot *s = slot_for(key);
        if (!s->answer && !s->asking)
            ask(d, i, key, 1);
        else if (s->answer && !s->asking && now - s->at > CACHE_TTL)
            ask(d, i, key, 0);
        else if (!s->answer)
            ask(d, i, key, 1); /* another page asked first; ask too rather than wait on it */
    }
    if (--d->waiting == 0)
        draw(d);
}

static void on_dashboard(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = web_page_new(req);
    if (!pg->staff[0]) {
        web_page_redirect(pg, "/staff/login");
        return;
    }
    web_api(pg, RB_HTTP_GET, "/api/v1/staff/me", pg->staff, NULL, me_for_dashboard);
}

/* ---- CSV ----------------------------------------------------------------------------------- */

struct csv {
    struct rb_http_req *req;
};

static void csv_answered(int status, const char *ct, const char *body, size_t len, void *arg)
{
    struct csv *c = arg;
    if (status == 200) {
        web_g.api->reply_header(c->req, "Content-Disposition",
                                "attachment; filename=\"rabta-sla.csv\"");
        web_g.api->reply_header(c->req, "Cache-Control", "no-store");
    }
    web_g.api->reply(c->req, status, ct, body, len);
    free(c);
}

static void on_csv(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = web_page_new(req); /* for the cookies */
    char from[16], to[16], ym[16], uri[200], auth[WEB_TOKEN_MAX + 32];
    month_of(MONTHS - 1, ym, from, to);
    char last_from[16], last_to[16];
    month_of(0, ym, last_from, last_to);
    snprintf(uri, sizeof(uri),
             "/api/v1/staff/reports/sla?by=department&format=csv&from=%s&to=%s", from, last_to);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", pg->staff);
    const char *hdrs[2] = {auth, NULL};
    struct csv *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->req = req;
    int ok = pg->staff[0] && web_g.api->api_request(web_g.ctx, req, RB_HTTP_GET, uri, hdrs, NULL,
                                                    0, csv_answered, c) == RB_OK;
    sodium_memzero(auth, sizeof(auth));
    if (!ok) {
        free(c);
        web_page_redirect(pg, "/staff/login");
        return;
    }
    web_page_free(pg);
}

int web_dashboard_routes(struct rb_plugin_ctx *ctx)
{
    static const struct web_route routes[] = {
        {RB_HTTP_GET, "/staff/dashboard", on_dashboard, NULL},
        {RB_HTTP_GET, "/staff/dashboard.csv", on_csv, NULL},
    };
    return web_routes(ctx, routes, sizeof(routes) / sizeof(routes[0]));
}

void web_dashboard_free(void)
{
    for (int i = 0; i < CACHE_SLOTS; i++)
        json_decref(cache[i].answer);
    memset(cache, 0, sizeof(cache));
}
