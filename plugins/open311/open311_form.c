/* open311 form bodies (application/x-www-form-urlencoded), the API key every POST needs,
 * and checks of what a person typed (docs/open311.md, "Filing a request"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "open311.h"

#define MAX_FIELDS 200 /* form fields in one POST */

static const struct rb_host_api *api;

void o311_form_init(const struct rb_host_api *host)
{
    api = host;
}

static void form_free(struct o311_form *f)
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

const char *o311_form_get(const struct o311_form *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->kv[2 * i], key) == 0)
            return f->kv[2 * i + 1];
    return NULL;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. Code points into
 * *chars when not NULL. 1 or 0. */
static int utf8_valid(const char *s, size_t *chars)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (*p) {
        unsigned c = *p;
        int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                             : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!len)
            return 0;
        unsigned cp = len == 1 ? c : c & (0xFFu >> (len + 1));
        for (int i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        p += len;
        n++;
    }
    if (chars)
        *chars = n;
    return 1;
}

int o311_text_ok(const char *s, size_t max, int one_line)
{
    size_t chars;
    if (!utf8_valid(s, &chars) || chars > max)
        return -1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && (one_line || (*p != '\t' && *p != '\n' && *p != '\r'))) ||
            *p == 0x7F)
            return -1;
    return 0;
}

/* A key may come twice only when it names a list: "attribute[code][]", media_url. */
static int repeatable(const char *key)
{
    size_t n = strlen(key);
    return (n > 2 && strcmp(key + n - 2, "[]") == 0) || strcmp(key, "media_url") == 0;
}

static int form_add(struct o311_form *f, char *k, char *v, char *why, size_t whylen)
{
    if (!utf8_valid(k, NULL) || !utf8_valid(v, NULL)) {
        snprintf(why, whylen, "field %.64s is not valid UTF-8", utf8_valid(k, NULL) ? k : "?");
        return -1;
    }
    if (!repeatable(k) && o311_form_get(f, k)) {
        snprintf(why, whylen, "field %.64s is given twice", k);
        return -1;
    }
    char **kv = realloc(f->kv, (f->n + 1) * 2 * sizeof(char *));
    if (!kv) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    f->kv = kv;
    f->kv[2 * f->n] = k;
    f->kv[2 * f->n + 1] = v;
    f->n++;
    return 0;
}

static int form_parse(const char *body, size_t len, struct o311_form *f, char *why,
                      size_t whylen)
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
        char *k = form_decode(p, (size_t)(kend - p), &err);
        char *v = k ? form_decode(eq ? eq + 1 : stop, eq ? (size_t)(stop - eq - 1) : 0, &err)
                    : NULL;
        if (!k || !v) {
            free(k);
            snprintf(why, whylen, "the form body is malformed: %s", err);
            return -1;
        }
        if (form_add(f, k, v, why, whylen) != 0) {
            free(k);
            free(v);
            return -1;
        }
        p = stop + 1;
    }
    return 0;
}

void o311_post_free(struct o311_post *p)
{
    form_free(&p->form);
    free(p->text);
    free(p->origin);
    free(p);
}

static const char key_sql[] = "SELECT id, name FROM rabta_api_key($1::bytea)";

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The name of a key found good less than conf.key_cache seconds ago, or NULL. */
static const char *key_cached(struct o311 *o, const unsigned char *hash)
{
    double now = now_mono();
    for (size_t i = 0; i < O311_KEY_SLOTS; i++)
        if (o->keys[i].until > now && memcmp(o->keys[i].hash, hash, 32) == 0)
            return o->keys[i].name;
    return NULL;
}

/* Remembers a good key until key_cache seconds from now, in its own slot, a free one or the
 * one that expires first (a handful of clients have keys: the table never grows). */
static void key_remember(struct o311 *o, const unsigned char *hash, const char *name)
{
    if (o->conf.key_cache <= 0)
        return;
    struct o311_key *slot = &o->keys[0];
    for (size_t i = 0; i < O311_KEY_SLOTS; i++) {
        struct o311_key *k = &o->keys[i];
        if (memcmp(k->hash, hash, 32) == 0) {
            slot = k;
            break;
        }
        if (k->until < slot->until)
            slot = k;
    }
    memcpy(slot->hash, hash, 32);
    snprintf(slot->name, sizeof(slot->name), "%s", name);
    slot->until = now_mono() + o->conf.key_cache;
}

static void key_checked(const struct rb_db_result *res, const char *err, void *arg)
{
    struct o311_post *s = arg;
    if (err) {
        api->log(s->o->ctx, RB_LOG_WARN, "checking an API key failed: %s", err);
        o311_error(s->req, 503, s->fmt, "the API key cannot be checked right now; try again");
        o311_post_free(s);
        return;
    }
    if (api->db_ntuples(res) != 1) {
        o311_error(s->req, 403, s->fmt, "api_key is not valid (unknown or revoked)");
        o311_post_free(s);
        return;
    }
    snprintf(s->key_name, sizeof(s->key_name), "%s", api->db_value(res, 0, 1));
    key_remember(s->o, s->key_hash, s->key_name);
    s->next(s);
}

