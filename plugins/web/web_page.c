/* One request answered with a page: language, session cookie and CSRF token, the signed-in
 * tokens, the form of a POST, calls into the server's own API, and the answer with its
 * security headers (docs/web.md "Security").
 *
 * Session: every visitor gets a random id in the cookie rb_sid (HttpOnly, SameSite=Lax,
 * Secure when configured). Each form carries _csrf = HMAC-SHA256(secret, sid) in base64url;
 * a POST whose _csrf is not the one for its cookie is refused (403) before anything else.
 * A signed-in citizen's bearer token is kept in rb_cit, a staff member's in rb_staff (Path
 * /staff); both HttpOnly, so no script can read them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web.h"

#define CSP                                                                                  \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "         \
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

/* The value of cookie name in the request into out (at most cap-1 bytes of
 * [A-Za-z0-9_-]), or "" when absent or not of that form. */
static void cookie(struct rb_http_req *req, const char *name, char *out, size_t cap)
{
    const struct rb_host_api *api = web_g.api;
    const char *h = api->req_header(req, "Cookie");
    size_t nl = strlen(name);
    out[0] = '\0';
    while (h && *h) {
        while (*h == ' ' || *h == ';')
            h++;
        if (strncmp(h, name, nl) == 0 && h[nl] == '=') {
            const char *v = h + nl + 1;
            size_t n = strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");
            if (n < cap && (v[n] == '\0' || v[n] == ';' || v[n] == ' ')) {
                memcpy(out, v, n);
                out[n] = '\0';
            }
            return;
        }
        h = strchr(h, ';');
    }
}

static void csrf_for(const char *sid, char out[WEB_SID_LEN + 1])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256(mac, (const unsigned char *)sid, strlen(sid), web_g.key);
    sodium_bin2base64(out, WEB_SID_LEN + 1, mac, sizeof(mac),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

void web_page_set(struct page *pg, const char *key, json_t *value)
{
    json_object_set_new(pg->data, key, value ? value : json_null());
}

void web_page_set_str(struct page *pg, const char *key, const char *value)
{
    web_page_set(pg, key, value ? json_string(value) : json_null());
}

void web_page_cookie(struct page *pg, const char *name, const char *value, const char *path,
                     long max_age)
{
    if (pg->n_cookies >= (int)(sizeof(pg->cookies) / sizeof(pg->cookies[0])))
        return;
    char age[40] = "";
    if (max_age >= 0)
        snprintf(age, sizeof(age), "; Max-Age=%ld", max_age);
    snprintf(pg->cookies[pg->n_cookies++], sizeof(pg->cookies[0]),
             "%s=%s; Path=%s; HttpOnly; SameSite=Lax%s%s", name, value, path, age,
             web_g.conf.secure_cookies ? "; Secure" : "");
}

struct page *web_page_new(struct rb_http_req *req)
{
    const struct rb_host_api *api = web_g.api;
    struct page *pg = calloc(1, sizeof(*pg));
    if (!pg)
        abort();
    pg->req = req;
    char lang[4];
    const char *q = api->req_query(req, "lang");
    cookie(req, "rb_lang", lang, sizeof(lang));
    if (q && (strcmp(q, "en") == 0 || strcmp(q, "ur") == 0)) {
        pg->lang = q[0] == 'e' ? "en" : "ur";
        web_page_cookie(pg, "rb_lang", pg->lang, "/", 365L * 86400);
    } else {
        pg->lang = strcmp(lang, "en") == 0 ? "en" : "ur";
    }
    cookie(req, "rb_sid", pg->sid, sizeof(pg->sid));
    if (strlen(pg->sid) != WEB_SID_LEN) {
        unsigned char rnd[32];
        randombytes_buf(rnd, sizeof(rnd));
        sodium_bin2base64(pg->sid, sizeof(pg->sid), rnd, sizeof(rnd),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        pg->new_sid = 1;
        web_page_cookie(pg, "rb_sid", pg->sid, "/", -1);
    }
    csrf_for(pg->sid, pg->csrf);
    cookie(req, "rb_cit", pg->citizen, sizeof(pg->citizen));
    cookie(req, "rb_staff", pg->staff, sizeof(pg->staff));
    int ur = pg->lang[0] == 'u';
    pg->data = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:i}", "lang", pg->lang, "dir",
                         ur ? "rtl" : "ltr", "other_lang", ur ? "en" : "ur", "csrf", pg->csrf,
                         "signed_in", pg->citizen[0] != '\0', "staff_signed_in",
                         pg->staff[0] != '\0', "kiosk_reset", (int)web_g.conf.kiosk_reset);
    web_page_set_str(pg, "path", api->req_path(req));
    return pg;
}

void web_page_free(struct page *pg)
{
    json_decref(pg->data);
    json_decref(pg->form);
    free(pg->photo.p);
    sodium_memzero(pg->citizen, sizeof(pg->citizen));
    sodium_memzero(pg->staff, sizeof(pg->staff));
    free(pg);
}

static void headers(struct page *pg)
{
    const struct rb_host_api *api = web_g.api;
    api->reply_header(pg->req, "Content-Security-Policy", CSP);
    api->reply_header(pg->req, "X-Content-Type-Options", "nosniff");
    api->reply_header(pg->req, "X-Frame-Options", "DENY");
    api->reply_header(pg->req, "Referrer-Policy", "same-origin");
    api->reply_header(pg->req, "Cache-Control", "no-store");
    for (int i = 0; i < pg->n_cookies; i++)
        api->reply_header(pg->req, "Set-Cookie", pg->cookies[i]);
}

