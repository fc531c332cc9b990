/* Staff notifications and, for administrators, staff accounts (docs/web.md "Staff"). Both
 * are pages over the staff API (docs/api.md section 6), called in process with the bearer
 * token of the rb_staff cookie, so who may do what is the API's answer:
 *
 *   /staff/notifications                    GET /api/v1/staff/notifications (?unread, before)
 *   /staff/notifications/:id/read           POST .../notifications/:id/read
 *   /staff/accounts                         GET /api/v1/staff/accounts (admins; others 403)
 *   /staff/accounts (POST)                  POST /api/v1/staff/accounts: the page then shows
 *                                           the generated password once
 *   /staff/accounts/:username/disable       POST .../accounts/:username/disable
 *   /staff/accounts/:username/password      POST .../accounts/:username/password (new one)
 *   /staff/accounts/:username/contact       PATCH .../accounts/:username {phone, email} */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web.h"

/* A page's own answer after the API call of a form: status and body of the API on failure. */
static int api_failed(struct page *pg, int status, json_t *body)
{
    if (!web_staff_still(pg, status))
        return 1;
    if (status / 100 == 2)
        return 0;
    web_page_error(pg, status, "error.api", web_api_message(body, NULL));
    return 1;
}

/* A POST form of a signed-in staff member: the form is read and its CSRF token checked. 0, or
 * -1 after answering (pg freed). */
static int staff_form(struct page *pg)
{
    if (!pg->staff[0]) {
        web_page_redirect(pg, "/staff/login");
        return -1;
    }
    return web_page_form(pg);
}

/* ---- notifications ------------------------------------------------------------------------- */

static void notes_loaded(struct page *pg, int status, json_t *body)
{
    if (api_failed(pg, status, body))
        return;
    web_page_set(pg, "notifications", json_incref(json_object_get(body, "notifications")));
    web_page_set(pg, "next_before", json_incref(json_object_get(body, "next_before")));
    web_page_set_str(pg, "done", web_g.api->req_query(pg->req, "done"));
    web_page_render(pg, 200, "staff_notifications");
}

static void on_notes(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = web_page_new(req);
    const char *before = web_g.api->req_query(req, "before");
    const char *unread = web_g.api->req_query(req, "unread");
    char uri[128];
    int n = snprintf(uri, sizeof(uri), "/api/v1/staff/notifications?limit=50");
    if (before && *before && strlen(before) < 20 && strspn(before, "0123456789") == strlen(before))
        n += snprintf(uri + n, sizeof(uri) - (size_t)n, "&before=%s", before);
    if (unread && strcmp(unread, "true") == 0) {
        snprintf(uri + n, sizeof(uri) - (size_t)n, "&unread=true");
        web_page_set(pg, "only_unread", json_true());
    }
    web_staff_begin(pg, uri, notes_loaded);
}

static void note_read(struct page *pg, int status, json_t *body)
{
    if (!api_failed(pg, status, body))
        web_page_redirect(pg, "/staff/notifications?done=read");
}

static void on_note_read(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = web_page_new(req);
    if (staff_form(pg) != 0)
        return;
    const char *id = web_g.api->req_param(req, "id");
    if (!id || !*id || strlen(id) > 19 || strspn(id, "0123456789") != strlen(id)) {
        web_page_error(pg, 404, "error.not_found", NULL);
        return;
    }
    char uri[96];
    snprintf(uri, sizeof(uri), "/api/v1/staff/notifications/%s/read", id);
    web_api(pg, RB_HTTP_POST, uri, pg->staff, NULL, note_read);
}

/* ---- staff accounts ------------------------------------------------------------------------ */

static void accounts_loaded(struct page *pg, int status, json_t *body)
{
    if (api_failed(pg, status, body))
        return;
    web_page_set(pg, "accounts", json_incref(json_object_get(body, "accounts")));
    web_page_set(pg, "departments", json_incref(web_g.departments[WEB_LANG_IX(pg->lang)]));
    web_page_set_str(pg, "done", web_g.api->req_query(pg->req, "done"));
    web_page_render(pg, 200, "staff_accounts");
}

