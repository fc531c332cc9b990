/* open311: Open311 GeoReport v2 as a channel over Rabta's cases (docs/open311.md).
 *
 *   GET  /open311/discovery.{json,xml}        (also under /open311/v2/)
 *   GET  /open311/v2/services.{json,xml}       the configured services
 *   GET  /open311/v2/services/CODE.{json,xml}  a service definition (no attributes)
 *   POST /open311/v2/requests.{json,xml}       a new complaint (form-encoded, api_key)
 *   GET  /open311/v2/requests.{json,xml}       search: service_request_id, service_code,
 *                                              start_date, end_date, status
 *   GET  /open311/v2/requests/ID.{json,xml}    one request
 *   GET  /open311/v2/tokens/TOKEN.{json,xml}   a token is the tracking number itself
 *
 * Privacy: only cases that came in through this channel are visible here (tracking numbers
 * of other channels are shown only with the citizen's phone digits, plugins/app). The
 * reporter's phone, email and name never leave the database through this plugin: the SQL
 * below does not even select them. Errors use Open311's shape, an array of {code,
 * description}, in the format the path asked for. API keys: only their SHA-256 is stored
 * (migrations/0005_open311.sql, `rabtad apikey`). */
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>
#include <rabta/plugin.h>

#define SPEC_URL "http://wiki.open311.org/GeoReport_v2"
#define MAX_IDS 100             /* service_request_id values in one search */
#define WINDOW (90.0 * 86400.0) /* a search spans at most 90 days (the spec) */
#define MAX_DESCRIPTION 20000   /* bytes; intake then allows 5000 characters */
#define MAX_ADDRESS 500         /* bytes of address_string */
#define MAX_FIELDS 200          /* form fields in one POST */

static const struct rb_host_api *api;

enum fmt { FMT_JSON, FMT_XML };

/* The plugin's block of rabta.yaml; every key is optional. */
struct o311_conf {
    char *base_url;        /* owned; discovery's endpoint url; default from the Host header */
    char *contact;         /* owned; discovery's contact */
    char *key_service;     /* owned; discovery's key_service (how to get an API key) */
    char *jurisdiction_id; /* owned; when set, a different jurisdiction_id is 404 */
};

static const struct rb_conf_field conf_fields[] = {
    {"base_url", RB_CONF_STRING, offsetof(struct o311_conf, base_url), 0, 0, 0},
    {"contact", RB_CONF_STRING, offsetof(struct o311_conf, contact), 0, 0, 0},
    {"key_service", RB_CONF_STRING, offsetof(struct o311_conf, key_service), 0, 0, 0},
    {"jurisdiction_id", RB_CONF_STRING, offsetof(struct o311_conf, jurisdiction_id), 0, 0, 0},
};
#define NCONF (sizeof(conf_fields) / sizeof(conf_fields[0]))

struct o311 {
    struct rb_plugin_ctx *ctx; /* borrowed */
    struct o311_conf conf;
    char changeset[32]; /* when the configuration (so the service list) was last loaded */
};

/* Our case states as Open311's two. */
static const char *const open_states = "{submitted,routed,acknowledged,in_progress,"
                                       "awaiting_citizen,transferred,reopened}";
static const char *const closed_states = "{resolved,closed,rejected,answered}";

static const char *public_status(const char *status)
{
    static const char *const closed[] = {"resolved", "closed", "rejected", "answered", NULL};
    for (const char *const *c = closed; *c; c++)
        if (strcmp(*c, status) == 0)
            return "closed";
    return "open";
}

/* ---- answers: one JSON tree, written as JSON or XML --------------------------------------- */

/* The element name of an item of the array called name. */
static const char *item_name(const char *name)
{
    static const char *const pairs[][2] = {
        {"services", "service"},   {"service_requests", "request"}, {"errors", "error"},
        {"attributes", "attribute"}, {"endpoints", "endpoint"},     {"formats", "format"},
        {"values", "value"},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        if (strcmp(pairs[i][0], name) == 0)
            return pairs[i][1];
    return "item";
}

/* XML 1.0 text: the five specials escaped, and code points XML cannot carry (controls other
 * than tab, CR, LF) replaced by U+FFFD. Input is UTF-8 (PostgreSQL's, or our own). */
static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                fputs("\xEF\xBF\xBD", f);
            else
                fputc(c, f);
        }
    }
}

static void xml_value(FILE *f, const char *name, json_t *v)
{
    if (json_is_null(v)) {
        fprintf(f, "<%s/>", name);
        return;
    }
    fprintf(f, "<%s>", name);
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c) xml_value(f, k, c);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) xml_value(f, item_name(name), c);
    } else if (json_is_string(v)) {
        xml_text(f, json_string_value(v));
    } else if (json_is_integer(v)) {
        fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        fprintf(f, "%.15g", json_real_value(v));
    } else {
        fputs(json_is_true(v) ? "true" : "false", f);
    }
    fprintf(f, "</%s>", name);
}

