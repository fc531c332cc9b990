/* app plugin: JSON bodies, strict fields, text hygiene and sign-in, shared by its handlers. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "app.h"

static const struct rb_host_api *api;

void rb_app_util_init(const struct rb_host_api *host)
{
    api = host;
}

void rb_app_reply_json(struct rb_http_req *req, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        api->reply_error(req, 500, "internal_error", "could not encode the answer");
        return;
    }
    api->reply(req, status, NULL, text, strlen(text));
    free(text);
}

void rb_app_outcome_unknown(struct rb_http_req *req, const char *what, const char *retry)
{
    api->reply_header(req, "Retry-After", "5");
    api->reply_error(req, 503, "outcome_unknown",
                     "the database stopped answering after %s reached it, so it may or may not "
                     "have been saved.%s", what, retry);
}

void rb_app_write_failed(struct rb_http_req *req, const char *what, const char *err)
{
    if (err && strncmp(err, RB_OUTCOME_UNKNOWN, strlen(RB_OUTCOME_UNKNOWN)) == 0)
        rb_app_outcome_unknown(req, what, " Look at the case's timeline before sending it "
                                          "again.");
    else
        api->reply_error(req, 503, "unavailable", "%s could not be saved right now; nothing "
                                                  "was saved, try again", what);
}

void rb_app_bytea(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    out[0] = '\\';
    out[1] = 'x';
    for (size_t i = 0; i < n; i++) {
        out[2 + 2 * i] = digits[in[i] >> 4];
        out[3 + 2 * i] = digits[in[i] & 15];
    }
    out[2 + 2 * n] = '\0';
}

/* ---- JSON bodies -------------------------------------------------------------------------- */

json_t *rb_app_sla_json(const char *text)
{
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    if (o && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    return o ? o : json_null();
}

int rb_app_json_raw(char *out, size_t cap, size_t *len, const char *s)
{
    size_t k = strlen(s);
    if (*len + k >= cap)
        return -1;
    memcpy(out + *len, s, k + 1);
    *len += k;
    return 0;
}

int rb_app_json_str(char *out, size_t cap, size_t *len, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (!s)
        return rb_app_json_raw(out, cap, len, "null");
    size_t n = *len;
    if (n + 2 > cap)
        return -1;
    out[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc = *p == '"' ? '"' : *p == '\\' ? '\\' : *p == '\n' ? 'n' : *p == '\r' ? 'r'
                 : *p == '\t' ? 't' : 0;
        if (n + 7 > cap)
            return -1;
        if (esc) {
            out[n++] = '\\';
            out[n++] = esc;
        } else if (*p < 0x20) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hex[*p >> 4];
            out[n + 5] = hex[*p & 15];
            n += 6;
        } else {
            out[n++] = (char)*p;
        }
    }
    out[n++] = '"';
    *len = n;
    return 0;
}

json_t *rb_app_body_object(struct rb_http_req *req)
{
    const char *ct = api->req_header(req, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0 || (ct[16] && ct[16] != ';')) {
        api->reply_error(req, 415, "unsupported_media_type",
                         "send the body as JSON with Content-Type: application/json");
        return NULL;
    }
    size_t len;
    const char *body = api->req_body(req, &len);
    json_error_t e;
    json_t *o = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &e);
    if (!o) {
        api->reply_error(req, 400, "invalid_json", "the body is not valid JSON: %s (line %d, "
                                                   "column %d)", e.text, e.line, e.column);
        return NULL;
    }
    if (!json_is_object(o)) {
        api->reply_error(req, 400, "invalid_json", "the body must be a JSON object");
        json_decref(o);
        return NULL;
    }
    return o;
}

int rb_app_known_fields(struct rb_http_req *req, json_t *o, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        const char *const *a = allowed;
        while (*a && strcmp(*a, key) != 0)
            a++;
        if (!*a) {
            api->reply_error(req, 400, "unknown_field", "unknown field \"%.64s\"", key);
            return -1;
        }
    }
    return 0;
}

int rb_app_opt_str(struct rb_http_req *req, json_t *o, const char *key, const char **out)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        api->reply_error(req, 400, "invalid_field", "field \"%s\": expected a string", key);
        return -1;
    }
    *out = json_string_value(v);
    if (strlen(*out) != json_string_length(v)) {
        api->reply_error(req, 400, "invalid_field", "field \"%s\": contains a NUL character",
                         key);
        return -1;
    }
    return 0;
}

