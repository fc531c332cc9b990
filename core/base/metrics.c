/* Process metrics in the Prometheus text exposition format, version 0.0.4.
 *
 *   rabta_http_requests_total{route,method,status}      counter, one series per combination
 *   rabta_http_request_duration_seconds{route}          histogram, buckets 1 ms .. 10 s
 *   counters by name (rb_metrics_count)                 with an optional preformatted label
 *   gauges read through callbacks at render time        (rb_metrics_gauge)
 *
 * Series live in one small chained hash table keyed by their label values; each is also on
 * an insertion-ordered list so the exposition is stable. Recording a request whose route,
 * method and status were seen before only hashes, compares and adds: no allocation. */
#include "base/metrics.h"

#include <event2/buffer.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"

#define NBUCKETS_HASH 256

/* Upper bounds of the latency histogram, seconds. +Inf is implicit. */
static const double hist_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,  0.5,    1,     2.5,  5,    10};
#define NBOUNDS (sizeof(hist_bounds) / sizeof(hist_bounds[0]))

enum series_kind { SERIES_REQ = 1, SERIES_HIST = 2, SERIES_COUNTER = 3 };

struct series {
    enum series_kind kind;
    uint32_t hash;
    char *a;    /* owned: route (REQ, HIST) or counter name (COUNTER) */
    char *b;    /* owned: method (REQ) or label string (COUNTER, may be NULL); NULL for HIST */
    int status; /* REQ only */
    double value;                  /* REQ and COUNTER: the count */
    uint64_t buckets[NBOUNDS + 1]; /* HIST: per-bucket counts, not cumulative; last is +Inf */
    double sum;                    /* HIST */
    uint64_t count;                /* HIST */
    struct counter_family *family; /* borrowed; COUNTER only */
    struct series *chain;          /* hash chain */
    struct series *next;           /* insertion order within its list */
};

/* A counter name with its help text; its series are on the family's own list. */
struct counter_family {
    char *name; /* owned */
    char *help; /* owned */
    struct series *first, *last;
    struct counter_family *next;
};

struct gauge {
    char *name; /* owned */
    char *help; /* owned */
    rb_metrics_gauge_fn fn;
    void *arg;
    struct gauge *next;
};

struct rb_metrics {
    struct series *table[NBUCKETS_HASH];
    struct series *req_first, *req_last;   /* rabta_http_requests_total series */
    struct series *hist_first, *hist_last; /* histogram series, one per route */
    struct counter_family *fam_first, *fam_last;
    struct gauge *gauge_first, *gauge_last;
};

struct rb_metrics *rb_metrics_new(void)
{
    return rb_calloc(1, sizeof(struct rb_metrics));
}

static void series_free_list(struct series *s)
{
    while (s) {
        struct series *n = s->next;
        free(s->a);
        free(s->b);
        free(s);
        s = n;
    }
}

void rb_metrics_free(struct rb_metrics *m)
{
    if (!m)
        return;
    series_free_list(m->req_first);
    series_free_list(m->hist_first);
    for (struct counter_family *f = m->fam_first, *fn; f; f = fn) {
        fn = f->next;
        series_free_list(f->first);
        free(f->name);
        free(f->help);
        free(f);
    }
    for (struct gauge *g = m->gauge_first, *gn; g; g = gn) {
        gn = g->next;
        free(g->name);
        free(g->help);
        free(g);
    }
    free(m);
}

/* FNV-1a over the kind, both strings and the status. */
static uint32_t hash_key(enum series_kind kind, const char *a, const char *b, int status)
{
    uint32_t h = 2166136261u ^ (uint32_t)kind;
    for (const unsigned char *p = (const unsigned char *)a; *p; p++)
        h = (h ^ *p) * 16777619u;
    h = (h ^ 0xffu) * 16777619u;
    if (b)
        for (const unsigned char *p = (const unsigned char *)b; *p; p++)
            h = (h ^ *p) * 16777619u;
    h = (h ^ (uint32_t)status) * 16777619u;
    return h;
}

static int same_str(const char *x, const char *y)
{
    if (!x || !y)
        return x == y;
    return strcmp(x, y) == 0;
}