/* Answers with doc (stolen), rooted at root in XML. */
static void send_doc(struct rb_http_req *req, int status, enum fmt fmt, const char *root,
                     json_t *doc)
{
    char *text = NULL;
    size_t len = 0;
    if (!doc) {
        text = NULL;
    } else if (fmt == FMT_JSON) {
        text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15));
        len = text ? strlen(text) : 0;
    } else {
        FILE *f = open_memstream(&text, &len);
        if (f) {
            fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?>", f);
            xml_value(f, root, doc);
            if (fclose(f) != 0) {
                free(text);
                text = NULL;
            }
        }
    }
    json_decref(doc);
    if (!text) {
        static const char oom[] = "[{\"code\":500,\"description\":\"out of memory\"}]";
        api->reply(req, 500, NULL, oom, sizeof(oom) - 1);
        return;
    }
    api->reply(req, status, fmt == FMT_XML ? "text/xml; charset=utf-8" : NULL, text, len);
    free(text);
}

/* Open311's error shape: [{"code": status, "description": "..."}]. */
static void send_error(struct rb_http_req *req, int status, enum fmt fmt, const char *msgfmt,
                       ...) RB_PRINTF(4, 5);
static void send_error(struct rb_http_req *req, int status, enum fmt fmt, const char *msgfmt,
                       ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, msgfmt);
    vsnprintf(msg, sizeof(msg), msgfmt, ap);
    va_end(ap);
    send_doc(req, status, fmt, "errors",
             json_pack("[{s:i, s:s}]", "code", status, "description", msg));
}

/* "abc.json" -> "abc" in base, FMT_JSON. -1 for another or no suffix, or an empty name. */
static int split_format(const char *file, char *base, size_t cap, enum fmt *fmt)
{
    const char *dot = file ? strrchr(file, '.') : NULL;
    if (!dot || dot == file || (size_t)(dot - file) >= cap)
        return -1;
    if (strcmp(dot, ".json") == 0)
        *fmt = FMT_JSON;
    else if (strcmp(dot, ".xml") == 0)
        *fmt = FMT_XML;
    else
        return -1;
    memcpy(base, file, (size_t)(dot - file));
    base[dot - file] = '\0';
    return 0;
}

/* The format of a literal route: its path ends in .json or .xml. */
static enum fmt path_format(struct rb_http_req *req)
{
    const char *p = api->req_path(req);
    size_t n = p ? strlen(p) : 0;
    return n >= 4 && strcmp(p + n - 4, ".xml") == 0 ? FMT_XML : FMT_JSON;
}

/* A jurisdiction_id other than the configured one names a jurisdiction we do not serve. */
static int wrong_jurisdiction(struct o311 *o, struct rb_http_req *req, const char *given,
                              enum fmt fmt)
{
    if (!o->conf.jurisdiction_id || !given || !*given ||
        strcmp(given, o->conf.jurisdiction_id) == 0)
        return 0;
    send_error(req, 404, fmt, "jurisdiction_id \"%.64s\" is not served here (this endpoint "
                              "serves \"%.64s\")", given, o->conf.jurisdiction_id);
    return 1;
}

/* ---- the service list (from the core's configuration) ------------------------------------ */

/* The configured services as a new JSON array, or NULL. */
static json_t *services_load(struct o311 *o)
{
    const char *text = api->services_json(o->ctx);
    json_t *a = text ? json_loads(text, 0, NULL) : NULL;
    if (a && !json_is_array(a)) {
        json_decref(a);
        a = NULL;
    }
    return a;
}

static json_t *service_find(json_t *svcs, const char *code)
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

static const char *str_of(json_t *o, const char *key)
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
        if (strcmp(str_of(s, "department"), dept) == 0 && *str_of(s, "department_name_en"))
            return str_of(s, "department_name_en");
    }
    return dept;
}

static json_t *service_entry(json_t *s)
{
    return json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:s}", "service_code", str_of(s, "id"),
                     "service_name", str_of(s, "name_en"), "description", str_of(s, "name_ur"),
                     "metadata", 0, "type", "realtime", "keywords", "", "group",
                     str_of(s, "department_name_en"));
}

/* ---- discovery and services --------------------------------------------------------------- */

