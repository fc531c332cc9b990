/* See web_buf.h. */
#include "web_buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void web_buf_add(struct web_buf *b, const void *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            abort();
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void web_buf_str(struct web_buf *b, const char *s)
{
    web_buf_add(b, s, strlen(s));
}

void web_buf_html(struct web_buf *b, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        web_buf_add(b, run, (size_t)(s - run));
        web_buf_str(b, rep);
        run = s + 1;
    }
    web_buf_add(b, run, (size_t)(s - run));
}

void web_buf_urlenc(struct web_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            web_buf_add(b, s, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            web_buf_add(b, e, 3);
        }
    }
}

char *web_buf_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct web_buf b = {0};
    char chunk[16384];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.n <= max)
        web_buf_add(&b, chunk, n);
    fclose(f);
    if (b.n > max) {
        free(b.p);
        return NULL;
    }
    web_buf_add(&b, "", 0);
    *len = b.n;
    return b.p;
}
