/* The staff screens under /staff (docs/web.md "Staff"): sign-in, the inbox by deadline with
 * its filters and time left, a case with its timeline and a form for each step the state
 * machine allows now, notes, assignment and actions on officials. Everything is a call into
 * the staff API (docs/api.md section 6) with the bearer token kept in the rb_staff cookie:
 * the sign-in limits, the scope rules and the state machine are the API's own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web.h"

#define STAFF_COOKIE_AGE (12L * 3600)

/* The steps of the state machine a form can take, with the staff API's path and the text
 * field each needs (NULL: none). */
static const struct {
    const char *action, *path, *field;
} steps[] = {
    {"acknowledge", "acknowledge", NULL}, {"start", "start", NULL},
    {"ask_citizen", "ask", "question"},   {"resolve", "resolve", "note"},
    {"answer", "answer", "answer"},       {"reject", "reject", "reason"},
    {"transfer", "transfer", "reason"},
};

/* Paths a form may post to under /staff/cases/:tracking/, with their text fields. */
static const struct {
    const char *path;
    const char *fields[3];
} posts[] = {
    {"acknowledge", {"note"}}, {"start", {"note"}},
    {"ask", {"question"}},     {"resolve", {"note"}},
    {"answer", {"answer"}},    {"reject", {"reason"}},
    {"transfer", {"reason", "department"}}, {"comment", {"text"}},
    {"assign", {"username"}},  {"actions", {"official", "action", "note"}},
};

static void on_root(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = web_page_new(req);
    web_page_redirect(pg, pg->staff[0] ? "/staff/inbox" : "/staff/login");
}

static void on_login_form(struct rb_http_req *req, void *arg)
{
    (void)arg;
    web_page_render(web_page_new(req), 200, "staff_login");
}

static void logged_in(struct page *pg, int status, json_t *body)
{
    web_page_signed_in(pg, status, body, "rb_staff", "/staff", STAFF_COOKIE_AGE, "/staff/inbox",
                       "staff_login", "username");
}

static void on_login(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = web_page_new(req);
    if (web_page_form(pg) != 0)
        return;
    const char *u = web_field(pg, "username"), *p = web_field(pg, "password");
    web_api(pg, RB_HTTP_POST, "/api/v1/staff/login", NULL,
            json_pack("{s:s, s:s}", "username", u ? u : "", "password", p ? p : ""), logged_in);
}

static void logged_out(struct page *pg, int status, json_t *body)
{
    (void)status;
    (void)body;
    web_page_cookie(pg, "rb_staff", "", "/staff", 0);
    web_page_redirect(pg, "/staff/login");
}

static void on_logout(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = web_page_new(req);
    if (web_page_form(pg) != 0)
        return;
    web_api(pg, RB_HTTP_POST, "/api/v1/staff/logout", pg->staff, NULL, logged_out);
}

/* ---- the signed-in door: /me first, then the page's own call ------------------------------ */

struct staff_call {
    char uri[1024];
    web_api_fn then;
};

int web_staff_still(struct page *pg, int status)
{
    if (status != 401)
        return 1;
    web_page_cookie(pg, "rb_staff", "", "/staff", 0);
    web_page_redirect(pg, "/staff/login");
    return 0;
}

static void me_loaded(struct page *pg, int status, json_t *body)
{
    struct staff_call *sc = pg->extra;
    pg->extra = NULL;
    if (!web_staff_still(pg, status)) {
        free(sc);
        return;
    }
    if (status != 200) {
        free(sc);
        web_page_error(pg, status, "error.api", web_api_message(body, NULL));
        return;
    }
    const char *role = json_string_value(json_object_get(body, "role"));
    web_page_set(pg, "me", json_incref(body));
    web_page_set(pg, "is_supervisor", json_boolean(role && (strcmp(role, "supervisor") == 0 ||
                                                            strcmp(role, "admin") == 0)));
    web_page_set(pg, "can_write", json_boolean(role && strcmp(role, "oversight") != 0));
    web_page_set(pg, "is_admin", json_boolean(role && strcmp(role, "admin") == 0));
    web_api(pg, RB_HTTP_GET, sc->uri, pg->staff, NULL, sc->then);
    free(sc);
}

