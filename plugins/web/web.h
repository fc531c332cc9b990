/* web: the citizens' portal (/) and the staff screens (/staff), rendered on the server from
 * the templates in the configured folder (web_tmpl.h), with the rules of the JSON API: every
 * read and change goes through the host's api_request into the same routes the app and staff
 * clients use (sign-in limits, scope, the state machine), so nothing is decided twice.
 *
 * Files: web.c (start, config, assets), web_page.c (one request's page: language, session,
 * CSRF, forms, headers, render), web_citizen.c (the citizens' pages), web_staff.c (the staff
 * pages), web_form.c (form bodies), web_tmpl.c and web_buf.c. */
#ifndef RB_WEB_H
#define RB_WEB_H

#include <jansson.h>
#include <rabta/plugin.h>
#include <sodium.h>

#include "web_buf.h"
#include "web_tmpl.h"

struct web_conf {
    char *dir;          /* owned: templates, strings.json and static/ */
    char *font;         /* owned: the Nastaliq font file served as /assets/nastaliq.ttf */
    char *secret;       /* owned: key of the CSRF tokens (several processes: set the same) */
    int secure_cookies; /* behind TLS: cookies carry Secure */
    double kiosk_reset; /* seconds of inactivity before a kiosk page starts over */
};

struct web_asset {
    char *body; /* owned */
    size_t len;
    const char *type;
};

struct web {
    struct rb_plugin_ctx *ctx;
    const struct rb_host_api *api;
    struct web_conf conf;
    struct web_tmpl_set *tmpl; /* owned */
    unsigned char key[crypto_auth_hmacsha256_KEYBYTES];
    struct web_asset css, font, kiosk_js;
    json_t *departments[2]; /* owned: [0] English, [1] Urdu: {id, name, services: [{id, name}]} */
    json_t *services[2];    /* owned: [{id, name, department}] */
    json_t *districts[2];   /* owned: [{id, name}] */
    struct web_kept *kept;  /* owned: pages kept rendered (web_kept.c); NULL: none yet */
};

/* 0 for English, 1 for Urdu: the index into web_g's lists. */
#define WEB_LANG_IX(lang) ((lang)[0] == 'u')

extern struct web web_g; /* the plugin's one global */

#define WEB_SID_LEN 43   /* base64url of 32 random bytes */
#define WEB_TOKEN_MAX 64 /* bearer tokens kept in cookies */

/* One request being answered with a page. */
struct page {
    struct rb_http_req *req;
    const char *lang;  /* "ur" or "en" */
    char sid[WEB_SID_LEN + 1];
    int new_sid;       /* set the session cookie with the answer */
    char csrf[WEB_SID_LEN + 1];
    char citizen[WEB_TOKEN_MAX + 1]; /* the citizen's bearer token, or "" */
    char staff[WEB_TOKEN_MAX + 1];   /* the staff member's bearer token, or "" */
    json_t *data;      /* owned: what the template sees */
    json_t *form;      /* owned: a POST's fields (strings), or NULL */
    struct web_buf photo; /* a posted file's bytes (the photo, a notice's document) */
    char photo_type[32];
    char cookies[4][160]; /* Set-Cookie values to send */
    int n_cookies;
    char tracking[33];    /* a page about one case: its canonical tracking number */
    int kiosk;            /* a kiosk's page: large targets, starts over when left alone */
    void *extra;          /* borrowed: a handler's own state across an API call */
};

/* ---- web_page.c ---- */

/* Starts a page for req: language (?lang=, then the cookie, then Urdu), session id, CSRF
 * token, the signed-in citizen's and staff member's tokens, and the data every template uses.
 * Returns a new page; it is freed by the function that answers it. */
struct page *web_page_new(struct rb_http_req *req);
/* Renders template name into the answer with the security headers and frees pg. */
void web_page_render(struct page *pg, int status, const char *name);
/* Answers with html (len bytes, borrowed) as a page, with the security headers; frees pg. */
void web_page_reply_html(struct page *pg, int status, const char *html, size_t len);
/* As web_page_render, from a copy rendered once and kept (web_kept.c) under the template,
 * the language, the kiosk and signed-in flags, the path and variant (NULL: none), with this
 * request's CSRF token written in. Only for a page whose data holds nothing else that
 * changes from one request to the next. */
void web_page_render_kept(struct page *pg, int status, const char *name, const char *variant);
/* The kept page for name and variant, if there is one: answered (pg freed), 1; else 0 (the
 * handler builds the page's data and calls web_page_render_kept). */
