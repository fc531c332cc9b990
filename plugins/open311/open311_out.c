/* open311 answers: one JSON tree, written as JSON or XML; Open311's error shape; dates and
 * the window of a search (docs/open311.md). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "open311.h"

static const struct rb_host_api *api;

void o311_out_init(const struct rb_host_api *host)
{
    api = host;
}

/* Our case states as Open311's two, and as FixMyStreet's extended statuses (the same words
 * its Open311 client sends and understands: FIXED, IN_PROGRESS, NO_FURTHER_ACTION, ...). */
static const struct o311_status statuses[] = {
    {"submitted", "open", "OPEN"},
    {"routed", "open", "OPEN"},
    {"acknowledged", "open", "INVESTIGATING"},
    {"in_progress", "open", "IN_PROGRESS"},
    {"awaiting_citizen", "open", "INVESTIGATING"},
    {"transferred", "open", "INTERNAL_REFERRAL"},
    {"reopened", "open", "OPEN"},
    {"resolved", "closed", "FIXED"},
    {"closed", "closed", "CLOSED"},
    {"rejected", "closed", "NO_FURTHER_ACTION"},
    {"answered", "closed", "CLOSED"},
};

const struct o311_status *o311_status_of(const char *rabta)
{
    for (size_t i = 0; rabta && i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (strcmp(statuses[i].rabta, rabta) == 0)
            return &statuses[i];
    return &statuses[0];
}

/* The element name of an item of the array called name. */
static const char *item_name(const char *name)
{
    static const char *const pairs[][2] = {
        {"services", "service"},   {"service_requests", "request"}, {"errors", "error"},
        {"attributes", "attribute"}, {"endpoints", "endpoint"},     {"formats", "format"},
        {"values", "value"},
        {"service_request_updates", "request_update"},
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

/* doc (stolen) as JSON, or as XML rooted at root: a new string of *len bytes, or NULL. */
static char *render(enum o311_fmt fmt, const char *root, json_t *doc, size_t *len)
{
    char *text = NULL;
    *len = 0;
    if (!doc) {
        text = NULL;
    } else if (fmt == O311_JSON) {
        text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15));
        *len = text ? strlen(text) : 0;
    } else {
        FILE *f = open_memstream(&text, len);
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
    return text;
}

static const char *content_type(enum o311_fmt fmt)
{
    return fmt == O311_XML ? "text/xml; charset=utf-8" : "application/json; charset=utf-8";
}

/* Answers with doc (stolen), rooted at root in XML. */
void o311_send(struct rb_http_req *req, int status, enum o311_fmt fmt, const char *root,
               json_t *doc)
{
    size_t len;
    char *text = render(fmt, root, doc, &len);
    if (!text) {
        static const char oom[] = "[{\"code\":500,\"description\":\"out of memory\"}]";
        api->reply(req, 500, NULL, oom, sizeof(oom) - 1);
        return;
    }
    api->reply(req, status, content_type(fmt), text, len);
    free(text);
}

static json_t *error_doc(int status, const char *msg)
{
    return json_pack("[{s:i, s:s}]", "code", status, "description", msg);
}

/* The format a path asks for: .xml -> XML, anything else JSON. */
static enum o311_fmt format_of(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    return n >= 4 && strcmp(p + n - 4, ".xml") == 0 ? O311_XML : O311_JSON;
}

int o311_error_writer(const char *path, int status, const char *message,
                      const char **ctype, char *buf, size_t cap, void *arg)
{
    (void)arg;
    enum o311_fmt fmt = format_of(path);
    size_t len;
    char *text = render(fmt, "errors", error_doc(status, message), &len);
    if (!text || len >= cap) {
        free(text);
        return -1;
    }
    memcpy(buf, text, len + 1);
    free(text);
    *ctype = content_type(fmt);
    return (int)len;
}

void o311_error(struct rb_http_req *req, int status, enum o311_fmt fmt, const char *msgfmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, msgfmt);
    vsnprintf(msg, sizeof(msg), msgfmt, ap);
    va_end(ap);
    /* The spec's "General Service Error" (the database is down, overloaded, ...) is HTTP 400;
     * the body keeps the specific code (503, 504), which the spec allows, and Retry-After
     * says that trying again makes sense. */
    int http = status >= 500 ? 400 : status;
    if (status >= 500)
        api->reply_header(req, "Retry-After", "1");
    o311_send(req, http, fmt, "errors", error_doc(status, msg));
}

int o311_split_format(const char *file, char *base, size_t cap, enum o311_fmt *fmt)
{
    const char *dot = file ? strrchr(file, '.') : NULL;
    if (!dot || dot == file || (size_t)(dot - file) >= cap)
        return -1;
    if (strcmp(dot, ".json") == 0)
        *fmt = O311_JSON;
    else if (strcmp(dot, ".xml") == 0)
        *fmt = O311_XML;
    else
        return -1;
    memcpy(base, file, (size_t)(dot - file));
    base[dot - file] = '\0';
    return 0;
}

enum o311_fmt o311_path_format(struct rb_http_req *req)
{
    return format_of(api->req_path(req));
}

int o311_wrong_jurisdiction(struct o311 *o, struct rb_http_req *req, const char *given,
                            enum o311_fmt fmt)
{
    if (!o->conf.jurisdiction_id || !given || !*given ||
        strcmp(given, o->conf.jurisdiction_id) == 0)
        return 0;
    o311_error(req, 404, fmt, "jurisdiction_id \"%.64s\" is not served here (this endpoint "
                              "serves \"%.64s\")", given, o->conf.jurisdiction_id);
    return 1;
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
int o311_parse_datetime(const char *s, double *out)
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

int o311_window(struct rb_http_req *req, enum o311_fmt fmt, double *start, double *end)
{
    const char *start_q = api->req_query(req, "start_date");
    const char *end_q = api->req_query(req, "end_date");
    int has_start = start_q && *start_q, has_end = end_q && *end_q;
    if (has_start && o311_parse_datetime(start_q, start) != 0) {
        o311_error(req, 400, fmt, "start_date: expected an ISO 8601 datetime such as "
                                  "2024-05-01T09:30:00+05:00");
        return -1;
    }
    if (has_end && o311_parse_datetime(end_q, end) != 0) {
        o311_error(req, 400, fmt, "end_date: expected an ISO 8601 datetime such as "
                                  "2024-05-31T18:00:00Z");
        return -1;
    }
    if (!has_end)
        *end = has_start ? *start + O311_WINDOW : (double)time(NULL) + 1;
    if (!has_start)
        *start = *end - O311_WINDOW;
    if (*start > *end) {
        o311_error(req, 400, fmt, "start_date is after end_date");
        return -1;
    }
    if (*end - *start > O311_WINDOW + 1e-6) {
        o311_error(req, 400, fmt, "start_date to end_date may not span more than 90 days");
        return -1;
    }
    return 0;
}
