/* The citizens' pages (docs/web.md "Citizens"): services by department with search, the
 * submit form and its receipt, tracking by number and the phone's last four digits, sign-in
 * by SMS code, my cases with their timelines, answering an officer's question, rating, and
 * the kiosk. Every read and change is a call into the app API (docs/api.md sections 3-5). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web.h"

#define CITIZEN_COOKIE_AGE (30L * 86400)

static struct page *citizen_page(struct rb_http_req *req)
{
    struct page *pg = web_page_new(req);
    const char *k = web_g.api->req_header(req, "Cookie");
    pg->kiosk = k && strstr(k, "rb_kiosk=1") != NULL;
    web_page_set(pg, "kiosk", json_boolean(pg->kiosk));
    return pg;
}

/* Does the text contain q, ignoring ASCII case? */
static int matches(const char *text, const char *q)
{
    return text && strcasestr(text, q) != NULL;
}

static void on_home(struct rb_http_req *req, void *arg)
{
    struct page *pg = citizen_page(req);
    const char *q = web_g.api->req_query(req, "q");
    json_t *deps = web_g.departments[WEB_LANG_IX(pg->lang)];
    if (arg) { /* /kiosk: this browser is a kiosk from now on */
        web_page_cookie(pg, "rb_kiosk", "1", "/", -1);
        web_page_set(pg, "kiosk", json_true());
    }
    if (q && *q) {
        json_t *out = json_array();
        size_t i, k;
        json_t *d, *s;
        json_array_foreach(deps, i, d)
        {
            json_t *hit = json_array();
            int dep_hit = matches(json_string_value(json_object_get(d, "name")), q);
            json_array_foreach(json_object_get(d, "services"), k, s)
            {
                if (dep_hit || matches(json_string_value(json_object_get(s, "name")), q) ||
                    matches(json_string_value(json_object_get(s, "id")), q))
                    json_array_append(hit, s);
            }
            if (json_array_size(hit))
                json_array_append_new(out, json_pack("{s:O, s:O, s:o}", "id",
                                                     json_object_get(d, "id"), "name",
                                                     json_object_get(d, "name"), "services", hit));
            else
                json_decref(hit);
        }
        web_page_set(pg, "departments", out);
        web_page_set_str(pg, "q", q);
        web_page_set(pg, "no_match", json_boolean(json_array_size(out) == 0));
        web_page_render(pg, 200, arg ? "kiosk" : "home");
        return;
    }
    if (web_page_kept(pg, 200, arg ? "kiosk" : "home", NULL))
        return;
    web_page_set(pg, "departments", json_incref(deps));
    web_page_render_kept(pg, 200, arg ? "kiosk" : "home", NULL);
}

/* ---- submit -------------------------------------------------------------------------------- */

/* list with the item whose id is chosen marked "selected": list itself (a new reference)
 * when nothing is chosen, else a copy. */
static json_t *marked(json_t *list, const char *chosen)
{
    if (!chosen || !*chosen)
        return json_incref(list);
    json_t *out = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x)
    {
        if (strcmp(json_string_value(json_object_get(x, "id")), chosen) == 0) {
            json_t *c = json_copy(x);
            json_object_set_new(c, "selected", json_true());
            json_array_append_new(out, c);
        } else {
            json_array_append(out, x);
        }
    }
    return out;
}

/* The form's lists with the chosen entries marked. */
static void submit_lists(struct page *pg, const char *service, const char *district,
                         const char *kind)
{
    static const char *const all[] = {"complaint", "feedback", "information"};
    int l = WEB_LANG_IX(pg->lang);
    web_page_set(pg, "services", marked(web_g.services[l], service));
    web_page_set(pg, "districts", marked(web_g.districts[l], district));
    json_t *kinds = json_array();
    for (int k = 0; k < 3; k++) {
        json_t *one = json_object();
        json_object_set_new(one, "id", json_string(all[k]));
        if (kind ? strcmp(kind, all[k]) == 0 : k == 0)
            json_object_set_new(one, "selected", json_true());
        json_array_append_new(kinds, one);
    }
    web_page_set(pg, "kinds", kinds);
}