int web_page_kept(struct page *pg, int status, const char *name, const char *variant);
/* Drops the kept pages (after the templates or the configuration were loaded again). */
void web_kept_free(struct web_kept *t);
/* Frees a page that was not answered with a page (the handler answered req itself). */
void web_page_free(struct page *pg);
/* 303 to location (a path on this site) and frees pg. */
void web_page_redirect(struct page *pg, const char *location);
/* A page saying what went wrong (words key, with detail if not NULL) and frees pg. */
void web_page_error(struct page *pg, int status, const char *key, const char *detail);
/* Reads a POST's form (urlencoded or multipart) into pg->form and checks its CSRF token.
 * 0; or -1 after answering 400/403 (pg freed). */
int web_page_form(struct page *pg);
/* The form's field as a string, or NULL when absent or blank. Borrowed from pg->form. */
const char *web_field(const struct page *pg, const char *name);
/* Queues a cookie for the answer: name=value with HttpOnly, SameSite=Lax, Path, Secure when
 * configured; max_age < 0: a session cookie, 0: delete it. */
void web_page_cookie(struct page *pg, const char *name, const char *value, const char *path,
                     long max_age);
void web_page_set(struct page *pg, const char *key, json_t *value /* stolen */);
void web_page_set_str(struct page *pg, const char *key, const char *value);

/* The answer of an API call: status, and the body parsed as JSON (NULL if not JSON). The
 * callback owns neither. */
typedef void (*web_api_fn)(struct page *pg, int status, json_t *body);
/* Calls the server's own API for pg: method, uri (path and query), bearer token or NULL, JSON
 * body or NULL (stolen). fn is called exactly once. */
void web_api(struct page *pg, enum rb_http_method method, const char *uri, const char *token,
             json_t *body, web_api_fn fn);
/* The message of an API error answer, or fallback. Borrowed from body. */
const char *web_api_message(const json_t *body, const char *fallback);

/* The path's :tracking in canonical form into pg->tracking: 0, or -1 after a 404 page. */
int web_page_tracking(struct page *pg);
/* The answer of a sign-in call: on 200 with a token, keeps it in cookie (Path path, max_age)
 * and redirects to location; otherwise renders template again with the API's message (and
 * the form's field keep, e.g. the phone or username). */
void web_page_signed_in(struct page *pg, int status, json_t *body, const char *cookie,
                        const char *path, long max_age, const char *location,
                        const char *template, const char *keep);

struct web_route {
    unsigned method;
    const char *path;
    rb_plugin_http_fn fn;
    void *arg;
};
/* Registers n routes. RB_OK or RB_ERR. */
int web_routes(struct rb_plugin_ctx *ctx, const struct web_route *r, size_t n);

/* ---- web_form.c ---- */

/* Parses an application/x-www-form-urlencoded body into an object of strings (a repeated name
 * keeps its last value). NULL when malformed. */
json_t *web_form_urlencoded(const char *body, size_t len);
/* Parses a multipart/form-data body (boundary from content_type): text fields into an object
 * of strings; the first non-empty file of the field named file_field (NULL: of any field) into
 * photo (bytes) and photo_type (its declared Content-Type, truncated to type_len). NULL when
 * malformed. */
json_t *web_form_multipart(const char *content_type, const char *body, size_t len,
                           const char *file_field, struct web_buf *photo, char *photo_type,
                           size_t type_len);

/* ---- pages ---- */

/* web_staff.c: starts a signed-in staff page: GET /api/v1/staff/me (the header with the
 * unread notifications, the role: me, is_admin, is_supervisor, can_write), then GET uri into
 * then. Not signed in: a redirect to the sign-in page. */
void web_staff_begin(struct page *pg, const char *uri, web_api_fn then);
/* The staff API answered 401: forgets the cookie, redirects to the sign-in page (pg freed)
 * and returns 0; 1 otherwise. */
int web_staff_still(struct page *pg, int status);

int web_citizen_routes(struct rb_plugin_ctx *ctx);
int web_admin_routes(struct rb_plugin_ctx *ctx);
int web_staff_routes(struct rb_plugin_ctx *ctx);
int web_dashboard_routes(struct rb_plugin_ctx *ctx);
int web_notices_routes(struct rb_plugin_ctx *ctx);
void web_dashboard_free(void); /* the dashboard's kept reports */

#endif
