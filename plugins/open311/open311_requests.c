/* open311 requests: GET requests (search), GET requests/ID, GET tokens/TOKEN, and POST
 * requests, a new complaint through intake (docs/open311.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "open311.h"

#define MAX_DESCRIPTION 4000  /* characters of a description (the spec's limit) */
#define MAX_ADDRESS 500       /* bytes of address_string */
/* Bytes of service_request_id in one search: past it, 414 in the format asked for. Below the
 * server's default limit on a request's head (server.max_header_size, 16 KiB), so that the
 * Open311 answer is the one a client sees; a longer URL meets the server's 431. */
#define MAX_IDS_QUERY 12288
#define SEARCH_LIMIT "1000"   /* requests a search without ids answers (the spec's page) */

static const struct rb_host_api *api;

void o311_requests_init(const struct rb_host_api *host)
{
    api = host;
}

json_t *o311_services_load(struct o311 *o)
{
    if (!o->services) { /* read once per configuration: every request needs it */
        const char *text = api->services_json(o->ctx);
        o->services = text ? json_loads(text, 0, NULL) : NULL;
        if (o->services && !json_is_array(o->services)) {
            json_decref(o->services);
            o->services = NULL;
        }
    }
    return o->services ? json_incref(o->services) : NULL;
}

json_t *o311_service_find(json_t *svcs, const char *code)
{
    size_t i;
    json_t *s;
    json_array_foreach(svcs, i, s) {
        const char *id = json_string_value(json_object_get(s, "id"));
        if (id && code && strcmp(id, code) == 0)
            return s;
    }
    return NULL;
}

