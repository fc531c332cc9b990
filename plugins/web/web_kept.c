/* Pages kept rendered (web.h, web_page_render_kept): a page whose data is the configuration
 * (services, districts, the words of its language) and a few flags is rendered once per
 * key and kept; each request copies it and writes its own CSRF token where the kept copy has
 * a placeholder of the same length. The kept pages are dropped when the templates or the
 * configuration are loaded again (web.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web.h"

#define KEPT_BUCKETS 256u
#define KEPT_MAX 1024 /* pages kept at most; past that, pages are rendered each time */
#define KEPT_TOKENS 16 /* placeholders a kept page may hold */

/* WEB_SID_LEN characters that every escaping context writes unchanged. */
static const char placeholder[] = "rabta-csrf-placeholder-00000000000000000000";

struct kept {
    struct kept *next; /* owned: the bucket's chain */
    char *key;         /* owned */
    char *html;        /* owned */
    size_t len;
    int status;
    size_t at[KEPT_TOKENS];
    int n_at;
};

struct web_kept {
    struct kept *buckets[KEPT_BUCKETS];
    int n;
    char *scratch; /* owned: the answer being written, kept between requests */
    size_t scratch_cap;
};

_Static_assert(sizeof(placeholder) == WEB_SID_LEN + 1, "the placeholder is a CSRF token's size");

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % KEPT_BUCKETS;
}

void web_kept_free(struct web_kept *t)
{
    for (unsigned b = 0; t && b < KEPT_BUCKETS; b++) {
        for (struct kept *k = t->buckets[b], *next; k; k = next) {
            next = k->next;
            free(k->key);
            free(k->html);
            free(k);
        }
    }
    if (t)
        free(t->scratch);
    free(t);
}

/* Renders pg's page with the placeholder for its CSRF token and keeps it under key. NULL when
 * it cannot be kept (no such template, too many pages or placeholders). */
static struct kept *keep(struct page *pg, const char *name, int status, const char *key)
{
    struct web_kept *t = web_g.kept;
    if (!t) {
        t = web_g.kept = calloc(1, sizeof(*t));
        if (!t)
            abort();
    }
    if (t->n >= KEPT_MAX)
        return NULL;
    web_page_set_str(pg, "csrf", placeholder);
    web_page_set_str(pg, "page", name);
    size_t len = 0;
    char *html = web_tmpl_render(web_g.tmpl, name, pg->data, pg->lang, &len);
    web_page_set_str(pg, "csrf", pg->csrf);
    if (!html)
        return NULL;
    struct kept *k = calloc(1, sizeof(*k));
    if (!k)
        abort();
    for (const char *p = html; (p = memmem(p, len - (size_t)(p - html), placeholder,
                                           WEB_SID_LEN)) != NULL;
         p += WEB_SID_LEN) {
        if (k->n_at == KEPT_TOKENS) {
            free(html);
            free(k);
            return NULL;
        }
        k->at[k->n_at++] = (size_t)(p - html);
    }
    k->key = strdup(key);
    if (!k->key)
        abort();
    k->html = html;
    k->len = len;
    k->status = status;
    unsigned b = hash(key);
    k->next = t->buckets[b];
    t->buckets[b] = k;
    t->n++;
    return k;
}

/* pg's key for name and variant into key: 0, or -1 when it does not fit. */
static int key_of(const struct page *pg, const char *name, const char *variant, char *key,
                  size_t cap)
{
    const json_t *d = pg->data;
    int n = snprintf(key, cap, "%s|%s|%d%d%d|%s|%s", name, pg->lang,
                     json_is_true(json_object_get(d, "kiosk")),
                     json_is_true(json_object_get(d, "signed_in")),
                     json_is_true(json_object_get(d, "staff_signed_in")),
                     web_g.api->req_path(pg->req), variant ? variant : "");
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static struct kept *find(const char *key, int status)
{
    struct kept *k = web_g.kept ? web_g.kept->buckets[hash(key)] : NULL;
    while (k && (k->status != status || strcmp(k->key, key) != 0))
        k = k->next;
    return k;
}

/* Answers with k and this request's CSRF token; frees pg. */
static void serve(struct page *pg, const struct kept *k)
{
    struct web_kept *t = web_g.kept;
    if (t->scratch_cap < k->len) { /* no malloc and free of a whole page per request */
        free(t->scratch);
        t->scratch = malloc(k->len);
        if (!t->scratch)
            abort();
        t->scratch_cap = k->len;
    }
    memcpy(t->scratch, k->html, k->len);
    for (int i = 0; i < k->n_at; i++)
        memcpy(t->scratch + k->at[i], pg->csrf, WEB_SID_LEN);
    web_page_reply_html(pg, k->status, t->scratch, k->len); /* the reply copies it */
}

int web_page_kept(struct page *pg, int status, const char *name, const char *variant)
{
    char key[512];
    const struct kept *k = key_of(pg, name, variant, key, sizeof(key)) == 0 ? find(key, status)
                                                                              : NULL;
    if (!k)
        return 0;
    serve(pg, k);
    return 1;
}

void web_page_render_kept(struct page *pg, int status, const char *name, const char *variant)
{
    char key[512];
    struct kept *k = NULL;
    if (key_of(pg, name, variant, key, sizeof(key)) == 0) {
        k = find(key, status);
        if (!k)
            k = keep(pg, name, status, key);
    }
    if (k)
        serve(pg, k);
    else
        web_page_render(pg, status, name);
}
