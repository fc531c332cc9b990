/* Notices and documents on the portal (docs/web.md "Notices"): citizens read them at /notices
 * and download a notice's document; administrators publish and withdraw them at
 * /staff/notices. Stored through the functions of migration 0042 (rabta_notice_publish,
 * rabta_notice_withdraw, rabta_notice_document, view rabta_public_notices); who is an
 * administrator is the staff API's answer to /api/v1/staff/me. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web.h"

#define LIST_SQL                                                                              \
    "SELECT json_build_object('id', id, 'department', department_id,"                         \
    " 'title', CASE WHEN $1::text = 'ur' THEN title_ur ELSE title_en END,"                    \
    " 'body', CASE WHEN $1::text = 'ur' THEN body_ur ELSE body_en END,"                       \
    " 'has_document', has_document, 'document_name', document_name,"                          \
    " 'published_by', published_by,"                                                          \
    " 'published_at', to_char(published_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'))::text"  \
    " FROM rabta_public_notices ORDER BY published_at DESC LIMIT 100"

/* ---- citizens ------------------------------------------------------------------------------ */

static void listed(const struct rb_db_result *res, const char *err, void *arg)
{
    struct page *pg = arg;
    if (err) {
        web_page_error(pg, 503, "error.api", NULL);
        return;
    }
    json_t *list = json_array();
    for (int i = 0; i < web_g.api->db_ntuples(res); i++)
        json_array_append_new(list, json_loads(web_g.api->db_value(res, i, 0), 0, NULL));
    web_page_set(pg, "notices", list);
    const char *t = json_string_value(json_object_get(pg->data, "page_template"));
    web_page_render(pg, 200, t ? t : "notices");
}

static void list_into(struct page *pg)
{
    const char *p[1] = {pg->lang};
    if (web_g.api->db_query(web_g.ctx, LIST_SQL, 1, p, listed, pg) != RB_OK)
        web_page_error(pg, 503, "error.api", NULL);
}

static void on_notices(struct rb_http_req *req, void *arg)
{
    (void)arg;
    list_into(web_page_new(req));
}

struct doc {
    struct rb_http_req *req;
    char id[24];
};