/* Hosts we repeat back in a URL: letters, digits and . - : [ ] only. */
static int plain_host(const char *h)
{
    size_t n = h ? strlen(h) : 0;
    return n > 0 && n < 256 &&
           strspn(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-:[]") == n;
}

static void on_discovery(struct rb_http_req *req, void *arg)
{
    struct o311 *o = arg;
    enum fmt fmt = path_format(req);
    char url[512];
    const char *host = api->req_header(req, "Host");
    if (o->conf.base_url)
        snprintf(url, sizeof(url), "%s", o->conf.base_url);
    else if (plain_host(host))
        snprintf(url, sizeof(url), "http://%s/open311/v2", host);
    else
        snprintf(url, sizeof(url), "/open311/v2");
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:s, s:[s, s]}]}", "changeset", o->changeset,
        "contact", o->conf.contact ? o->conf.contact : "", "key_service",
        o->conf.key_service ? o->conf.key_service
                            : "Ask the bureau's administrator for an API key",
        "endpoints", "specification", SPEC_URL, "url", url, "changeset", o->changeset, "type",
        "production", "formats", "application/json", "text/xml");
    send_doc(req, 200, fmt, "discovery", doc);
}

static void on_services(struct rb_http_req *req, void *arg)
{
    struct o311 *o = arg;
    enum fmt fmt = path_format(req);
    if (wrong_jurisdiction(o, req, api->req_query(req, "jurisdiction_id"), fmt))
        return;
    json_t *svcs = services_load(o);
    if (!svcs) {
        send_error(req, 500, fmt, "the service list is not available");
        return;
    }
    json_t *out = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(svcs, i, s) json_array_append_new(out, service_entry(s));
    json_decref(svcs);
    send_doc(req, 200, fmt, "services", out);
}

static void on_service_definition(struct rb_http_req *req, void *arg)
{
    struct o311 *o = arg;
    char code[128];
    enum fmt fmt = FMT_JSON;
    if (split_format(api->req_param(req, "file"), code, sizeof(code), &fmt) != 0) {
        send_error(req, 404, FMT_JSON, "not found: ask for CODE.json or CODE.xml");
        return;
    }
    if (wrong_jurisdiction(o, req, api->req_query(req, "jurisdiction_id"), fmt))
        return;
    json_t *svcs = services_load(o);
    if (!svcs) {
        send_error(req, 500, fmt, "the service list is not available");
        return;
    }
    json_t *s = service_find(svcs, code);
    if (!s) {
        json_decref(svcs);
        send_error(req, 404, fmt, "no service with service_code \"%.64s\"", code);
        return;
    }
    json_t *doc = json_pack("{s:s, s:[]}", "service_code", str_of(s, "id"), "attributes");
    json_decref(svcs);
    send_doc(req, 200, fmt, "service_definition", doc);
}

/* ---- reading requests --------------------------------------------------------------------- */

/* Everything public about a request; never phone, email, name or the official named. */
static const char requests_sql[] =
    "SELECT tracking_no, status, service_id, department_id, text, lat, long, "
    "  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "  to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "  to_char(resolve_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
    "FROM cases "
    "WHERE channel = 'open311' AND kind = 'complaint' "
    "  AND ($1::text[] IS NULL OR tracking_no = ANY ($1::text[])) "
    "  AND ($1::text[] IS NOT NULL OR ("
    "       ($2::text[] IS NULL OR service_id = ANY ($2::text[])) "
    "   AND created_at >= to_timestamp($3::float8) AND created_at <= to_timestamp($4::float8) "
    "   AND ($5::text[] IS NULL OR status = ANY ($5::text[])))) "
    "ORDER BY created_at DESC, id DESC LIMIT 1000"; /* the spec's default page */

enum read_mode { READ_LIST, READ_ONE, READ_TOKEN };

struct read {
    struct o311 *o;
    struct rb_http_req *req;
    enum fmt fmt;
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
    json_t *s = service ? service_find(svcs, service) : NULL;
    const char *text = api->db_value(res, r, 4), *mark = NULL;
    for (const char *m = text; m && (m = strstr(m, ADDRESS_MARK)) != NULL; m++)
        mark = m;
    json_t *desc = mark ? json_stringn(text, (size_t)(mark - text)) : string_or_null(text);
    json_t *addr = mark ? json_string(mark + strlen(ADDRESS_MARK)) : json_null();
    return json_pack("{s:s, s:s, s:n, s:s, s:o, s:o, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o}",
                     "service_request_id", api->db_value(res, r, 0), "status",
                     public_status(api->db_value(res, r, 1)), "status_notes", "service_name",
                     s ? str_of(s, "name_en") : "", "service_code", string_or_null(service),
                     "description", desc, "agency_responsible",
                     department_name(svcs, api->db_value(res, r, 3)), "service_notice", "",
                     "requested_datetime", api->db_value(res, r, 7), "updated_datetime",
                     api->db_value(res, r, 8), "expected_datetime",
                     string_or_null(api->db_value(res, r, 9)), "address", addr, "lat",
                     number_or_null(api->db_value(res, r, 5)), "long",
                     number_or_null(api->db_value(res, r, 6)));
}