const char *o311_str_of(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

/* A department's English name as the service list knows it, else its id. */
static const char *department_name(json_t *svcs, const char *dept)
{
    size_t i;
    json_t *s;
    if (!dept)
        return "";
    json_array_foreach(svcs, i, s) {
        if (strcmp(o311_str_of(s, "department"), dept) == 0 && *o311_str_of(s, "department_name_en"))
            return o311_str_of(s, "department_name_en");
    }
    return dept;
}

/* ---- reading requests --------------------------------------------------------------------- */

/* Everything public about a request (the contract view rabta_case_public, migration 0063):
 * never phone, email, name or the official named. $6: the most to answer, NULL for all (a
 * list of ids is answered in full). */
static const char requests_sql[] =
    "SELECT c.tracking_no, c.status, c.service_id, c.department_id, c.text, c.lat, c.long, "
    "  " O311_TS("c.created_at") ", " O311_TS("c.updated_at") ", "
    "  " O311_TS("c.resolve_due_at") ", c.media_url, c.status_notes "
    "FROM rabta_case_public c "
    "WHERE c.channel = 'open311' AND c.kind = 'complaint' "
    "  AND ($1::text[] IS NULL OR c.tracking_no = ANY ($1::text[])) "
    "  AND ($1::text[] IS NOT NULL OR ("
    "       ($2::text[] IS NULL OR c.service_id = ANY ($2::text[])) "
    "   AND c.created_at >= to_timestamp($3::float8) "
    "   AND c.created_at <= to_timestamp($4::float8) "
    "   AND ($5::text[] IS NULL OR c.status = ANY ($5::text[])))) "
    "ORDER BY c.created_at DESC, c.id DESC LIMIT $6::int";

/* Our case states as Open311's two (the search's status filter). */
static const char *const open_states = "{submitted,routed,acknowledged,in_progress,"
                                       "awaiting_citizen,transferred,reopened}";
static const char *const closed_states = "{resolved,closed,rejected,answered}";

enum read_mode { READ_LIST, READ_ONE, READ_TOKEN };

struct read {
    struct o311 *o;
    struct rb_http_req *req;
    enum o311_fmt fmt;
    enum read_mode mode;
};

static json_t *number_or_null(const char *v)
{
    if (!v)
        return json_null();
    double d = strtod(v, NULL);
    return isfinite(d) ? json_real(d) : json_null();
}

static json_t *string_or_null(const char *v)
{
    return v ? json_string(v) : json_null();
}

/* POST puts address_string at the end of the text, after ADDRESS_MARK: split it off again. */
#define ADDRESS_MARK "\n\nAddress: "

static json_t *request_entry(const struct rb_db_result *res, int r, json_t *svcs)
{
    const char *service = api->db_value(res, r, 2);
    json_t *s = service ? o311_service_find(svcs, service) : NULL;
    const char *text = api->db_value(res, r, 4), *mark = NULL;
    for (const char *m = text; m && (m = strstr(m, ADDRESS_MARK)) != NULL; m++)
        mark = m;
    json_t *desc = mark ? json_stringn(text, (size_t)(mark - text)) : string_or_null(text);
    json_t *addr = mark ? json_string(mark + strlen(ADDRESS_MARK)) : json_null();
    const struct o311_status *st = o311_status_of(api->db_value(res, r, 1));
    return json_pack("{s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:s, s:s, s:s, s:s, s:o, s:o, s:o, "
                     "s:o, s:o}",
                     "service_request_id", api->db_value(res, r, 0), "status", st->open311,
                     "extended_status", st->extended, "status_notes",
                     string_or_null(api->db_value(res, r, 11)), "service_name",
                     s ? o311_str_of(s, "name_en") : "", "service_code",
                     string_or_null(service), "description", desc, "agency_responsible",
                     department_name(svcs, api->db_value(res, r, 3)), "service_notice", "",
                     "requested_datetime", api->db_value(res, r, 7), "updated_datetime",
                     api->db_value(res, r, 8), "expected_datetime",
                     string_or_null(api->db_value(res, r, 9)), "address", addr, "lat",
                     number_or_null(api->db_value(res, r, 5)), "long",
                     number_or_null(api->db_value(res, r, 6)), "media_url",
                     string_or_null(api->db_value(res, r, 10)));
}

static void requests_found(const struct rb_db_result *res, const char *err, void *arg)
{
    struct read *rd = arg;
    struct rb_http_req *req = rd->req;
    if (err) {
        api->log(rd->o->ctx, RB_LOG_WARN, "reading requests failed: %s", err);
        o311_error(req, 503, rd->fmt, "requests cannot be read right now; try again");
        free(rd);
        return;
    }
    int n = api->db_ntuples(res);
    if (rd->mode != READ_LIST && n == 0) {
        o311_error(req, 404, rd->fmt, "no service request with this id");
        free(rd);
        return;
    }
    json_t *out = json_array();
    if (rd->mode == READ_TOKEN) {
        json_array_append_new(out, json_pack("{s:s, s:s}", "service_request_id",
                                             api->db_value(res, 0, 0), "token",
                                             api->db_value(res, 0, 0)));
    } else {
        json_t *svcs = o311_services_load(rd->o);
        if (!svcs)
            svcs = json_array();
        for (int r = 0; r < n; r++)
            json_array_append_new(out, request_entry(res, r, svcs));
        json_decref(svcs);
    }
    o311_send(req, 200, rd->fmt, "service_requests", out);
    free(rd);
}

static void read_requests(struct o311 *o, struct rb_http_req *req, enum o311_fmt fmt,
                          enum read_mode mode, const char *const params[6])
{
    struct read *rd = calloc(1, sizeof(*rd));
    if (!rd) {
        o311_error(req, 503, fmt, "out of memory");
        return;
    }
    *rd = (struct read){o, req, fmt, mode};
    if (api->db_query(o->ctx, requests_sql, 6, params, requests_found, rd) != RB_OK) {
        o311_error(req, 503, fmt, "the server is overloaded; try again");
        free(rd);
    }
}

/* GET requests/ID and tokens/TOKEN (a token is the tracking number). */
static void read_one(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt,
                     const char *base, enum read_mode mode)
{
    char tracking[32], ids[48];
    const char *why;
    if (o311_wrong_jurisdiction(o, req, api->req_query(req, "jurisdiction_id"), fmt))
        return;
    /* A malformed id names no request either: 404, as for an unknown one. */
    if (api->tracking_parse(base, tracking, sizeof(tracking), &why) != RB_OK) {
        o311_error(req, 404, fmt, "no service request with this id (%s)", why);
        return;
    }
    snprintf(ids, sizeof(ids), "{%s}", tracking);
    const char *params[6] = {ids, NULL, "0", "0", NULL, NULL};
    read_requests(o, req, fmt, mode, params);
}

void o311_on_request_one(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt,
                         const char *base)
{
    read_one(req, o, fmt, base, READ_ONE);
}

void o311_on_token(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt,
                   const char *base)
{
    read_one(req, o, fmt, base, READ_TOKEN);
}

/* Appends v as an element of a PostgreSQL array literal being built in buf ("" at first;
 * close it with "}"). Values have been checked to be plain ([A-Za-z0-9_-]), so no quoting is
 * needed. -1 when it does not fit. */
static int array_add(char *buf, size_t cap, const char *v)
{
    size_t n = strlen(buf), l = strlen(v);
    if (n + 1 + l + 2 > cap)
        return -1;
    buf[n] = n ? ',' : '{';
    memcpy(buf + n + 1, v, l + 1);
    return 0;
}

int o311_plain_code(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 64 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

/* service_request_id: a comma-separated list of any length (up to MAX_IDS_QUERY bytes, then
 * 414); when given, the other filters are ignored (the spec) and every request is answered. */
static void list_by_ids(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt,
                        const char *ids_q)
{
    size_t qlen = strlen(ids_q), n = 1;
    if (qlen > MAX_IDS_QUERY) {
        o311_error(req, 414, fmt, "service_request_id is %zu bytes; at most %d fit in one "
                                  "request: ask for the ids in several", qlen, MAX_IDS_QUERY);
        return;
    }
    for (const char *p = ids_q; *p; p++)
        n += *p == ',';
    size_t cap = n * 33 + 3;
    char *ids = malloc(cap), item[64];
    if (!ids) {
        o311_error(req, 503, fmt, "out of memory");
        return;
    }
    ids[0] = '\0';
    for (const char *p = ids_q; *p;) {
        size_t l = strcspn(p, ",");
        char tracking[32];
        const char *why = "expected ids separated by commas";
        if (l > 0 && l < sizeof(item)) {
            memcpy(item, p, l);
            item[l] = '\0';
        }
        if (l == 0 || l >= sizeof(item) ||
            api->tracking_parse(item, tracking, sizeof(tracking), &why) != RB_OK ||
            array_add(ids, cap, tracking) != 0) {
            o311_error(req, 400, fmt, "service_request_id \"%.40s\": %s",
                       l > 0 && l < sizeof(item) ? item : "", why);
            free(ids);
            return;
        }
        p += l;
        if (*p == ',')
            p++;
    }
    strcat(ids, "}");
    const char *params[6] = {ids, NULL, "0", "0", NULL, NULL};
    read_requests(o, req, fmt, READ_LIST, params);
    free(ids);
}

/* service_code: comma-separated configured codes, as an array literal in codes. 0, or -1
 * after answering 400. */
static int search_codes(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt,
                        const char *codes_q, char *codes, size_t cap)
{
    char item[128];
    json_t *svcs = o311_services_load(o);
    if (!svcs) {
        o311_error(req, 500, fmt, "the service list is not available");
        return -1;
    }
    for (const char *p = codes_q; *p;) {
        size_t l = strcspn(p, ",");
        int bad = l == 0 || l >= sizeof(item);
        if (!bad) {
            memcpy(item, p, l);
            item[l] = '\0';
            bad = !o311_plain_code(item) || !o311_service_find(svcs, item) ||
                  array_add(codes, cap, item) != 0;
        }
        if (bad) {
            json_decref(svcs);
            o311_error(req, 400, fmt, "service_code \"%.64s\": no such service (see "
                                      "services.%s)", l < sizeof(item) ? item : p,
                       fmt == O311_XML ? "xml" : "json");
            return -1;
        }
        p += l;
        if (*p == ',')
            p++;
    }
    json_decref(svcs);
    strcat(codes, "}");
    return 0;
}

/* status: open, closed or both, as our states (*out NULL: any). 0, or -1 after a 400. */
static int search_status(struct rb_http_req *req, enum o311_fmt fmt, const char *status_q,
                         const char **out)
{
    int want_open = 0, want_closed = 0;
    for (const char *p = status_q; *p;) {
        size_t l = strcspn(p, ",");
        if (l == 4 && strncmp(p, "open", 4) == 0) {
            want_open = 1;
        } else if (l == 6 && strncmp(p, "closed", 6) == 0) {
            want_closed = 1;
        } else {
            o311_error(req, 400, fmt, "status: expected open, closed or open,closed");
            return -1;
        }
        p += l;
        if (*p == ',')
            p++;
    }
    *out = want_open == want_closed ? NULL : want_open ? open_states : closed_states;
    return 0;
}

/* GET requests.{json,xml}: the search. */
void o311_requests_list(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt,
                        const char *base)
{
    (void)base;
    const char *ids_q = api->req_query(req, "service_request_id");
    const char *codes_q = api->req_query(req, "service_code");
    const char *status_q = api->req_query(req, "status");
    char codes[4096] = "", start_s[32], end_s[32];
    const char *statuses = NULL;
    double start = 0, end = 0;

    if (o311_wrong_jurisdiction(o, req, api->req_query(req, "jurisdiction_id"), fmt))
        return;
    if (ids_q && *ids_q) {
        list_by_ids(req, o, fmt, ids_q);
        return;
    }
    if (codes_q && *codes_q && search_codes(req, o, fmt, codes_q, codes, sizeof(codes)) != 0)
        return;
    if (status_q && *status_q && search_status(req, fmt, status_q, &statuses) != 0)
        return;
    if (o311_window(req, fmt, &start, &end) != 0)
        return;
    snprintf(start_s, sizeof(start_s), "%.6f", start);
    snprintf(end_s, sizeof(end_s), "%.6f", end);
    const char *params[6] = {NULL, codes[0] ? codes : NULL, start_s, end_s, statuses,
                             SEARCH_LIMIT};
    read_requests(o, req, fmt, READ_LIST, params);
}

/* Intake's reasons name its own fields; say them as the client sent them. */
static void client_words(const char *why, char *out, size_t cap)
{
    static const char *const pairs[][2] = {
        {"field \"text\"", "description"},
        {"fields \"lat\" and \"long\"", "lat and long"},
        {"field \"service\"", "service_code"},
        {"field \"phone\"", "phone"},
        {"field \"email\"", "email"},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        size_t l = strlen(pairs[i][0]);
        if (strncmp(why, pairs[i][0], l) == 0) {
            snprintf(out, cap, "%s%s", pairs[i][1], why + l);
            return;
        }
    }
    snprintf(out, cap, "%s", why);
}

static void case_stored(const struct rb_case_result *r, int status, const char *err, void *arg)
{
    struct o311_post *s = arg;
    if (!r) {
        if (status == 422 || status == 400) {
            char msg[400];
            client_words(err ? err : "not valid", msg, sizeof(msg));
            o311_error(s->req, 400, s->fmt, "%s", msg);
        } else if (status == RB_CASE_OUTCOME_UNKNOWN) {
            o311_error(s->req, 503, s->fmt, "the database stopped answering after the request "
                                            "reached it, so it may or may not have been "
                                            "stored; look for it (GET requests.json) before "
                                            "sending it again");
        } else {
            o311_error(s->req, 503, s->fmt, "the request could not be stored right now; "
                                            "nothing was saved, please try again");
        }
        o311_post_free(s);
        return;
    }
    api->log(s->o->ctx, RB_LOG_INFO, "service request %s stored (API key \"%s\", case %lld)",
             r->tracking_no, s->key_name, r->id);
    json_t *out = json_pack("[{s:s, s:s, s:n}]", "service_request_id", r->tracking_no,
                            "service_notice", "", "account_id");
    o311_send(s->req, 201, s->fmt, "service_requests", out);
    o311_post_free(s);
}

/* lat or long: a finite decimal number. */
static int parse_coord(const char *v, double *out)
{
    char *end;
    if (!v || !*v || strlen(v) > 32 || strspn(v, "+-0123456789.eE") != strlen(v))
        return -1;
    *out = strtod(v, &end);
    return *end || !isfinite(*out) ? -1 : 0;
}

/* Markup in what should be plain text: "<" followed by a letter, "/", "!" or "?" and closed
 * by a ">" later on ("a < b" and "<3" are words, "<b>" and "<!--" are not). */
static int looks_like_markup(const char *s)
{
    for (const char *p = strchr(s, '<'); p; p = strchr(p + 1, '<')) {
        char c = p[1];
        if (((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '/' || c == '!' || c == '?')
            if (strchr(p + 2, '>'))
                return 1;
    }
    return 0;
}

/* description: optional in the spec (then the service's name is the case's text, as Rabta
 * routes words); at most 4000 characters, line breaks allowed, no HTML. 0, or -1 after 400. */
static int check_description(struct o311_post *s, const char *desc)
{
    if (!desc || !*desc)
        return 0;
    if (o311_text_ok(desc, MAX_DESCRIPTION, 0) != 0) {
        o311_error(s->req, 400, s->fmt, "description: at most %d characters of text (line "
                                        "breaks allowed, no other control characters)",
                   MAX_DESCRIPTION);
        return -1;
    }
    if (looks_like_markup(desc)) {
        o311_error(s->req, 400, s->fmt, "description: plain text only; the specification "
                                        "allows no HTML or code");
        return -1;
    }
    return 0;
}

/* service_code, description and the location: 0 (sub's lat and lon filled), or -1 after
 * answering 400 (404 for an unknown service_code or jurisdiction_id, as the spec says). */
static int check_request(struct o311_post *s, struct rb_case_submission *sub)
{
    struct rb_http_req *req = s->req;
    const struct o311_form *f = &s->form;
    const char *code = o311_form_get(f, "service_code");
    const char *lat = o311_form_get(f, "lat"), *lon = o311_form_get(f, "long");
    const char *addr = o311_form_get(f, "address_string");
    const char *addr_id = o311_form_get(f, "address_id");
    if (o311_wrong_jurisdiction(s->o, req, o311_form_get(f, "jurisdiction_id"), s->fmt))
        return -1;
    if (!code || !*code) {
        o311_error(req, 400, s->fmt, "service_code was not provided (see services.%s)",
                   s->fmt == O311_XML ? "xml" : "json");
        return -1;
    }
    json_t *svcs = o311_services_load(s->o);
    int known = svcs && o311_plain_code(code) && o311_service_find(svcs, code);
    json_decref(svcs);
    if (!known) {
        o311_error(req, 404, s->fmt, "service_code \"%.64s\" was not found (see services.%s)",
                   code, s->fmt == O311_XML ? "xml" : "json");
        return -1;
    }
    if (check_description(s, o311_form_get(f, "description")) != 0)
        return -1;
    if ((lat && *lat) || (lon && *lon)) {
        if (parse_coord(lat, &sub->lat) || parse_coord(lon, &sub->lon)) {
            o311_error(req, 400, s->fmt, "lat and long: give both, as decimal degrees");
            return -1;
        }
        if (sub->lat < -90 || sub->lat > 90 || sub->lon < -180 || sub->lon > 180) {
            o311_error(req, 400, s->fmt, "lat and long: out of range (-90..90, -180..180)");
            return -1;
        }
    }
    if (addr && (strlen(addr) > MAX_ADDRESS || o311_text_ok(addr, MAX_ADDRESS, 1) != 0)) {
        o311_error(req, 400, s->fmt, "address_string: at most %d bytes of text on one line",
                   MAX_ADDRESS);
        return -1;
    }
    if (isnan(sub->lat) && !(addr && *addr) && !(addr_id && *addr_id)) {
        o311_error(req, 400, s->fmt, "a location is required: lat and long, address_string "
                                     "or address_id");
        return -1;
    }
    return 0;
}

/* What the case keeps besides its text, in s->origin (the "submitted" event's data.origin,
 * which staff see): the client, the reporter's names, media_url, account_id, device_id,
 * address_id and the attributes. 0, or -1 after answering 400. */
static int request_origin(struct o311_post *s, const char *code)
{
    char why[200];
    json_t *extras = o311_extras(s);
    if (!extras)
        return -1;
    json_t *attrs = o311_attributes_read(json_object_get(s->o->questions, code), &s->form,
                                         why, sizeof(why));
    if (!attrs) {
        json_decref(extras);
        o311_error(s->req, 400, s->fmt, "%s", why);
        return -1;
    }
    json_object_set_new(extras, "client", json_string(s->key_name));
    /* The reporter's contact as the client sent it, unverified: kept on the case, shown to
     * the department under the same rule as a citizen's (RB_SQL_CONTACT_VISIBLE). */
    static const char *const contact[] = {"phone", "email"};
    for (size_t i = 0; i < sizeof(contact) / sizeof(contact[0]); i++) {
        const char *v = o311_form_get(&s->form, contact[i]);
        if (v && *v)
            json_object_set_new(extras, contact[i], json_string(v));
    }
    if (json_object_size(attrs) > 0)
        json_object_set(extras, "attributes", attrs);
    json_decref(attrs);
    s->origin = json_dumps(extras, JSON_COMPACT);
    json_decref(extras);
    if (!s->origin) {
        o311_error(s->req, 503, s->fmt, "out of memory");
        return -1;
    }
    if (strlen(s->origin) > RB_CASE_ORIGIN_MAX) {
        o311_error(s->req, 400, s->fmt, "names, media_url and attributes take %zu bytes "
                                        "together; at most %d", strlen(s->origin),
                   RB_CASE_ORIGIN_MAX);
        return -1;
    }
    return 0;
}

/* The key is good: validate the rest and hand the case to intake, which stores it with its
 * origin in one statement (nothing is stored when any of it is refused). */
void o311_request_submit(struct o311_post *s)
{
    struct rb_http_req *req = s->req;
    const struct o311_form *f = &s->form;
    struct rb_case_submission sub = {.size = sizeof(sub), .kind = "complaint",
                                     .channel = "open311", .language = "en", .lat = NAN,
                                     .lon = NAN};
    const char *code = o311_form_get(f, "service_code");
    const char *desc = o311_form_get(f, "description");
    const char *addr = o311_form_get(f, "address_string");
    const char *email = o311_form_get(f, "email"), *phone = o311_form_get(f, "phone");
    if (check_request(s, &sub) != 0 || request_origin(s, code) != 0)
        goto fail;
    json_t *svcs = NULL;
    if (!desc || !*desc) { /* the words Rabta routes: the service's name */
        svcs = o311_services_load(s->o);
        desc = o311_str_of(o311_service_find(svcs, code), "name_en");
    }
    /* The address travels in the text: the department reads it with the description. */
    size_t dl = strlen(desc), al = addr && *addr ? strlen(addr) : 0;
    s->text = malloc(dl + al + 16);
    if (!s->text) {
        json_decref(svcs);
        o311_error(req, 503, s->fmt, "out of memory");
        goto fail;
    }
    if (al)
        snprintf(s->text, dl + al + 16, "%s" ADDRESS_MARK "%s", desc, addr);
    else
        memcpy(s->text, desc, dl + 1);
    json_decref(svcs);
    sub.service = code;
    sub.text = s->text;
    sub.text_len = strlen(s->text);
    sub.phone = phone && *phone ? phone : NULL;
    sub.email = email && *email ? email : NULL;
    sub.anonymous = !sub.phone && !sub.email;
    sub.contact_unverified = 1;
    sub.origin = s->origin;

    char why[256], msg[300];
    int rc = api->case_submit(s->o->ctx, &sub, case_stored, s, why, sizeof(why));
    if (rc == RB_OK)
        return;
    if (rc == RB_EINVAL) {
        client_words(why, msg, sizeof(msg));
        o311_error(req, 400, s->fmt, "%s", msg);
    } else {
        o311_error(req, 503, s->fmt, "%s", rc == RB_EAGAIN ? why
                                                           : "requests cannot be taken now");
    }
fail:
    o311_post_free(s);
}