static void on_submit_form(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = citizen_page(req);
    const char *service = web_g.api->req_query(req, "service");
    const char *kind = web_g.api->req_query(req, "kind");
    /* Kept per service and kind the lists can show; anything else is rendered each time. */
    int known_service = !service || !*service;
    size_t i;
    json_t *x;
    json_array_foreach(web_g.services[0], i, x)
    {
        if (service && strcmp(json_string_value(json_object_get(x, "id")), service) == 0)
            known_service = 1;
    }
    int known_kind = !kind || strcmp(kind, "complaint") == 0 || strcmp(kind, "feedback") == 0 ||
                     strcmp(kind, "information") == 0;
    char variant[160];
    snprintf(variant, sizeof(variant), "%s|%s", service ? service : "", kind ? kind : "");
    if (known_service && known_kind && web_page_kept(pg, 200, "submit", variant))
        return;
    submit_lists(pg, service, NULL, kind);
    if (known_service && known_kind)
        web_page_render_kept(pg, 200, "submit", variant);
    else
        web_page_render(pg, 200, "submit");
}

static void submitted(struct page *pg, int status, json_t *body)
{
    if (status == 201 && json_is_object(body)) {
        web_page_set(pg, "receipt", json_incref(body));
        web_page_render(pg, 201, "receipt");
        return;
    }
    submit_lists(pg, web_field(pg, "service"), web_field(pg, "district"),
                 web_field(pg, "kind"));
    web_page_set(pg, "form", json_incref(pg->form));
    web_page_set_str(pg, "error", web_api_message(body, "not stored; try again"));
    web_page_render(pg, status >= 400 && status < 600 ? status : 500, "submit");
}

/* A number field as JSON, NULL when absent; -1 when present but not a number. */
static int number_field(struct page *pg, const char *name, json_t *body, const char *key)
{
    const char *s = web_field(pg, name);
    if (!s)
        return 0;
    char *end;
    double v = strtod(s, &end);
    if (*end || end == s)
        return -1;
    json_object_set_new(body, key, json_real(v));
    return 0;
}