static void requests_found(const struct rb_db_result *res, const char *err, void *arg)
{
    struct read *rd = arg;
    struct rb_http_req *req = rd->req;
    if (err) {
        api->log(rd->o->ctx, RB_LOG_WARN, "reading requests failed: %s", err);
        send_error(req, 503, rd->fmt, "requests cannot be read right now; try again");
        free(rd);
        return;
    }
    int n = api->db_ntuples(res);
    if (rd->mode != READ_LIST && n == 0) {
        send_error(req, 404, rd->fmt, "no service request with this id");
        free(rd);
        return;
    }
    json_t *out = json_array();
    if (rd->mode == READ_TOKEN) {
        json_array_append_new(out, json_pack("{s:s, s:s}", "service_request_id",
                                             api->db_value(res, 0, 0), "token",
                                             api->db_value(res, 0, 0)));
    } else {
        json_t *svcs = services_load(rd->o);
        if (!svcs)
            svcs = json_array();
        for (int r = 0; r < n; r++)
            json_array_append_new(out, request_entry(res, r, svcs));
        json_decref(svcs);
    }
    send_doc(req, 200, rd->fmt, "service_requests", out);
    free(rd);
}

static void read_requests(struct o311 *o, struct rb_http_req *req, enum fmt fmt,
                          enum read_mode mode, const char *const params[5])
{
    struct read *rd = calloc(1, sizeof(*rd));
    if (!rd) {
        send_error(req, 503, fmt, "out of memory");
        return;
    }
    *rd = (struct read){o, req, fmt, mode};
    if (api->db_query(o->ctx, requests_sql, 5, params, requests_found, rd) != RB_OK) {
        send_error(req, 503, fmt, "the server is overloaded; try again");
        free(rd);
    }
}

/* GET requests/:file and tokens/:file (a token is the tracking number). */
static void read_one(struct rb_http_req *req, struct o311 *o, enum read_mode mode)
{
    char base[128], tracking[32], ids[48];
    enum fmt fmt = FMT_JSON;
    const char *why;
    if (split_format(api->req_param(req, "file"), base, sizeof(base), &fmt) != 0) {
        send_error(req, 404, FMT_JSON, "not found: ask for ID.json or ID.xml");
        return;
    }
    if (wrong_jurisdiction(o, req, api->req_query(req, "jurisdiction_id"), fmt))
        return;
    /* A malformed id names no request either: 404, as for an unknown one. */
    if (api->tracking_parse(base, tracking, sizeof(tracking), &why) != RB_OK) {
        send_error(req, 404, fmt, "no service request with this id (%s)", why);
        return;
    }
    snprintf(ids, sizeof(ids), "{%s}", tracking);
    const char *params[5] = {ids, NULL, "0", "0", NULL};
    read_requests(o, req, fmt, mode, params);
}

static void on_request_one(struct rb_http_req *req, void *arg)
{
    read_one(req, arg, READ_ONE);
}