static void on_accounts(struct rb_http_req *req, void *arg)
{
    (void)arg;
    web_staff_begin(web_page_new(req), "/api/v1/staff/accounts", accounts_loaded);
}

/* add and password: the answer holds the password made for the account, shown once on the
 * accounts page that follows (never in a URL). */
static void account_made(struct page *pg, int status, json_t *body)
{
    if (api_failed(pg, status, body))
        return;
    web_page_set(pg, "created", json_pack("{s:O?, s:O?, s:b}", "username",
                                          json_object_get(body, "username"), "password",
                                          json_object_get(body, "password"), "added",
                                          status == 201));
    web_staff_begin(pg, "/api/v1/staff/accounts", accounts_loaded);
}

static void on_account_add(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = web_page_new(req);
    if (staff_form(pg) != 0)
        return;
    static const char *const fields[] = {"username", "display_name", "role", "department",
                                         "phone", "email"};
    json_t *b = json_object();
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *v = web_field(pg, fields[i]);
        if (v)
            json_object_set_new(b, fields[i], json_string(v));
    }
    const char *ds = web_field(pg, "districts");
    if (ds) { /* "lahore, kasur" */
        json_t *list = json_array();
        char one[80];
        for (const char *p = ds; *p;) {
            size_t n = strcspn(p, ", ");
            if (n > 0 && n < sizeof(one)) {
                memcpy(one, p, n);
                one[n] = '\0';
                json_array_append_new(list, json_string(one));
            } else if (n >= sizeof(one)) {
                json_array_append_new(list, json_integer(0)); /* the API says what is wrong */
            }
            p += n + (p[n] ? 1 : 0);
        }
        json_object_set_new(b, "districts", list);
    }
    web_api(pg, RB_HTTP_POST, "/api/v1/staff/accounts", pg->staff, b, account_made);
}

static void account_changed(struct page *pg, int status, json_t *body)
{
    if (!api_failed(pg, status, body))
        web_page_redirect(pg, "/staff/accounts?done=saved");
}

static void on_account_post(struct rb_http_req *req, void *arg)
{
    (void)arg;
    struct page *pg = web_page_new(req);
    if (staff_form(pg) != 0)
        return;
    const char *user = web_g.api->req_param(req, "username");
    const char *verb = web_g.api->req_param(req, "verb");
    struct web_buf uri = {0};
    web_buf_str(&uri, "/api/v1/staff/accounts/");
    web_buf_urlenc(&uri, user ? user : "");
    if (strcmp(verb, "disable") == 0 || strcmp(verb, "password") == 0) {
        web_buf_str(&uri, "/");
        web_buf_str(&uri, verb);
        web_api(pg, RB_HTTP_POST, uri.p, pg->staff, json_object(),
                verb[0] == 'd' ? account_changed : account_made);
    } else if (strcmp(verb, "contact") == 0) {
        const char *phone = web_field(pg, "phone"), *email = web_field(pg, "email");
        web_api(pg, RB_HTTP_PATCH, uri.p, pg->staff,
                json_pack("{s:s?, s:s?}", "phone", phone, "email", email), account_changed);
    } else {
        web_page_error(pg, 404, "error.not_found", NULL);
    }
    free(uri.p);
}

int web_admin_routes(struct rb_plugin_ctx *ctx)
{
    static const struct web_route routes[] = {
        {RB_HTTP_GET, "/staff/notifications", on_notes, NULL},
        {RB_HTTP_POST, "/staff/notifications/:id/read", on_note_read, NULL},
        {RB_HTTP_GET, "/staff/accounts", on_accounts, NULL},
        {RB_HTTP_POST, "/staff/accounts", on_account_add, NULL},
        {RB_HTTP_POST, "/staff/accounts/:username/:verb", on_account_post, NULL},
    };
    return web_routes(ctx, routes, sizeof(routes) / sizeof(routes[0]));
}