void o311_post_start(struct rb_http_req *req, struct o311 *o, enum o311_fmt fmt,
                     o311_post_fn fn)
{
    const char *ct = api->req_header(req, "Content-Type");
    static const char form_ct[] = "application/x-www-form-urlencoded";
    if (!ct || strncasecmp(ct, form_ct, sizeof(form_ct) - 1) != 0 ||
        (ct[sizeof(form_ct) - 1] && ct[sizeof(form_ct) - 1] != ';' &&
         ct[sizeof(form_ct) - 1] != ' ')) {
        o311_error(req, 400, fmt, "send the request form-encoded (Content-Type: "
                                  "application/x-www-form-urlencoded)");
        return;
    }
    struct o311_post *s = calloc(1, sizeof(*s));
    if (!s) {
        o311_error(req, 503, fmt, "out of memory");
        return;
    }
    s->o = o;
    s->req = req;
    s->fmt = fmt;
    s->next = fn;
    size_t len;
    const char *body = api->req_body(req, &len);
    char why[160];
    if (form_parse(body ? body : "", len, &s->form, why, sizeof(why)) != 0) {
        o311_error(req, 400, fmt, "%s", why);
        o311_post_free(s);
        return;
    }
    const char *key = o311_form_get(&s->form, "api_key");
    if (!key)
        key = api->req_query(req, "api_key");
    if (!key || !*key) {
        o311_error(req, 403, fmt, "api_key is required to submit a request");
        o311_post_free(s);
        return;
    }
    if (strlen(key) > 200) {
        o311_error(req, 403, fmt, "api_key is not valid (unknown or revoked)");
        o311_post_free(s);
        return;
    }
    unsigned char *d = s->key_hash;
    char hash[2 + 64 + 1] = "\\x";
    crypto_hash_sha256(d, (const unsigned char *)key, strlen(key));
    const char *name = key_cached(o, d);
    if (name) {
        snprintf(s->key_name, sizeof(s->key_name), "%s", name);
        s->next(s);
        return;
    }
    sodium_bin2hex(hash + 2, sizeof(hash) - 2, d, crypto_hash_sha256_BYTES);
    const char *params[1] = {hash};
    if (api->db_query_prepared(o->ctx, key_sql, 1, params, key_checked, s) != RB_OK) {
        o311_error(req, 503, fmt, "the server is overloaded; try again");
        o311_post_free(s);
    }
}


/* One optional short field into out: at most max bytes of one-line text. */
static int extra_str(struct o311_post *p, json_t *out, const char *key, size_t max)
{
    const char *v = o311_form_get(&p->form, key);
    if (!v || !*v)
        return 0;
    if (strlen(v) > max || o311_text_ok(v, max, 1) != 0) {
        o311_error(p->req, 400, p->fmt, "%s: at most %zu bytes of text on one line", key, max);
        return -1;
    }
    json_object_set_new(out, key, json_string(v));
    return 0;
}

/* An absolute http(s) URL without spaces or controls. */
static int media_url_ok(const char *v)
{
    size_t n = strlen(v);
    if (n > O311_URL_MAX || (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0))
        return 0;
    for (const unsigned char *c = (const unsigned char *)v; *c; c++)
        if (*c <= 0x20 || *c == 0x7F)
            return 0;
    return n > 8;
}

json_t *o311_extras(struct o311_post *p)
{
    static const char *const names[] = {"first_name", "last_name", NULL};
    static const char *const ids[] = {"account_id", "device_id", "address_id", NULL};
    json_t *out = json_object(), *urls = json_array();
    int bad = 0;
    for (const char *const *k = names; !bad && *k; k++)
        bad = extra_str(p, out, *k, O311_NAME_MAX);
    for (const char *const *k = ids; !bad && *k; k++)
        bad = extra_str(p, out, *k, O311_SHORT_MAX);
    for (size_t i = 0; !bad && i < p->form.n; i++) {
        const char *v = p->form.kv[2 * i + 1];
        if (strcmp(p->form.kv[2 * i], "media_url") != 0 || !*v)
            continue;
        if (!media_url_ok(v)) {
            o311_error(p->req, 400, p->fmt, "media_url: expected an http:// or https:// URL of "
                                            "at most %d bytes", O311_URL_MAX);
            bad = 1;
        }
        json_array_append_new(urls, json_string(v));
    }
    if (!bad && json_array_size(urls) > 0)
        json_object_set(out, "media_url", json_array_get(urls, 0));
    if (!bad && json_array_size(urls) > 1)
        json_object_set(out, "media_urls", urls);
    json_decref(urls);
    if (bad) {
        json_decref(out);
        return NULL;
    }
    return out;
}