static void on_submit(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = citizen_page(req);
    if (web_page_form(pg) != 0)
        return;
    const char *kind = web_field(pg, "kind");
    json_t *body = json_pack("{s:s, s:s, s:s}", "kind", kind ? kind : "", "text",
                             web_field(pg, "text") ? web_field(pg, "text") : "", "language",
                             pg->lang);
    static const char *const strs[] = {"service", "district", "official"};
    for (int i = 0; i < 3; i++)
        if (web_field(pg, strs[i]))
            json_object_set_new(body, strs[i], json_string(web_field(pg, strs[i])));
    int anonymous = !pg->citizen[0] || web_field(pg, "anonymous");
    json_object_set_new(body, "anonymous", json_boolean(anonymous));
    if (!anonymous && web_field(pg, "share_contact"))
        json_object_set_new(body, "share_contact", json_true());
    if (number_field(pg, "lat", body, "lat") || number_field(pg, "long", body, "long") ||
        (kind && strcmp(kind, "feedback") == 0 && number_field(pg, "rating", body, "rating"))) {
        json_decref(body);
        submitted(pg, 400, json_pack("{s:{s:s}}", "error", "message",
                                     "latitude, longitude and rating are numbers"));
        return;
    }
    json_t *r = json_object_get(body, "rating");
    if (r)
        json_object_set_new(body, "rating", json_integer((json_int_t)json_real_value(r)));
    if (pg->photo.n) {
        size_t cap = sodium_base64_encoded_len(pg->photo.n, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(cap);
        if (!b64)
            abort();
        sodium_bin2base64(b64, cap, (const unsigned char *)pg->photo.p, pg->photo.n,
                          sodium_base64_VARIANT_ORIGINAL);
        json_object_set_new(body, "photo", json_pack("{s:s, s:s}", "content_type",
                                                     pg->photo_type, "data", b64));
        free(b64);
    }
    web_api(pg, RB_HTTP_POST, "/api/v1/cases", anonymous ? NULL : pg->citizen, body, submitted);
}

/* ---- track --------------------------------------------------------------------------------- */

static void tracked(struct page *pg, int status, json_t *body)
{
    if (status == 200)
        web_page_set(pg, "case", json_incref(body));
    else
        web_page_set_str(pg, "error", web_api_message(body, "not found"));
    web_page_render(pg, status == 200 ? 200 : status, "track");
}

static void on_track(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = citizen_page(req);
    const char *tn = web_g.api->req_query(req, "tn");
    const char *last4 = web_g.api->req_query(req, "last4");
    web_page_set_str(pg, "tn", tn);
    web_page_set_str(pg, "last4", last4);
    if ((!tn || !*tn) && !last4) {
        web_page_render_kept(pg, 200, "track", NULL);
        return;
    }
    if (!tn || !*tn) {
        web_page_render(pg, 200, "track");
        return;
    }
    char canon[40], uri[160];
    const char *why = NULL;
    if (web_g.api->tracking_parse(tn, canon, sizeof(canon), &why) != RB_OK) {
        web_page_set_str(pg, "error", why);
        web_page_render(pg, 400, "track");
        return;
    }
    struct web_buf q = {0};
    web_buf_urlenc(&q, last4 ? last4 : "");
    snprintf(uri, sizeof(uri), "/api/v1/cases/%s?phone_last4=%s", canon, q.p ? q.p : "");
    free(q.p);
    web_api(pg, RB_HTTP_GET, uri, pg->citizen[0] ? pg->citizen : NULL, NULL, tracked);
}

/* ---- sign-in by SMS code ------------------------------------------------------------------- */

static void on_signin_form(struct rb_http_req *req, void *arg)
{
    (void)arg;
    web_page_render(citizen_page(req), 200, "signin");
}

static void code_sent(struct page *pg, int status, json_t *body)
{
    web_page_set_str(pg, "phone", web_field(pg, "phone"));
    if (status != 202) {
        web_page_set_str(pg, "error", web_api_message(body, "try again"));
        web_page_render(pg, status, "signin");
        return;
    }
    web_page_render(pg, 200, "signin_code");
}

static void on_signin(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = citizen_page(req);
    if (web_page_form(pg) != 0)
        return;
    const char *phone = web_field(pg, "phone");
    web_api(pg, RB_HTTP_POST, "/api/v1/register", NULL,
            json_pack("{s:s, s:s}", "phone", phone ? phone : "", "language", pg->lang),
            code_sent);
}

static void verified(struct page *pg, int status, json_t *body)
{
    web_page_signed_in(pg, status, body, "rb_cit", "/", CITIZEN_COOKIE_AGE, "/my", "signin_code",
                       "phone");
}

static void on_signin_code(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = citizen_page(req);
    if (web_page_form(pg) != 0)
        return;
    const char *phone = web_field(pg, "phone"), *code = web_field(pg, "code");
    web_api(pg, RB_HTTP_POST, "/api/v1/verify", NULL,
            json_pack("{s:s, s:s}", "phone", phone ? phone : "", "code", code ? code : ""),
            verified);
}

static void signed_out(struct page *pg, int status, json_t *body)
{
    (void)status;
    (void)body;
    web_page_cookie(pg, "rb_cit", "", "/", 0);
    web_page_redirect(pg, "/");
}

static void on_signout(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = citizen_page(req);
    if (web_page_form(pg) != 0)
        return;
    web_api(pg, RB_HTTP_POST, "/api/v1/logout", pg->citizen, NULL, signed_out);
}

/* ---- my cases ------------------------------------------------------------------------------ */

/* The signed-in citizen's page, or NULL after sending them to sign in. */
static struct page *my_page(struct rb_http_req *req, int post)
{
    struct page *pg = citizen_page(req);
    if (!pg->citizen[0]) {
        web_page_redirect(pg, "/signin");
        return NULL;
    }
    if (post && web_page_form(pg) != 0)
        return NULL;
    return pg;
}

/* An API answer that says the citizen's sign-in is gone: forget it and sign in again. */
static int signed_in_still(struct page *pg, int status)
{
    if (status != 401)
        return 1;
    web_page_cookie(pg, "rb_cit", "", "/", 0);
    web_page_redirect(pg, "/signin");
    return 0;
}

static void my_listed(struct page *pg, int status, json_t *body)
{
    if (!signed_in_still(pg, status))
        return;
    if (status != 200) {
        web_page_error(pg, status, "error.api", web_api_message(body, NULL));
        return;
    }
    web_page_set(pg, "cases", json_incref(json_object_get(body, "cases")));
    web_page_render(pg, 200, "my");
}

static void on_my(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = my_page(req, 0);
    if (pg)
        web_api(pg, RB_HTTP_GET, "/api/v1/me/cases?limit=100", pg->citizen, NULL, my_listed);
}

static void my_case_loaded(struct page *pg, int status, json_t *body)
{
    if (!signed_in_still(pg, status))
        return;
    if (status != 200) {
        web_page_error(pg, status, "error.not_found", web_api_message(body, NULL));
        return;
    }
    json_t *c = json_object_get(body, "case");
    const char *st = json_string_value(json_object_get(c, "status"));
    st = st ? st : "";
    web_page_set(pg, "case", json_incref(c));
    web_page_set(pg, "events", json_incref(json_object_get(body, "events")));
    web_page_set(pg, "can_answer", json_boolean(strcmp(st, "awaiting_citizen") == 0));
    web_page_set(pg, "can_rate", json_boolean(strcmp(st, "resolved") == 0 ||
                                              strcmp(st, "answered") == 0 ||
                                              strcmp(st, "closed") == 0));
    web_page_set(pg, "can_comment", json_boolean(strcmp(st, "rejected") != 0));
    web_page_render(pg, 200, "my_case");
}

static void on_my_case(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = my_page(req, 0);
    if (!pg || web_page_tracking(pg) != 0)
        return;
    char uri[96];
    snprintf(uri, sizeof(uri), "/api/v1/cases/%s/timeline", pg->tracking);
    web_api(pg, RB_HTTP_GET, uri, pg->citizen, NULL, my_case_loaded);
}

static void my_case_changed(struct page *pg, int status, json_t *body)
{
    if (!signed_in_still(pg, status))
        return;
    if (status != 200 && status != 201) {
        web_page_error(pg, status, "error.api", web_api_message(body, NULL));
        return;
    }
    char loc[80];
    snprintf(loc, sizeof(loc), "/my/%s", pg->tracking);
    web_page_redirect(pg, loc);
}

static void on_my_comment(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = my_page(req, 1);
    if (!pg || web_page_tracking(pg) != 0)
        return;
    char uri[96];
    snprintf(uri, sizeof(uri), "/api/v1/cases/%s/comments", pg->tracking);
    const char *text = web_field(pg, "text");
    web_api(pg, RB_HTTP_POST, uri, pg->citizen, json_pack("{s:s}", "text", text ? text : ""),
            my_case_changed);
}

static void on_my_rate(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = my_page(req, 1);
    if (!pg || web_page_tracking(pg) != 0)
        return;
    char uri[96];
    snprintf(uri, sizeof(uri), "/api/v1/cases/%s/rating", pg->tracking);
    const char *r = web_field(pg, "rating"), *sat = web_field(pg, "satisfied");
    json_t *body = json_pack("{s:i}", "rating", r ? atoi(r) : 0);
    if (sat)
        json_object_set_new(body, "satisfied", json_boolean(strcmp(sat, "yes") == 0));
    if (web_field(pg, "comment"))
        json_object_set_new(body, "comment", json_string(web_field(pg, "comment")));
    web_api(pg, RB_HTTP_POST, uri, pg->citizen, body, my_case_changed);
}

int web_citizen_routes(struct rb_plugin_ctx *ctx)
{
    static const struct web_route routes[] = {
        {RB_HTTP_GET, "/", on_home, NULL},
        {RB_HTTP_GET, "/kiosk", on_home, (void *)"kiosk"},
        {RB_HTTP_GET, "/submit", on_submit_form, NULL},
        {RB_HTTP_POST, "/submit", on_submit, NULL},
        {RB_HTTP_GET, "/track", on_track, NULL},
        {RB_HTTP_GET, "/signin", on_signin_form, NULL},
        {RB_HTTP_POST, "/signin", on_signin, NULL},
        {RB_HTTP_POST, "/signin/code", on_signin_code, NULL},
        {RB_HTTP_POST, "/signout", on_signout, NULL},
        {RB_HTTP_GET, "/my", on_my, NULL},
        {RB_HTTP_GET, "/my/:tracking", on_my_case, NULL},
        {RB_HTTP_POST, "/my/:tracking/comment", on_my_comment, NULL},
        {RB_HTTP_POST, "/my/:tracking/rate", on_my_rate, NULL},
    };
    return web_routes(ctx, routes, sizeof(routes) / sizeof(routes[0]));
}