static void document_loaded(const struct rb_db_result *res, const char *err, void *arg)
{
    struct doc *d = arg;
    const struct rb_host_api *api = web_g.api;
    const char *b64 = !err && api->db_ntuples(res) == 1 ? api->db_value(res, 0, 2) : NULL;
    size_t cap = b64 ? strlen(b64) : 0, len = 0;
    unsigned char *bin = cap ? malloc(cap) : NULL;
    if (!b64 || !bin ||
        sodium_base642bin(bin, cap, b64, strlen(b64), "\n", &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
        api->reply_error(d->req, err ? 503 : 404, err ? "unavailable" : "not_found",
                         "there is no such document");
    } else {
        /* The file's own name is not echoed into a header: notice-ID with its type's ending. */
        const char *type = api->db_value(res, 0, 0);
        char disp[96];
        snprintf(disp, sizeof(disp), "attachment; filename=\"notice-%s.%s\"", d->id,
                 strcmp(type, "application/pdf") == 0 ? "pdf"
                 : strcmp(type, "image/png") == 0     ? "png"
                                                      : "jpg");
        api->reply_header(d->req, "Content-Disposition", disp);
        api->reply_header(d->req, "X-Content-Type-Options", "nosniff");
        api->reply_header(d->req, "Content-Security-Policy", "default-src 'none'; sandbox");
        api->reply(d->req, 200, type, (const char *)bin, len);
    }
    free(bin);
    free(d);
}

static void on_document(struct rb_http_req *req, void *arg)
{
    (void)arg;
    const char *id = web_g.api->req_param(req, "id");
    if (!id || !*id || strlen(id) > 18 || strspn(id, "0123456789") != strlen(id)) {
        web_g.api->reply_error(req, 404, "not_found", "there is no such document");
        return;
    }
    struct doc *d = calloc(1, sizeof(*d));
    if (!d)
        abort();
    d->req = req;
    snprintf(d->id, sizeof(d->id), "%s", id);
    const char *p[1] = {d->id};
    if (web_g.api->db_query(web_g.ctx,
                            "SELECT document_type, document_name, encode(document, 'base64')"
                            " FROM rabta_notice_document($1::bigint)",
                            1, p, document_loaded, d) != RB_OK) {
        free(d);
        web_g.api->reply_error(req, 503, "unavailable", "try again");
    }
}

/* ---- administrators ------------------------------------------------------------------------ */

/* What an administrator's request goes on to do once /me says who they are. */
enum admin_op { ADMIN_LIST, ADMIN_PUBLISH, ADMIN_WITHDRAW };

static void written(const struct rb_db_result *res, const char *err, void *arg)
{
    struct page *pg = arg;
    if (err || web_g.api->db_ntuples(res) != 1) {
        web_page_error(pg, err ? 422 : 404, "error.api", err ? "the notice was not stored" : NULL);
        return;
    }
    web_page_redirect(pg, "/staff/notices?done=1");
}

static void publish(struct page *pg, const char *username)
{
    const char *te = web_field(pg, "title_en"), *tu = web_field(pg, "title_ur");
    const char *type = pg->photo.n ? pg->photo_type : NULL;
    if (!te || !tu || (type && strcmp(type, "application/pdf") != 0 &&
                       strcmp(type, "image/jpeg") != 0 && strcmp(type, "image/png") != 0)) {
        web_page_error(pg, 400, "error.bad_form",
                       "a notice needs its title in English and in Urdu; a document is a PDF, "
                       "JPEG or PNG file");
        return;
    }
    const char *dep = web_field(pg, "department");
    int known = !dep;
    size_t i;
    json_t *x;
    json_array_foreach(web_g.departments[0], i, x)
    {
        known |= dep && strcmp(json_string_value(json_object_get(x, "id")), dep) == 0;
    }
    if (!known) {
        web_page_error(pg, 400, "error.bad_form", "no such department");
        return;
    }
    char *b64 = NULL;
    if (pg->photo.n) {
        size_t cap = sodium_base64_encoded_len(pg->photo.n, sodium_base64_VARIANT_ORIGINAL);
        b64 = malloc(cap);
        if (!b64)
            abort();
        sodium_bin2base64(b64, cap, (const unsigned char *)pg->photo.p, pg->photo.n,
                          sodium_base64_VARIANT_ORIGINAL);
    }
    const char *be = web_field(pg, "body_en"), *bu = web_field(pg, "body_ur");
    const char *p[9] = {web_field(pg, "department"), te, tu, be ? be : "", bu ? bu : "", b64,
                        type, pg->photo.n ? "document" : NULL, username};
    int rc = web_g.api->db_query(
        web_g.ctx,
        "SELECT rabta_notice_publish($1, $2, $3, $4, $5, decode($6, 'base64'), $7, $8, $9)", 9,
        p, written, pg);
    free(b64);
    if (rc != RB_OK)
        web_page_error(pg, 503, "error.api", NULL);
}

static void withdraw(struct page *pg, const char *username)
{
    const char *id = web_g.api->req_param(pg->req, "id");
    if (!id || !*id || strlen(id) > 18 || strspn(id, "0123456789") != strlen(id)) {
        web_page_error(pg, 404, "error.not_found", NULL);
        return;
    }
    const char *p[2] = {id, username};
    if (web_g.api->db_query(web_g.ctx, "SELECT rabta_notice_withdraw($1::bigint, $2)", 2, p,
                            written, pg) != RB_OK)
        web_page_error(pg, 503, "error.api", NULL);
}

static void admin_known(struct page *pg, int status, json_t *me)
{
    enum admin_op op = (enum admin_op)(size_t)pg->extra;
    pg->extra = NULL;
    const char *role = json_string_value(json_object_get(me, "role"));
    if (status == 401) {
        web_page_cookie(pg, "rb_staff", "", "/staff", 0);
        web_page_redirect(pg, "/staff/login");
        return;
    }
    if (status != 200 || !role || strcmp(role, "admin") != 0) {
        web_page_error(pg, status == 200 ? 403 : status, "error.admin_only", NULL);
        return;
    }
    web_page_set(pg, "me", json_incref(me));
    const char *username = json_string_value(json_object_get(me, "username"));
    if (op == ADMIN_PUBLISH) {
        publish(pg, username);
    } else if (op == ADMIN_WITHDRAW) {
        withdraw(pg, username);
    } else {
        web_page_set_str(pg, "page_template", "staff_notices");
        web_page_set_str(pg, "done", web_g.api->req_query(pg->req, "done"));
        web_page_set(pg, "departments", json_incref(web_g.departments[WEB_LANG_IX(pg->lang)]));
        web_page_set(pg, "can_write", json_true());
        list_into(pg);
    }
}

static void admin_begin(struct rb_http_req *req, enum admin_op op)
{
    struct page *pg = web_page_new(req);
    if (!pg->staff[0]) {
        web_page_redirect(pg, "/staff/login");
        return;
    }
    if (op != ADMIN_LIST && web_page_form(pg) != 0)
        return;
    pg->extra = (void *)(size_t)op;
    web_api(pg, RB_HTTP_GET, "/api/v1/staff/me", pg->staff, NULL, admin_known);
}

static void on_admin_list(struct rb_http_req *req, void *arg)
{
    (void)arg;
    admin_begin(req, ADMIN_LIST);
}

static void on_admin_publish(struct rb_http_req *req, void *arg)
{
    (void)arg;
    admin_begin(req, ADMIN_PUBLISH);
}

static void on_admin_withdraw(struct rb_http_req *req, void *arg)
{
    (void)arg;
    admin_begin(req, ADMIN_WITHDRAW);
}

int web_notices_routes(struct rb_plugin_ctx *ctx)
{
    static const struct web_route routes[] = {
        {RB_HTTP_GET, "/notices", on_notices, NULL},
        {RB_HTTP_GET, "/notices/:id/document", on_document, NULL},
        {RB_HTTP_GET, "/staff/notices", on_admin_list, NULL},
        {RB_HTTP_POST, "/staff/notices", on_admin_publish, NULL},
        {RB_HTTP_POST, "/staff/notices/:id/withdraw", on_admin_withdraw, NULL},
    };
    return web_routes(ctx, routes, sizeof(routes) / sizeof(routes[0]));
}