void web_staff_begin(struct page *pg, const char *uri, web_api_fn then)
{
    if (!pg->staff[0]) {
        web_page_redirect(pg, "/staff/login");
        return;
    }
    struct staff_call *sc = calloc(1, sizeof(*sc));
    if (!sc)
        abort();
    snprintf(sc->uri, sizeof(sc->uri), "%s", uri);
    sc->then = then;
    pg->extra = sc;
    web_api(pg, RB_HTTP_GET, "/api/v1/staff/me", pg->staff, NULL, me_loaded);
}

/* ---- inbox --------------------------------------------------------------------------------- */

/* Time left as whole days, hours and minutes of its absolute value, and whether it is past. */
static void time_left(json_t *row)
{
    json_t *sla = json_object_get(row, "sla");
    json_t *tl = json_object_get(sla, "time_left");
    if (!json_is_number(tl))
        return;
    long long s = (long long)json_number_value(tl);
    int late = s < 0;
    if (late)
        s = -s;
    json_object_set_new(row, "left", json_pack("{s:b, s:I, s:I, s:I}", "late", late, "d",
                                               s / 86400, "h", s % 86400 / 3600, "m",
                                               s % 3600 / 60));
}

static void inbox_loaded(struct page *pg, int status, json_t *body)
{
    if (!web_staff_still(pg, status))
        return;
    if (status != 200) {
        web_page_error(pg, status, "error.api", web_api_message(body, NULL));
        return;
    }
    json_t *cases = json_object_get(body, "cases");
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) time_left(c);
    web_page_set(pg, "cases", json_incref(cases));
    web_page_set(pg, "next_cursor", json_incref(json_object_get(body, "next_cursor")));
    web_page_render(pg, 200, "staff_inbox");
}

static void on_inbox(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = web_page_new(req);
    static const char *const filters[] = {"status", "service", "district", "overdue",
                                          "flagged", "escalated", "cursor", "department"};
    struct web_buf uri = {0};
    web_buf_str(&uri, "/api/v1/staff/inbox?limit=50");
    json_t *f = json_object();
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
        const char *v = web_g.api->req_query(req, filters[i]);
        if (!v || !*v)
            continue;
        web_buf_str(&uri, "&");
        web_buf_str(&uri, filters[i]);
        web_buf_str(&uri, "=");
        web_buf_urlenc(&uri, v);
        json_object_set_new(f, filters[i], json_string(v));
    }
    web_page_set(pg, "filter", f);
    int l = WEB_LANG_IX(pg->lang);
    web_page_set(pg, "services", json_incref(web_g.services[l]));
    web_page_set(pg, "districts", json_incref(web_g.districts[l]));
    if (uri.n < 1000)
        web_staff_begin(pg, uri.p, inbox_loaded);
    else
        web_page_error(pg, 400, "error.bad_form", NULL);
    free(uri.p);
}

/* ---- one case ------------------------------------------------------------------------------ */

/* Supervisors record actions on a registered official (docs/feedback.md): the officials in
 * their scope, the one whose name the case gives chosen first. */
static void officials_loaded(struct page *pg, int status, json_t *body)
{
    json_t *list = json_object_get(body, "officials");
    const char *named = json_string_value(
        json_object_get(json_object_get(pg->data, "case"), "names_official"));
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        const char *name = json_string_value(json_object_get(o, "name"));
        json_object_set_new(o, "chosen", json_boolean(named && name && strcasecmp(named, name) == 0));
    }
    web_page_set(pg, "officials", status == 200 ? json_incref(list) : json_array());
    web_page_render(pg, 200, "staff_case");
}

