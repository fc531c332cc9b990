/* Form bodies: application/x-www-form-urlencoded and multipart/form-data (RFC 7578), the two
 * encodings a browser sends without JavaScript. Field values must be UTF-8 text; the core's
 * intake checks what a text may hold. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web.h"

#define MAX_FIELDS 64

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 32) >= 'a' && (c | 32) <= 'f')
        return (c | 32) - 'a' + 10;
    return -1;
}

/* Decodes s[0..n) ('+' is a space) into a new string; NULL when a % escape is broken or the
 * result holds a NUL. */
static char *decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    if (!out)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            int a = i + 1 < n ? hexval(s[i + 1]) : -1;
            int b = i + 2 < n ? hexval(s[i + 2]) : -1;
            int h = a < 0 || b < 0 ? -1 : a * 16 + b;
            if (h <= 0) {
                free(out);
                return NULL;
            }
            out[o++] = (char)h;
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static int set_field(json_t *form, const char *name, const char *value, size_t vlen)
{
    json_t *v = json_stringn(value, vlen);
    if (!v || json_object_size(form) >= MAX_FIELDS || !*name) {
        json_decref(v);
        return -1;
    }
    json_object_set_new(form, name, v);
    return 0;
}

json_t *web_form_urlencoded(const char *body, size_t len)
{
    json_t *form = json_object();
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&')
            end++;
        const char *eq = memchr(body + i, '=', end - i);
        if (end > i) {
            char *name = decode(body + i, eq ? (size_t)(eq - body - i) : end - i);
            char *value = eq ? decode(eq + 1, (size_t)(body + end - eq - 1)) : strdup("");
            int bad = !name || !value || set_field(form, name, value, strlen(value)) != 0;
            free(name);
            free(value);
            if (bad) {
                json_decref(form);
                return NULL;
            }
        }
        i = end + 1;
    }
    return form;
}

/* The value of parameter key in a header's value ("form-data; name=\"x\""), into out. */
static int header_param(const char *h, size_t hlen, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 1 < hlen; i++) {
        if ((i == 0 || h[i - 1] == ' ' || h[i - 1] == ';') && strncasecmp(h + i, key, kl) == 0 &&
            h[i + kl] == '=') {
            const char *v = h + i + kl + 1;
            const char *end = h + hlen;
            int quoted = v < end && *v == '"';
            if (quoted)
                v++;
            size_t n = 0;
            while (v + n < end && (quoted ? v[n] != '"' : v[n] != ';' && v[n] != ' '))
                n++;
            if (n >= cap)
                return -1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 0;
        }
    }
    return -1;
}

/* One part: headers then "\r\n\r\n" then the content. */
static int part(json_t *form, const char *p, size_t n, const char *file_field,
                struct web_buf *photo, char *photo_type, size_t type_len)
{
    const char *sep = NULL;
    for (size_t i = 0; i + 3 < n; i++)
        if (memcmp(p + i, "\r\n\r\n", 4) == 0) {
            sep = p + i;
            break;
        }
    if (!sep)
        return -1;
    char name[64] = "", ctype[64] = "";
    int is_file = 0;
    for (const char *line = p; line < sep;) {
        const char *eol = line;
        while (eol < sep && *eol != '\r')
            eol++;
        size_t ll = (size_t)(eol - line);
        if (ll > 20 && strncasecmp(line, "Content-Disposition:", 20) == 0) {
            if (header_param(line + 20, ll - 20, "name", name, sizeof(name)) != 0)
                return -1;
            char big[256];
            is_file = header_param(line + 20, ll - 20, "filename", big, sizeof(big)) == 0;
        } else if (ll > 13 && strncasecmp(line, "Content-Type:", 13) == 0) {
            const char *v = line + 13;
            while (*v == ' ')
                v++;
            snprintf(ctype, sizeof(ctype), "%.*s", (int)(eol - v), v);
        }
        line = eol + 2;
    }
    const char *content = sep + 4;
    size_t clen = n - (size_t)(content - p);
    if (!*name)
        return -1;
    if (is_file) {
        if ((!file_field || strcmp(name, file_field) == 0) && clen > 0 && photo->n == 0) {
            web_buf_add(photo, content, clen);
            snprintf(photo_type, type_len, "%s", ctype);
        }
        return 0;
    }
    if (memchr(content, '\0', clen))
        return -1;
    return set_field(form, name, content, clen);
}

json_t *web_form_multipart(const char *content_type, const char *body, size_t len,
                           const char *file_field, struct web_buf *photo, char *photo_type,
                           size_t type_len)
{
    char boundary[80], delim[84];
    if (!content_type ||
        header_param(content_type, strlen(content_type), "boundary", boundary,
                     sizeof(boundary)) != 0 ||
        !*boundary)
        return NULL;
    snprintf(delim, sizeof(delim), "--%s", boundary);
    size_t dl = strlen(delim);
    const char *end = body + len;
    const char *p = len >= dl && memcmp(body, delim, dl) == 0 ? body : NULL;
    json_t *form = json_object();
    while (p) {
        p += dl;
        if (end - p >= 2 && memcmp(p, "--", 2) == 0)
            return form; /* the closing delimiter */
        if (end - p < 2 || memcmp(p, "\r\n", 2) != 0)
            break;
        p += 2;
        const char *next = NULL;
        for (const char *q = p; q + dl + 2 <= end; q++)
            if (q[0] == '\r' && q[1] == '\n' && memcmp(q + 2, delim, dl) == 0) {
                next = q;
                break;
            }
        if (!next ||
            part(form, p, (size_t)(next - p), file_field, photo, photo_type, type_len) != 0)
            break;
        p = next + 2;
    }
    json_decref(form);
    return NULL;
}