static void on_token(struct rb_http_req *req, void *arg)
{
    read_one(req, arg, READ_TOKEN);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static long long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* ISO 8601 / W3C datetime to seconds since the epoch: YYYY-MM-DD, or YYYY-MM-DDTHH:MM with
 * optional :SS and .fraction, then Z, +HH:MM, +HHMM, +HH or nothing (UTC). A space where the
 * zone's "+" belongs is read as "+" (an unescaped "+" in a query string decodes to a space).
 * 0, or -1 for anything else. */
static int parse_datetime(const char *s, double *out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0;
    double frac = 0;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (strlen(s) < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
        s[7] != '-' || digits(s + 8, 2, &d))
        return -1;
    if (y < 1900 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
        return -1;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return -1;
    const char *p = s + 10;
    if (*p == 'T' || *p == 't') {
        if (digits(p + 1, 2, &h) || p[3] != ':' || digits(p + 4, 2, &mi))
            return -1;
        p += 6;
        if (*p == ':') {
            if (digits(p + 1, 2, &sec))
                return -1;
            p += 3;
            if (*p == '.' || *p == ',') {
                double scale = 0.1;
                if (p[1] < '0' || p[1] > '9')
                    return -1;
                for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
                    frac += (*p - '0') * scale;
            }
        }
        if (h > 23 || mi > 59 || sec > 60) /* 60: a leap second, read as the next one */
            return -1;
    }
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-' || *p == ' ') && p != s + 10) {
        int sign = *p == '-' ? -1 : 1, oh, om = 0;
        p++;
        if (digits(p, 2, &oh))
            return -1;
        p += 2;
        if (*p == ':')
            p++;
        if (*p) {
            if (digits(p, 2, &om))
                return -1;
            p += 2;
        }
        if (oh > 14 || om > 59)
            return -1;
        off = sign * (oh * 3600 + om * 60);
    }
    if (*p)
        return -1;
    *out = (double)days_from_civil(y, mo, d) * 86400.0 + h * 3600 + mi * 60 + sec + frac - off;
    return 0;
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

static int plain_code(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 64 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

/* GET requests.{json,xml}: the search. */
static void list_requests(struct rb_http_req *req, struct o311 *o, enum fmt fmt)
{
    const char *ids_q = api->req_query(req, "service_request_id");
    const char *codes_q = api->req_query(req, "service_code");
    const char *start_q = api->req_query(req, "start_date");
    const char *end_q = api->req_query(req, "end_date");
    const char *status_q = api->req_query(req, "status");
    char ids[MAX_IDS * 34 + 8] = "", codes[4096] = "", item[128];
    char start_s[32], end_s[32];
    const char *statuses = NULL;

    if (wrong_jurisdiction(o, req, api->req_query(req, "jurisdiction_id"), fmt))
        return;
    /* service_request_id: a comma-separated list; when given, the other filters are ignored
     * (the spec). */
    if (ids_q && *ids_q) {
        int n = 0;
        for (const char *p = ids_q; *p;) {
            size_t l = strcspn(p, ",");
            char tracking[32];
            const char *why;
            if (l == 0 || l >= sizeof(item) || ++n > MAX_IDS) {
                send_error(req, 400, fmt, "service_request_id: expected up to %d ids separated "
                                          "by commas", MAX_IDS);
                return;
            }
            memcpy(item, p, l);
            item[l] = '\0';
            if (api->tracking_parse(item, tracking, sizeof(tracking), &why) != RB_OK) {
                send_error(req, 400, fmt, "service_request_id \"%.40s\": %s", item, why);
                return;
            }
            array_add(ids, sizeof(ids), tracking);
            p += l;
            if (*p == ',')
                p++;
        }
        strcat(ids, "}");
        const char *params[5] = {ids, NULL, "0", "0", NULL};
        read_requests(o, req, fmt, READ_LIST, params);
        return;
    }
    if (codes_q && *codes_q) {
        json_t *svcs = services_load(o);
        if (!svcs) {
            send_error(req, 500, fmt, "the service list is not available");
            return;
        }
        for (const char *p = codes_q; *p;) {
            size_t l = strcspn(p, ",");
            int bad = l == 0 || l >= sizeof(item);
            if (!bad) {
                memcpy(item, p, l);
                item[l] = '\0';
                bad = !plain_code(item) || !service_find(svcs, item) ||
                      array_add(codes, sizeof(codes), item) != 0;
            }
            if (bad) {
                json_decref(svcs);
                send_error(req, 400, fmt, "service_code \"%.64s\": no such service (see "
                                          "services.%s)", l < sizeof(item) ? item : p,
                           fmt == FMT_XML ? "xml" : "json");
                return;
            }
            p += l;
            if (*p == ',')
                p++;
        }
        json_decref(svcs);
        strcat(codes, "}");
    }
    if (status_q && *status_q) {
        int want_open = 0, want_closed = 0;
        for (const char *p = status_q; *p;) {
            size_t l = strcspn(p, ",");
            if (l == 4 && strncmp(p, "open", 4) == 0)
                want_open = 1;
            else if (l == 6 && strncmp(p, "closed", 6) == 0)
                want_closed = 1;
            else {
                send_error(req, 400, fmt, "status: expected open, closed or open,closed");
                return;
            }
            p += l;
            if (*p == ',')
                p++;
        }
        if (want_open != want_closed)
            statuses = want_open ? open_states : closed_states;
    }
    double start = 0, end = 0;
    int has_start = start_q && *start_q, has_end = end_q && *end_q;
    if (has_start && parse_datetime(start_q, &start) != 0) {
        send_error(req, 400, fmt, "start_date: expected an ISO 8601 datetime such as "
                                  "2024-05-01T09:30:00+05:00");
        return;
    }
    if (has_end && parse_datetime(end_q, &end) != 0) {
        send_error(req, 400, fmt, "end_date: expected an ISO 8601 datetime such as "
                                  "2024-05-31T18:00:00Z");
        return;
    }
    if (!has_end)
        end = has_start ? start + WINDOW : (double)time(NULL) + 1;
    if (!has_start)
        start = end - WINDOW;
    if (start > end) {
        send_error(req, 400, fmt, "start_date is after end_date");
        return;
    }
    if (end - start > WINDOW + 1e-6) {
        send_error(req, 400, fmt, "start_date to end_date may not span more than 90 days");
        return;
    }
    snprintf(start_s, sizeof(start_s), "%.6f", start);
    snprintf(end_s, sizeof(end_s), "%.6f", end);
    const char *params[5] = {NULL, codes[0] ? codes : NULL, start_s, end_s, statuses};
    read_requests(o, req, fmt, READ_LIST, params);
}

/* ---- POST requests: a new complaint ------------------------------------------------------- */

struct form {
    char **kv; /* owned: key, value, key, value, ... (decoded, NUL-terminated) */
    size_t n;  /* pairs */
};

static void form_free(struct form *f)
{
    for (size_t i = 0; i < 2 * f->n; i++)
        free(f->kv[i]);
    free(f->kv);
    f->kv = NULL;
    f->n = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* application/x-www-form-urlencoded: '+' is a space, %XX a byte. A new string, or NULL with
 * *why set (bad escape, NUL byte, out of memory). */
static char *form_decode(const char *s, size_t n, const char **why)
{
    char *out = malloc(n + 1), *o = out;
    if (!out) {
        *why = "out of memory";
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            *o++ = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1, lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                *why = "a %-escape is not followed by two hex digits";
                free(out);
                return NULL;
            }
            if (hi == 0 && lo == 0) {
                *why = "a field contains a NUL byte (%00)";
                free(out);
                return NULL;
            }
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

static const char *form_get(const struct form *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->kv[2 * i], key) == 0)
            return f->kv[2 * i + 1];
    return NULL;
}

/* Fields we read; each may appear once. Others (attribute[...], media_url, device_id, ...)
 * are accepted and ignored. */
static const char *const known_fields[] = {"api_key", "service_code", "description", "lat",
                                           "long", "address_string", "email", "phone",
                                           "first_name", "last_name", "jurisdiction_id", NULL};

static int form_parse(const char *body, size_t len, struct form *f, char *why, size_t whylen)
{
    const char *p = body, *end = body + len, *err = NULL;
    memset(f, 0, sizeof(*f));
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (stop == p) { /* "a=1&&b=2": an empty pair */
            p = stop + 1;
            continue;
        }
        if (f->n >= MAX_FIELDS) {
            snprintf(why, whylen, "more than %d form fields", MAX_FIELDS);
            return -1;
        }
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        char **kv = realloc(f->kv, (f->n + 1) * 2 * sizeof(char *));
        if (!kv) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        f->kv = kv;
        char *k = form_decode(p, (size_t)(kend - p), &err);
        char *v = k ? form_decode(eq ? eq + 1 : stop, eq ? (size_t)(stop - eq - 1) : 0, &err)
                    : NULL;
        if (!k || !v) {
            free(k);
            snprintf(why, whylen, "the form body is malformed: %s", err);
            return -1;
        }
        for (const char *const *kf = known_fields; *kf; kf++)
            if (strcmp(*kf, k) == 0 && form_get(f, k)) {
                snprintf(why, whylen, "field %s is given twice", k);
                free(k);
                free(v);
                return -1;
            }
        f->kv[2 * f->n] = k;
        f->kv[2 * f->n + 1] = v;
        f->n++;
        p = stop + 1;
    }
    return 0;
}

struct post {
    struct o311 *o;
    struct rb_http_req *req;
    enum fmt fmt;
    struct form form; /* owned */
    char *text;       /* owned: description (+ address) */
    char key_name[72];
};

static void post_free(struct post *s)
{
    form_free(&s->form);
    free(s->text);
    free(s);
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
    struct post *s = arg;
    if (!r) {
        if (status == 422 || status == 400) {
            char msg[400];
            client_words(err ? err : "not valid", msg, sizeof(msg));
            send_error(s->req, 400, s->fmt, "%s", msg);
        } else {
            send_error(s->req, 503, s->fmt, "the request could not be stored right now; "
                                            "nothing was saved, please try again");
        }
        post_free(s);
        return;
    }
    api->log(s->o->ctx, RB_LOG_INFO, "service request %s stored (API key \"%s\", case %lld)",
             r->tracking_no, s->key_name, r->id);
    json_t *out = json_pack("[{s:s, s:s, s:n}]", "service_request_id", r->tracking_no,
                            "service_notice", "", "account_id");
    send_doc(s->req, 201, s->fmt, "service_requests", out);
    post_free(s);
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

/* The key is good: validate the rest and hand the case to intake. */
static void submit(struct post *s)
{
    struct rb_http_req *req = s->req;
    const struct form *f = &s->form;
    struct rb_case_submission sub = {.size = sizeof(sub), .kind = "complaint",
                                     .channel = "open311", .language = "en", .lat = NAN,
                                     .lon = NAN};
    const char *code = form_get(f, "service_code");
    const char *desc = form_get(f, "description");
    const char *lat = form_get(f, "lat"), *lon = form_get(f, "long");
    const char *addr = form_get(f, "address_string");
    const char *email = form_get(f, "email"), *phone = form_get(f, "phone");

    if (!code || !*code) {
        send_error(req, 400, s->fmt, "service_code is required (see services.json)");
        goto fail;
    }
    json_t *svcs = services_load(s->o);
    int known = svcs && plain_code(code) && service_find(svcs, code);
    json_decref(svcs);
    if (!known) {
        send_error(req, 400, s->fmt, "service_code \"%.64s\": no such service (see "
                                     "services.json)", code);
        goto fail;
    }
    if (!desc || !*desc) {
        send_error(req, 400, s->fmt, "description is required: say what the problem is");
        goto fail;
    }
    if (strlen(desc) > MAX_DESCRIPTION) {
        send_error(req, 400, s->fmt, "description is too long (at most 5000 characters)");
        goto fail;
    }
    if ((lat && *lat) || (lon && *lon)) {
        if (parse_coord(lat, &sub.lat) || parse_coord(lon, &sub.lon)) {
            send_error(req, 400, s->fmt, "lat and long: give both, as decimal degrees");
            goto fail;
        }
        if (sub.lat < -90 || sub.lat > 90 || sub.lon < -180 || sub.lon > 180) {
            send_error(req, 400, s->fmt, "lat and long: out of range (-90..90, -180..180)");
            goto fail;
        }
    }
    if (addr && strlen(addr) > MAX_ADDRESS) {
        send_error(req, 400, s->fmt, "address_string is too long (at most %d bytes)",
                   MAX_ADDRESS);
        goto fail;
    }
    if (isnan(sub.lat) && !(addr && *addr)) {
        send_error(req, 400, s->fmt, "a location is required: lat and long, or "
                                     "address_string");
        goto fail;
    }
    if (wrong_jurisdiction(s->o, req, form_get(f, "jurisdiction_id"), s->fmt))
        goto fail;
    /* The address travels in the text: the department reads it with the description. */
    size_t dl = strlen(desc), al = addr && *addr ? strlen(addr) : 0;
    s->text = malloc(dl + al + 16);
    if (!s->text) {
        send_error(req, 503, s->fmt, "out of memory");
        goto fail;
    }
    if (al)
        snprintf(s->text, dl + al + 16, "%s" ADDRESS_MARK "%s", desc, addr);
    else
        memcpy(s->text, desc, dl + 1);
    sub.service = code;
    sub.text = s->text;
    sub.text_len = strlen(s->text);
    sub.phone = phone && *phone ? phone : NULL;
    sub.email = email && *email ? email : NULL;
    sub.anonymous = !sub.phone && !sub.email;

    char why[256], msg[300];
    int rc = api->case_submit(s->o->ctx, &sub, case_stored, s, why, sizeof(why));
    if (rc == RB_OK)
        return;
    if (rc == RB_EINVAL) {
        client_words(why, msg, sizeof(msg));
        send_error(req, 400, s->fmt, "%s", msg);
    } else {
        send_error(req, 503, s->fmt, "%s", rc == RB_EAGAIN ? why
                                                           : "requests cannot be taken now");
    }
fail:
    post_free(s);
}

static const char key_sql[] =
    "SELECT id, name FROM rabta_api_key($1::bytea)";

static void key_checked(const struct rb_db_result *res, const char *err, void *arg)
{
    struct post *s = arg;
    if (err) {
        api->log(s->o->ctx, RB_LOG_WARN, "checking an API key failed: %s", err);
        send_error(s->req, 503, s->fmt, "the API key cannot be checked right now; try again");
        post_free(s);
        return;
    }
    if (api->db_ntuples(res) != 1) {
        send_error(s->req, 403, s->fmt, "api_key is not valid (unknown or revoked)");
        post_free(s);
        return;
    }
    snprintf(s->key_name, sizeof(s->key_name), "%s", api->db_value(res, 0, 1));
    submit(s);
}

static void post_request(struct rb_http_req *req, struct o311 *o, enum fmt fmt)
{
    const char *ct = api->req_header(req, "Content-Type");
    static const char form_ct[] = "application/x-www-form-urlencoded";
    if (!ct || strncasecmp(ct, form_ct, sizeof(form_ct) - 1) != 0 ||
        (ct[sizeof(form_ct) - 1] && ct[sizeof(form_ct) - 1] != ';' &&
         ct[sizeof(form_ct) - 1] != ' ')) {
        send_error(req, 400, fmt, "send the request form-encoded (Content-Type: "
                                  "application/x-www-form-urlencoded)");
        return;
    }
    struct post *s = calloc(1, sizeof(*s));
    if (!s) {
        send_error(req, 503, fmt, "out of memory");
        return;
    }
    s->o = o;
    s->req = req;
    s->fmt = fmt;
    size_t len;
    const char *body = api->req_body(req, &len);
    char why[160];
    if (form_parse(body ? body : "", len, &s->form, why, sizeof(why)) != 0) {
        send_error(req, 400, fmt, "%s", why);
        post_free(s);
        return;
    }
    const char *key = form_get(&s->form, "api_key");
    if (!key)
        key = api->req_query(req, "api_key");
    if (!key || !*key) {
        send_error(req, 403, fmt, "api_key is required to submit a request");
        post_free(s);
        return;
    }
    if (strlen(key) > 200) {
        send_error(req, 403, fmt, "api_key is not valid (unknown or revoked)");
        post_free(s);
        return;
    }
    unsigned char d[crypto_hash_sha256_BYTES];
    char hash[2 + 64 + 1] = "\\x";
    crypto_hash_sha256(d, (const unsigned char *)key, strlen(key));
    sodium_bin2hex(hash + 2, sizeof(hash) - 2, d, sizeof(d));
    const char *params[1] = {hash};
    if (api->db_query(o->ctx, key_sql, 1, params, key_checked, s) != RB_OK) {
        send_error(req, 503, fmt, "the server is overloaded; try again");
        post_free(s);
    }
}

static void on_requests(struct rb_http_req *req, void *arg)
{
    enum fmt fmt = path_format(req);
    if (api->req_method(req) == RB_HTTP_POST)
        post_request(req, arg, fmt);
    else
        list_requests(req, arg, fmt);
}

/* ---- life --------------------------------------------------------------------------------- */

static void set_changeset(struct o311 *o)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(o->changeset, sizeof(o->changeset), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void open311_stop(struct rb_plugin_ctx *ctx);

static int open311_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    api = host;
    if (!RB_HOST_HAS(api, services_json)) {
        api->log(ctx, RB_LOG_ERROR, "this rabtad is too old for the open311 plugin: its host "
                                    "API has no services_json (plugin needs ABI %u with the "
                                    "service list)", RB_PLUGIN_ABI);
        return RB_ERR;
    }
    if (sodium_init() < 0)
        return RB_ERR;
    struct o311 *o = calloc(1, sizeof(*o));
    if (!o)
        return RB_ERR;
    o->ctx = ctx;
    api->set_data(ctx, o);
    if (api->conf_parse(ctx, conf_fields, NCONF, &o->conf) != RB_OK) {
        open311_stop(ctx); /* the core calls stop() only after a successful init() */
        return RB_EINVAL;
    }
    set_changeset(o);
    static const struct {
        unsigned methods;
        const char *pattern;
        rb_plugin_http_fn fn;
    } routes[] = {
        {RB_HTTP_GET, "/open311/discovery.json", on_discovery},
        {RB_HTTP_GET, "/open311/discovery.xml", on_discovery},
        {RB_HTTP_GET, "/open311/v2/discovery.json", on_discovery},
        {RB_HTTP_GET, "/open311/v2/discovery.xml", on_discovery},
        {RB_HTTP_GET, "/open311/v2/services.json", on_services},
        {RB_HTTP_GET, "/open311/v2/services.xml", on_services},
        {RB_HTTP_GET, "/open311/v2/services/:file", on_service_definition},
        {RB_HTTP_GET | RB_HTTP_POST, "/open311/v2/requests.json", on_requests},
        {RB_HTTP_GET | RB_HTTP_POST, "/open311/v2/requests.xml", on_requests},
        {RB_HTTP_GET, "/open311/v2/requests/:file", on_request_one},
        {RB_HTTP_GET, "/open311/v2/tokens/:file", on_token},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (api->http_route(ctx, routes[i].methods, routes[i].pattern, routes[i].fn, o) !=
            RB_OK) {
            open311_stop(ctx);
            return RB_ERR;
        }
    return RB_OK;
}

/* A reloaded configuration: the plugin's block is parsed again and swapped in only if it is
 * valid; the changeset moves on, as the service list may have changed. */
static int open311_reload(struct rb_plugin_ctx *ctx)
{
    struct o311 *o = api->get_data(ctx);
    struct o311_conf fresh = {0};
    if (!o)
        return RB_OK;
    set_changeset(o);
    if (api->conf_parse(ctx, conf_fields, NCONF, &fresh) != RB_OK) {
        api->conf_free(conf_fields, NCONF, &fresh);
        return RB_EINVAL;
    }
    api->conf_free(conf_fields, NCONF, &o->conf);
    o->conf = fresh;
    return RB_OK;
}

static void open311_stop(struct rb_plugin_ctx *ctx)
{
    struct o311 *o = api ? api->get_data(ctx) : NULL;
    if (!o)
        return;
    api->conf_free(conf_fields, NCONF, &o->conf);
    api->set_data(ctx, NULL);
    free(o);
}

static const struct rb_plugin open311 = {
    RB_PLUGIN_HEADER,
    .name = "open311",
    .kind = RB_PLUGIN_CHANNEL,
    .version = "0.1.0",
    .description = "Open311 GeoReport v2 (services, requests) over Rabta's cases",
    .init = open311_init,
    .stop = open311_stop,
    .reload = open311_reload,
};

RB_PLUGIN_DEFINE(open311)