static void case_loaded(struct page *pg, int status, json_t *body)
{
    if (!web_staff_still(pg, status))
        return;
    if (status != 200) {
        web_page_error(pg, status, "error.not_found", web_api_message(body, NULL));
        return;
    }
    time_left(body);
    json_t *acts = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(body, "allowed_actions"), i, a)
    {
        for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
            if (strcmp(json_string_value(a), steps[k].action) != 0)
                continue;
            json_t *one = json_pack("{s:s, s:s, s:s?, s:b}", "action", steps[k].action, "path",
                                    steps[k].path, "field", steps[k].field, "transfer",
                                    strcmp(steps[k].path, "transfer") == 0);
            json_array_append_new(acts, one);
        }
    }
    int writer = json_is_true(json_object_get(pg->data, "can_write"));
    web_page_set(pg, "actions", writer ? acts : (json_decref(acts), json_array()));
    web_page_set(pg, "case", json_incref(body));
    web_page_set_str(pg, "tracking", pg->tracking);
    web_page_set_str(pg, "done", web_g.api->req_query(pg->req, "done"));
    web_page_set(pg, "departments", json_incref(web_g.departments[WEB_LANG_IX(pg->lang)]));
    if (json_is_true(json_object_get(pg->data, "is_supervisor")))
        web_api(pg, RB_HTTP_GET, "/api/v1/staff/officials", pg->staff, NULL, officials_loaded);
    else
        web_page_render(pg, 200, "staff_case");
}

static void on_case(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = web_page_new(req);
    if (web_page_tracking(pg) != 0)
        return;
    char uri[96];
    snprintf(uri, sizeof(uri), "/api/v1/staff/cases/%s", pg->tracking);
    web_staff_begin(pg, uri, case_loaded);
}

static void acted(struct page *pg, int status, json_t *body)
{
    if (!web_staff_still(pg, status))
        return;
    if (status != 200 && status != 201) {
        web_page_set_str(pg, "tracking", pg->tracking);
        web_page_error(pg, status, "error.api", web_api_message(body, NULL));
        return;
    }
    char loc[128];
    snprintf(loc, sizeof(loc), "/staff/cases/%s?done=%s", pg->tracking,
             json_string_value(json_object_get(body, "event"))
                 ? json_string_value(json_object_get(body, "event"))
                 : "ok");
    web_page_redirect(pg, loc);
}

static void on_act(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = web_page_new(req);
    if (!pg->staff[0]) {
        web_page_redirect(pg, "/staff/login");
        return;
    }
    if (web_page_form(pg) != 0 || web_page_tracking(pg) != 0)
        return;
    const char *path = web_g.api->req_param(req, "action");
    size_t k = 0;
    while (k < sizeof(posts) / sizeof(posts[0]) && strcmp(posts[k].path, path) != 0)
        k++;
    if (k == sizeof(posts) / sizeof(posts[0])) {
        web_page_error(pg, 404, "error.not_found", NULL);
        return;
    }
    json_t *body = json_object();
    for (int f = 0; f < 3 && posts[k].fields[f]; f++) {
        const char *v = web_field(pg, posts[k].fields[f]);
        if (v)
            json_object_set_new(body, posts[k].fields[f], json_string(v));
    }
    if (strcmp(path, "comment") == 0) /* a note stays inside unless the box says otherwise */
        json_object_set_new(body, "internal", json_boolean(!web_field(pg, "to_citizen")));
    char uri[128];
    snprintf(uri, sizeof(uri), "/api/v1/staff/cases/%s/%s", pg->tracking, path);
    web_api(pg, RB_HTTP_POST, uri, pg->staff, body, acted);
}

int web_staff_routes(struct rb_plugin_ctx *ctx)
{
    static const struct web_route routes[] = {
        {RB_HTTP_GET, "/staff", on_root, NULL},
        {RB_HTTP_GET, "/staff/login", on_login_form, NULL},
        {RB_HTTP_POST, "/staff/login", on_login, NULL},
        {RB_HTTP_POST, "/staff/logout", on_logout, NULL},
        {RB_HTTP_GET, "/staff/inbox", on_inbox, NULL},
        {RB_HTTP_GET, "/staff/cases/:tracking", on_case, NULL},
        {RB_HTTP_POST, "/staff/cases/:tracking/:action", on_act, NULL},
    };
    return web_routes(ctx, routes, sizeof(routes) / sizeof(routes[0]));
}