int rb_app_opt_bool(struct rb_http_req *req, json_t *o, const char *key, int *out)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        api->reply_error(req, 400, "invalid_field", "field \"%s\": expected true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

int rb_app_opt_num(struct rb_http_req *req, json_t *o, const char *key, double *out)
{
    json_t *v = json_object_get(o, key);
    *out = NAN;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v)) {
        api->reply_error(req, 400, "invalid_field", "field \"%s\": expected a number", key);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

/* ---- text hygiene (the rules of core/base/text.c, which a plugin cannot link) ------------------ */

/* One code point of strict UTF-8 (RFC 3629) at s[*pos]; -1 on anything invalid. */
static int32_t utf8_next(const unsigned char *s, size_t len, size_t *pos)
{
    size_t i = *pos;
    unsigned c = s[i];
    uint32_t cp, min;
    size_t n;
    if (c < 0x80) {
        *pos = i + 1;
        return (int32_t)c;
    } else if (c >= 0xC2 && c <= 0xDF) {
        n = 1, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 2, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3, cp = c & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if (len - i - 1 < n)
        return -1;
    for (size_t k = 1; k <= n; k++) {
        if ((s[i + k] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *pos = i + 1 + n;
    return (int32_t)cp;
}

static int is_space(uint32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200D) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x2060 || cp == 0x3000 || cp == 0xFEFF;
}

int rb_app_text_check(const char *s, size_t len, size_t max, size_t *chars, const char **why)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t pos = 0, n = 0;
    int visible = 0;
    while (pos < len) {
        int32_t c = utf8_next(u, len, &pos);
        if (c < 0) {
            *why = "is not valid UTF-8";
            return -1;
        }
        uint32_t cp = (uint32_t)c;
        if (cp == 0) {
            *why = "contains a NUL character";
            return -1;
        }
        if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || (cp >= 0x7F && cp <= 0x9F)) {
            *why = "contains a control character";
            return -1;
        }
        if ((cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069)) {
            *why = "contains a bidirectional override character";
            return -1;
        }
        if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE) {
            *why = "contains a Unicode noncharacter";
            return -1;
        }
        if (!is_space(cp))
            visible = 1;
        n++;
    }
    if (chars)
        *chars = n;
    if (!visible) {
        *why = "is empty";
        return -1;
    }
    if (max && n > max) {
        *why = "is too long";
        return -1;
    }
    return 0;
}

int rb_app_text_field(struct rb_http_req *req, const char *field, const char *text)
{
    size_t chars = 0;
    const char *why;
    if (rb_app_text_check(text, strlen(text), RB_APP_TEXT_MAX, &chars, &why) == 0)
        return 0;
    if (strcmp(why, "is too long") == 0)
        api->reply_error(req, 422, "invalid_text",
                         "field \"%s\" is too long (%zu characters; at most %d)", field, chars,
                         RB_APP_TEXT_MAX);
    else
        api->reply_error(req, 422, "invalid_text", "field \"%s\" %s", field, why);
    return -1;
}

/* ---- sign-in ------------------------------------------------------------------------------ */

const char *rb_app_bearer(struct rb_http_req *req, int *malformed)
{
    const char *h = api->req_header(req, "Authorization");
    *malformed = 0;
    if (!h)
        return NULL;
    if (strncmp(h, "Bearer ", 7) != 0 || !h[7]) {
        *malformed = 1;
        return NULL;
    }
    return h + 7;
}

struct authing {
    struct rb_http_req *req;
    rb_app_authed_fn fn;
    void *arg;
};

static void authed(const struct rb_citizen_info *c, const char *err, void *arg)
{
    struct authing a = *(struct authing *)arg;
    free(arg);
    if (c) {
        a.fn(a.req, c->id, a.arg);
    } else if (err) {
        api->reply_error(a.req, 503, "unavailable", "your sign-in cannot be checked right now; "
                                                    "try again");
    } else {
        api->reply_error(a.req, 401, "unauthorized",
                         "your sign-in has expired or is not valid; sign in again");
    }
}

void rb_app_authenticate(struct rb_plugin_ctx *ctx, struct rb_http_req *req,
                         rb_app_authed_fn fn, void *arg)
{
    int malformed;
    const char *token = rb_app_bearer(req, &malformed);
    if (!token) {
        api->reply_error(req, 401, "unauthorized",
                         malformed ? "expected Authorization: Bearer <token>"
                                   : "sign in first (Authorization: Bearer <token>)");
        return;
    }
    struct authing *a = malloc(sizeof(*a));
    if (!a) {
        api->reply_error(req, 503, "unavailable", "out of memory");
        return;
    }
    a->req = req;
    a->fn = fn;
    a->arg = arg;
    int rc = api->citizen_auth(ctx, token, authed, a);
    if (rc == RB_OK)
        return;
    free(a);
    if (rc == RB_EINVAL)
        api->reply_error(req, 401, "unauthorized",
                         "your sign-in has expired or is not valid; sign in again");
    else
        api->reply_error(req, 503, "unavailable", "the server is overloaded; try again");
}