void web_page_reply_html(struct page *pg, int status, const char *html, size_t len)
{
    headers(pg);
    web_g.api->reply(pg->req, status, "text/html; charset=utf-8", html, len);
    web_page_free(pg);
}

void web_page_render(struct page *pg, int status, const char *name)
{
    size_t len = 0;
    web_page_set_str(pg, "page", name);
    char *html = web_tmpl_render(web_g.tmpl, name, pg->data, pg->lang, &len);
    if (!html) {
        web_g.api->log(web_g.ctx, RB_LOG_ERROR, "no template %s.html in %s", name,
                       web_g.conf.dir);
        const char msg[] = "<!doctype html><title>500</title><p>The page's template is missing.";
        web_page_reply_html(pg, 500, msg, sizeof(msg) - 1);
    } else {
        web_page_reply_html(pg, status, html, len);
    }
    free(html);
}

void web_page_redirect(struct page *pg, const char *location)
{
    headers(pg);
    web_g.api->reply_header(pg->req, "Location", location);
    web_g.api->reply(pg->req, 303, "text/plain; charset=utf-8", "", 0);
    web_page_free(pg);
}

void web_page_error(struct page *pg, int status, const char *key, const char *detail)
{
    web_page_set_str(pg, "error_key", key);
    web_page_set_str(pg, "error_detail", detail);
    web_page_set(pg, "status", json_integer(status));
    web_page_render(pg, status, "error");
}

const char *web_field(const struct page *pg, const char *name)
{
    const char *s = json_string_value(json_object_get(pg->form, name));
    if (!s || strspn(s, " \t\r\n") == strlen(s))
        return NULL;
    return s;
}

int web_page_form(struct page *pg)
{
    const struct rb_host_api *api = web_g.api;
    size_t len = 0;
    const char *body = api->req_body(pg->req, &len);
    const char *ct = api->req_header(pg->req, "Content-Type");
    if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0)
        pg->form = web_form_multipart(ct, body, len, NULL, &pg->photo, pg->photo_type,
                                      sizeof(pg->photo_type));
    else if (ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0)
        pg->form = web_form_urlencoded(body, len);
    if (!pg->form) {
        web_page_error(pg, 400, "error.bad_form", NULL);
        return -1;
    }
    const char *token = json_string_value(json_object_get(pg->form, "_csrf"));
    if (pg->new_sid || !token || strlen(token) != WEB_SID_LEN ||
        sodium_memcmp(token, pg->csrf, WEB_SID_LEN) != 0) {
        api->log(web_g.ctx, RB_LOG_INFO, "a form to %s without its CSRF token was refused",
                 api->req_path(pg->req));
        web_page_error(pg, 403, "error.csrf", NULL);
        return -1;
    }
    return 0;
}

/* ---- the server's own API ------------------------------------------------------------------ */

struct api_call {
    struct page *pg;
    web_api_fn fn;
};

static void api_done(int status, const char *content_type, const char *body, size_t len,
                     void *arg)
{
    struct api_call *c = arg;
    json_t *j = NULL;
    if (content_type && strncmp(content_type, "application/json", 16) == 0 && len)
        j = json_loadb(body, len, 0, NULL);
    c->fn(c->pg, status, j);
    json_decref(j);
    free(c);
}

void web_api(struct page *pg, enum rb_http_method method, const char *uri, const char *token,
             json_t *body, web_api_fn fn)
{
    char auth[WEB_TOKEN_MAX + 32];
    const char *hdrs[3] = {NULL, NULL, NULL};
    int nh = 0;
    if (token && *token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdrs[nh++] = auth;
    }
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text)
        hdrs[nh++] = "Content-Type: application/json";
    struct api_call *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->pg = pg;
    c->fn = fn;
    int rc = web_g.api->api_request(web_g.ctx, pg->req, method, uri, hdrs, text,
                                    text ? strlen(text) : 0, api_done, c);
    sodium_memzero(auth, sizeof(auth));
    free(text);
    if (rc != RB_OK) {
        free(c);
        fn(pg, 400, NULL);
    }
}

const char *web_api_message(const json_t *body, const char *fallback)
{
    const char *m = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
    return m ? m : fallback;
}

/* ---- shared by the citizens' and the staff pages ------------------------------------------ */

int web_page_tracking(struct page *pg)
{
    const char *tn = web_g.api->req_param(pg->req, "tracking");
    const char *why;
    if (!tn || web_g.api->tracking_parse(tn, pg->tracking, sizeof(pg->tracking), &why) != 0) {
        web_page_error(pg, 404, "error.not_found", NULL);
        return -1;
    }
    return 0;
}

void web_page_signed_in(struct page *pg, int status, json_t *body, const char *cookie,
                        const char *path, long max_age, const char *location,
                        const char *template, const char *keep)
{
    const char *token = json_string_value(json_object_get(body, "token"));
    if (status != 200 || !token || strlen(token) > WEB_TOKEN_MAX ||
        strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
            strlen(token)) {
        web_page_set_str(pg, keep, web_field(pg, keep));
        web_page_set_str(pg, "error", web_api_message(body, "try again"));
        web_page_render(pg, status == 200 ? 500 : status, template);
        return;
    }
    web_page_cookie(pg, cookie, token, path, max_age);
    web_page_redirect(pg, location);
}

int web_routes(struct rb_plugin_ctx *ctx, const struct web_route *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (web_g.api->http_route(ctx, r[i].method, r[i].path, r[i].fn, r[i].arg) != RB_OK)
            return RB_ERR;
    return RB_OK;
}