/* Finds the series with this key, creating it (appending it to the first..last list) if new. */
static struct series *series_get(struct rb_metrics *m, enum series_kind kind, const char *a,
                                 const char *b, int status, struct series **first,
                                 struct series **last)
{
    uint32_t h = hash_key(kind, a, b, status);
    struct series **slot = &m->table[h % NBUCKETS_HASH];
    for (struct series *s = *slot; s; s = s->chain)
        if (s->hash == h && s->kind == kind && s->status == status && same_str(s->a, a) &&
            same_str(s->b, b))
            return s;
    struct series *s = rb_calloc(1, sizeof(*s));
    s->kind = kind;
    s->hash = h;
    s->a = rb_strdup(a);
    s->b = rb_strdup(b);
    s->status = status;
    s->chain = *slot;
    *slot = s;
    if (*last)
        (*last)->next = s;
    else
        *first = s;
    *last = s;
    return s;
}

void rb_metrics_http(struct rb_metrics *m, const char *route, const char *method, int status,
                     double seconds)
{
    if (!m)
        return;
    if (!route)
        route = "unmatched";
    if (!method)
        method = "OTHER";
    struct series *r =
        series_get(m, SERIES_REQ, route, method, status, &m->req_first, &m->req_last);
    r->value += 1;

    struct series *hs = series_get(m, SERIES_HIST, route, NULL, 0, &m->hist_first, &m->hist_last);
    if (!(seconds >= 0)) /* also catches NaN */
        seconds = 0;
    size_t i = 0;
    while (i < NBOUNDS && seconds > hist_bounds[i])
        i++;
    hs->buckets[i]++;
    hs->sum += seconds;
    hs->count++;
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
static int valid_name(const char *name)
{
    if (!name || !*name)
        return 0;
    for (const char *p = name; *p; p++) {
        int alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == ':';
        int digit = *p >= '0' && *p <= '9';
        if (!alpha && !(digit && p != name))
            return 0;
    }
    return 1;
}

void rb_metrics_count(struct rb_metrics *m, const char *name, const char *help,
                      const char *labels, double delta)
{
    if (!m)
        return;
    if (!valid_name(name)) {
        rb_warn("metrics", "counter name \"%s\" is not a valid Prometheus name; ignored",
                name ? name : "(null)");
        return;
    }
    if (labels && (!*labels || strpbrk(labels, "\n{}"))) {
        if (*labels)
            rb_warn("metrics", "counter %s: label string %s is not valid; ignored", name, labels);
        labels = NULL;
    }
    uint32_t h = hash_key(SERIES_COUNTER, name, labels, 0);
    for (struct series *s = m->table[h % NBUCKETS_HASH]; s; s = s->chain)
        if (s->hash == h && s->kind == SERIES_COUNTER && same_str(s->a, name) &&
            same_str(s->b, labels)) {
            s->value += delta;
            return;
        }
    /* First time for this name+labels: find or create the family, then the series. */
    struct counter_family *f = m->fam_first;
    while (f && strcmp(f->name, name) != 0)
        f = f->next;
    if (!f) {
        f = rb_calloc(1, sizeof(*f));
        f->name = rb_strdup(name);
        f->help = rb_strdup(help ? help : "");
        if (m->fam_last)
            m->fam_last->next = f;
        else
            m->fam_first = f;
        m->fam_last = f;
    }
    struct series *s = series_get(m, SERIES_COUNTER, name, labels, 0, &f->first, &f->last);
    s->family = f;
    s->value += delta;
}

void rb_metrics_gauge(struct rb_metrics *m, const char *name, const char *help,
                      rb_metrics_gauge_fn fn, void *arg)
{
    if (!m || !fn)
        return;
    if (!valid_name(name)) {
        rb_warn("metrics", "gauge name \"%s\" is not a valid Prometheus name; ignored",
                name ? name : "(null)");
        return;
    }
    for (struct gauge *g = m->gauge_first; g; g = g->next)
        if (strcmp(g->name, name) == 0) { /* registered again: the newest callback wins */
            free(g->help);
            g->help = rb_strdup(help ? help : "");
            g->fn = fn;
            g->arg = arg;
            return;
        }
    struct gauge *g = rb_calloc(1, sizeof(*g));
    g->name = rb_strdup(name);
    g->help = rb_strdup(help ? help : "");
    g->fn = fn;
    g->arg = arg;
    if (m->gauge_last)
        m->gauge_last->next = g;
    else
        m->gauge_first = g;
    m->gauge_last = g;
}

/* ---- rendering ---------------------------------------------------------------------------- */

/* A sample value: integers without a fraction, others with enough digits, and Prometheus's
 * spellings of the special values. */
static void put_value(struct evbuffer *out, double v)
{
    if (isnan(v))
        evbuffer_add(out, "NaN", 3);
    else if (isinf(v))
        evbuffer_add_printf(out, "%s", v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        evbuffer_add_printf(out, "%.0f", v);
    else
        evbuffer_add_printf(out, "%.15g", v);
}

/* Label values escape backslash, double quote and newline. */
static void put_label_value(struct evbuffer *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            evbuffer_add(out, "\\\\", 2);
        else if (*s == '"')
            evbuffer_add(out, "\\\"", 2);
        else if (*s == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add(out, s, 1);
    }
}

/* HELP text escapes backslash and newline. */
static void put_help(struct evbuffer *out, const char *name, const char *help, const char *type)
{
    evbuffer_add_printf(out, "# HELP %s ", name);
    for (const char *s = help; *s; s++) {
        if (*s == '\\')
            evbuffer_add(out, "\\\\", 2);
        else if (*s == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add(out, s, 1);
    }
    evbuffer_add_printf(out, "\n# TYPE %s %s\n", name, type);
}

static void render_http(struct rb_metrics *m, struct evbuffer *out)
{
    if (m->req_first) {
        put_help(out, "rabta_http_requests_total",
                 "HTTP requests answered, by route pattern, method and status.", "counter");
        for (struct series *s = m->req_first; s; s = s->next) {
            evbuffer_add_printf(out, "rabta_http_requests_total{route=\"");
            put_label_value(out, s->a);
            evbuffer_add_printf(out, "\",method=\"");
            put_label_value(out, s->b);
            evbuffer_add_printf(out, "\",status=\"%d\"} ", s->status);
            put_value(out, s->value);
            evbuffer_add(out, "\n", 1);
        }
    }
    if (m->hist_first) {
        static const char *const le[NBOUNDS] = {"0.001", "0.0025", "0.005", "0.01", "0.025",
                                                "0.05",  "0.1",    "0.25",  "0.5",  "1",
                                                "2.5",   "5",      "10"};
        put_help(out, "rabta_http_request_duration_seconds",
                 "Time from receiving an HTTP request to answering it, by route pattern.",
                 "histogram");
        for (struct series *s = m->hist_first; s; s = s->next) {
            uint64_t cum = 0;
            for (size_t i = 0; i <= NBOUNDS; i++) {
                cum += s->buckets[i];
                evbuffer_add_printf(out, "rabta_http_request_duration_seconds_bucket{route=\"");
                put_label_value(out, s->a);
                evbuffer_add_printf(out, "\",le=\"%s\"} %llu\n", i < NBOUNDS ? le[i] : "+Inf",
                                    (unsigned long long)cum);
            }
            evbuffer_add_printf(out, "rabta_http_request_duration_seconds_sum{route=\"");
            put_label_value(out, s->a);
            evbuffer_add_printf(out, "\"} ");
            put_value(out, s->sum);
            evbuffer_add_printf(out, "\nrabta_http_request_duration_seconds_count{route=\"");
            put_label_value(out, s->a);
            evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)s->count);
        }
    }
}

void rb_metrics_render(struct rb_metrics *m, struct evbuffer *out)
{
    if (!m || !out)
        return;
    render_http(m, out);
    for (struct counter_family *f = m->fam_first; f; f = f->next) {
        put_help(out, f->name, f->help, "counter");
        for (struct series *s = f->first; s; s = s->next) {
            if (s->b)
                evbuffer_add_printf(out, "%s{%s} ", f->name, s->b);
            else
                evbuffer_add_printf(out, "%s ", f->name);
            put_value(out, s->value);
            evbuffer_add(out, "\n", 1);
        }
    }
    for (struct gauge *g = m->gauge_first; g; g = g->next) {
        put_help(out, g->name, g->help, "gauge");
        evbuffer_add_printf(out, "%s ", g->name);
        put_value(out, g->fn(g->arg));
        evbuffer_add(out, "\n", 1);
    }
}
