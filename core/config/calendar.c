/* Business calendars: loading from YAML and business-time arithmetic. See calendar.h.
 *
 * The arithmetic walks local days. For each day it takes that day's intervals (the dated
 * exception if there is one, else the weekday's), turns their ends into instants through the
 * zone, and counts. Three things keep it cheap:
 *   - a walker caches the zone offset and the UTC range over which it holds, so most days
 *     cost no zone look-up at all;
 *   - holidays are a sorted array with a cursor that only moves forward;
 *   - a run of whole weeks containing no holiday and no clock change is worth exactly
 *     week_seconds each, and is skipped in one step. */
#include "config/calendar.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/tz.h"

#define DAY 86400
#define WEEK (7 * DAY)
#define DAY_MIN INT64_C(-62091)  /* 1800-01-01 */
#define DAY_MAX INT64_C(2932897) /* 10000-01-01 */
#define T_MIN (DAY_MIN * DAY)
#define T_MAX (DAY_MAX * DAY)

struct cal_iv {
    int32_t start, end; /* seconds after local midnight, [start, end), end <= 86400 */
};

struct cal_day {
    int n;
    struct cal_iv iv[RB_CAL_MAX_INTERVALS]; /* ascending, neither overlapping nor touching */
};

struct cal_holiday {
    int64_t day; /* local day number (days since 1970-01-01) */
    struct cal_day hours;
};

struct rb_calendar {
    char *name;        /* owned */
    struct rb_tz *tz;  /* owned */
    struct cal_day week[7]; /* 0 = Monday */
    int64_t week_seconds;
    struct cal_holiday *hol; /* owned; ascending by day, one per day */
    size_t n_hol;
};

static const char *const weekday_names[7][2] = {
    {"mon", "monday"}, {"tue", "tuesday"},  {"wed", "wednesday"}, {"thu", "thursday"},
    {"fri", "friday"}, {"sat", "saturday"}, {"sun", "sunday"},
};

static int64_t day_seconds(const struct cal_day *d)
{
    int64_t s = 0;
    for (int i = 0; i < d->n; i++)
        s += d->iv[i].end - d->iv[i].start;
    return s;
}

/* ==== loading ================================================================================ */

/* One dated exception as read, before sorting and the duplicate check. */
struct hol_in {
    int64_t day;
    struct cal_day hours;
    const struct rb_node *at; /* borrowed; the date node */
    const char *name;         /* borrowed; may be NULL */
    size_t seq;               /* reading order */
};

struct loader {
    struct rb_errors *e;
    struct rb_calendar *c;
    const char *base_dir; /* borrowed */
    struct rb_doc **docs; /* owned; holiday files, kept until the end for positions */
    size_t n_docs;
    struct hol_in *hol; /* owned */
    size_t n_hol, cap_hol;
};

/* "HH:MM" (hours 0-24, "24:00" only when end_ok) at s, exactly len characters. Returns the
 * seconds after midnight, -1 when it is not shaped like a time, -2 when out of range. */
static int parse_clock(const char *s, size_t len, int end_ok)
{
    size_t i = 0;
    int h = 0, m = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9' && i < 2)
        h = h * 10 + (s[i++] - '0');
    if (i == 0 || i >= len || s[i] != ':' || len - i != 3)
        return -1;
    if (s[i + 1] < '0' || s[i + 1] > '9' || s[i + 2] < '0' || s[i + 2] > '9')
        return -1;
    m = (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
    if (m > 59 || h > 24 || (h == 24 && (m != 0 || !end_ok)))
        return -2;
    return h * 3600 + m * 60;
}

/* One "HH:MM-HH:MM" node into *out. Returns 0, or -1 after adding an error. */
static int parse_interval(struct loader *l, const struct rb_node *n, const char *key,
                          struct cal_iv *out)
{
    if (n->type != RB_NODE_SCALAR) {
        rb_errors_at(l->e, n, "key \"%s\": expected an interval such as 09:00-17:00, got %s", key,
                     rb_node_kind(n));
        return -1;
    }
    const char *s = n->scalar, *dash = strchr(s, '-');
    if (!dash) {
        rb_errors_at(l->e, n, "key \"%s\": expected an interval such as 09:00-17:00, got \"%s\"",
                     key, s);
        return -1;
    }
    const char *a = s, *b = dash + 1;
    size_t alen = (size_t)(dash - s), blen = strlen(b);
    while (alen && a[alen - 1] == ' ')
        alen--;
    while (*b == ' ')
        b++, blen--;
    int start = parse_clock(a, alen, 0), end = parse_clock(b, blen, 1);
    if (start == -1 || end == -1) {
        rb_errors_at(l->e, n, "key \"%s\": expected an interval such as 09:00-17:00, got \"%s\"",
                     key, s);
        return -1;
    }
    if (start < 0 || end < 0) {
        const char *bad = start < 0 ? a : b;
        int badlen = (int)(start < 0 ? alen : blen);
        rb_errors_at(l->e, n,
                     "key \"%s\": bad time \"%.*s\" in \"%s\" (hours 00-23, minutes 00-59; "
                     "24:00 only as an end)",
                     key, badlen, bad, s);
        return -1;
    }
    if (end <= start) {
        rb_errors_at(l->e, n,
                     end == start ? "key \"%s\": the interval \"%s\" is empty"
                                  : "key \"%s\": the interval \"%s\" ends before it starts (a "
                                    "shift past midnight is two intervals, one on each day)",
                     key, s);
        return -1;
    }
    out->start = start;
    out->end = end;
    return 0;
}

/* A day's hours: "closed", nothing, one interval, or a list of them. Returns 0, or -1 after
 * adding errors. Overlaps are errors; touching intervals are joined. */
static int parse_day(struct loader *l, const struct rb_node *v, const char *key,
                     struct cal_day *out)
{
    memset(out, 0, sizeof(*out));
    if (!v || rb_node_is_null(v) || (v->type == RB_NODE_SCALAR && strcasecmp(v->scalar, "closed") == 0))
        return 0;
    const struct rb_node *const *items = &v;
    size_t n = 1;
    if (v->type == RB_NODE_SEQ) {
        items = (const struct rb_node *const *)v->items;
        n = v->n;
    } else if (v->type != RB_NODE_SCALAR) {
        rb_errors_at(l->e, v,
                     "key \"%s\": expected a list of intervals such as [09:00-13:00, "
                     "14:00-17:00], or closed; got %s",
                     key, rb_node_kind(v));
        return -1;
    }
    if (n > RB_CAL_MAX_INTERVALS) {
        rb_errors_at(l->e, v, "key \"%s\": %zu intervals; a day may have at most %d", key, n,
                     RB_CAL_MAX_INTERVALS);
        return -1;
    }
    struct cal_iv iv[RB_CAL_MAX_INTERVALS];
    size_t at[RB_CAL_MAX_INTERVALS]; /* index into items, in start order */
    int bad = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct cal_iv x;
        if (parse_interval(l, items[i], key, &x) != 0) {
            bad = 1;
            continue;
        }
        size_t j = k++;
        for (; j > 0 && iv[j - 1].start > x.start; j--) {
            iv[j] = iv[j - 1];
            at[j] = at[j - 1];
        }
        iv[j] = x;
        at[j] = i;
    }
    if (bad)
        return -1;
    for (size_t j = 1; j < k; j++) {
        if (iv[j].start >= iv[j - 1].end)
            continue;
        size_t later = at[j] > at[j - 1] ? at[j] : at[j - 1];
        size_t first = at[j] > at[j - 1] ? at[j - 1] : at[j];
        rb_errors_at(l->e, items[later], "key \"%s\": the intervals \"%s\" and \"%s\" overlap",
                     key, items[first]->scalar, items[later]->scalar);
        bad = 1;
    }
    if (bad)
        return -1;
    for (size_t j = 0; j < k; j++) {
        if (out->n > 0 && out->iv[out->n - 1].end == iv[j].start)
            out->iv[out->n - 1].end = iv[j].end;
        else
            out->iv[out->n++] = iv[j];
    }
    return 0;
}

static int weekday_index(const char *s, size_t len)
{
    for (int d = 0; d < 7; d++)
        for (int f = 0; f < 2; f++)
            if (strlen(weekday_names[d][f]) == len && strncasecmp(s, weekday_names[d][f], len) == 0)
                return d;
    return -1;
}

static void parse_week(struct loader *l, const struct rb_node *hours)
{
    if (hours->type != RB_NODE_MAP) {
        rb_errors_at(l->e, hours,
                     "key \"hours\": expected a map of weekdays to intervals (mon-thu: "
                     "[09:00-13:00, 14:00-17:00]), got %s",
                     rb_node_kind(hours));
        return;
    }
    const struct rb_node *given_by[7] = {0};
    for (size_t i = 0; i < hours->n; i++) {
        const struct rb_node *kn = hours->keys[i];
        const char *k = kn->scalar, *dash = strchr(k, '-');
        int d0 = weekday_index(k, dash ? (size_t)(dash - k) : strlen(k));
        int d1 = dash ? weekday_index(dash + 1, strlen(dash + 1)) : d0;
        if (d0 < 0 || d1 < 0) {
            rb_errors_at(l->e, kn,
                         "key \"%s\": unknown weekday \"%s\" (known: mon, tue, wed, thu, fri, "
                         "sat, sun, or a range such as mon-thu)",
                         k, d0 < 0 ? k : dash + 1);
            continue;
        }
        if (d1 < d0) {
            rb_errors_at(l->e, kn,
                         "key \"%s\": a range runs forward from Monday to Sunday, e.g. mon-thu",
                         k);
            continue;
        }
        int dup = 0;
        for (int d = d0; d <= d1; d++) {
            if (given_by[d]) {
                rb_errors_at(l->e, kn, "key \"%s\": %s is already given by \"%s\" (line %d, "
                                       "column %d)",
                             k, weekday_names[d][0], given_by[d]->scalar, given_by[d]->line,
                             given_by[d]->col);
                dup = 1;
                break;
            }
        }
        if (dup)
            continue;
        struct cal_day day;
        if (parse_day(l, hours->items[i], k, &day) != 0)
            continue;
        for (int d = d0; d <= d1; d++) {
            given_by[d] = kn;
            l->c->week[d] = day;
        }
    }
}

/* "YYYY-MM-DD" into a day number. Returns 0, or -1 after adding an error. */
static int parse_date(struct loader *l, const struct rb_node *n, int64_t *out)
{
    const char *s = n->type == RB_NODE_SCALAR ? n->scalar : "";
    int ok = strlen(s) == 10 && s[4] == '-' && s[7] == '-';
    for (int i = 0; ok && i < 10; i++)
        ok = i == 4 || i == 7 || (s[i] >= '0' && s[i] <= '9');
    if (!ok) {
        rb_errors_at(l->e, n, "key \"date\": expected a date such as 2026-03-23, got %s%s%s",
                     n->type == RB_NODE_SCALAR ? "\"" : "",
                     n->type == RB_NODE_SCALAR ? s : rb_node_kind(n),
                     n->type == RB_NODE_SCALAR ? "\"" : "");
        return -1;
    }
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1900 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && leap)) {
        rb_errors_at(l->e, n, "key \"date\": %s is not a date%s", s,
                     y < 1900 ? " (years before 1900 are not supported)"
                     : m < 1 || m > 12 ? " (months run 01-12)"
                                        : " (no such day in that month)");
        return -1;
    }
    *out = rb_tz_days_from_civil(y, m, d);
    return 0;
}

struct holiday_fields {
    char *date, *name;
    long long days;
};

static void parse_holiday(struct loader *l, const struct rb_node *map)
{
    static const struct rb_conf_field fields[] = {
        {"date", RB_CONF_STRING, offsetof(struct holiday_fields, date), RB_CONF_REQUIRED, 0, 0},
        {"name", RB_CONF_STRING, offsetof(struct holiday_fields, name), 0, 0, 0},
        {"days", RB_CONF_INT, offsetof(struct holiday_fields, days), 0, 1, 31},
    };
    static const char *const extra[] = {"hours", NULL};
    if (map->type != RB_NODE_MAP) {
        rb_errors_at(l->e, map,
                     "key \"holidays\": each entry must be a map such as { date: 2026-03-23, "
                     "name: Pakistan Day }, got %s",
                     rb_node_kind(map));
        return;
    }
    struct holiday_fields in = {NULL, NULL, 1};
    size_t before = l->e->n;
    rb_conf_parse(map, "a holiday", fields, RB_ARRAY_LEN(fields), extra, &in, l->e);
    int64_t day = 0;
    const struct rb_node *date = rb_node_get(map, "date");
    if (in.date)
        parse_date(l, date, &day);
    struct cal_day hours;
    parse_day(l, rb_node_get(map, "hours"), "hours", &hours);
    rb_conf_free(fields, RB_ARRAY_LEN(fields), &in);
    if (l->e->n != before)
        return;
    const struct rb_node *name = rb_node_get(map, "name");
    for (long long i = 0; i < in.days; i++) {
        if (l->n_hol == l->cap_hol) {
            l->cap_hol = l->cap_hol ? 2 * l->cap_hol : 32;
            l->hol = rb_realloc(l->hol, l->cap_hol * sizeof(*l->hol));
        }
        l->hol[l->n_hol] = (struct hol_in){day + i, hours, date,
                                           name && name->type == RB_NODE_SCALAR ? name->scalar
                                                                                 : NULL,
                                           l->n_hol};
        l->n_hol++;
    }
}

static void parse_holiday_list(struct loader *l, const struct rb_node *list)
{
    if (!list || rb_node_is_null(list))
        return;
    if (list->type != RB_NODE_SEQ) {
        rb_errors_at(l->e, list,
                     "key \"holidays\": expected a list of { date: ..., name: ... } entries, got "
                     "%s",
                     rb_node_kind(list));
        return;
    }
    for (size_t i = 0; i < list->n; i++)
        parse_holiday(l, list->items[i]);
}

static void load_holiday_file(struct loader *l, const char *path, const struct rb_node *at)
{
    struct rb_doc *doc = rb_doc_load_from(path, at, "holiday_files", l->e);
    if (!doc)
        return;
    l->docs = rb_realloc(l->docs, (l->n_docs + 1) * sizeof(*l->docs));
    l->docs[l->n_docs++] = doc;
    if (!doc->root) {
        rb_errors_add(l->e, "%s:1:1: the file is empty; expected holidays: [{ date: ..., name: "
                            "... }, ...]",
                      doc->file);
        return;
    }
    static const struct rb_conf_field fields[] = {
        {"name", RB_CONF_STRING, 0, 0, 0, 0},
    };
    static const char *const extra[] = {"holidays", NULL};
    char *name = NULL;
    rb_conf_parse(doc->root, "a holiday file", fields, RB_ARRAY_LEN(fields), extra, &name,
                  l->e);
    free(name);
    if (doc->root->type != RB_NODE_MAP)
        return;
    const struct rb_node *list = rb_node_get(doc->root, "holidays");
    if (!list)
        rb_errors_at(l->e, doc->root, "missing required key \"holidays\" in a holiday file");
    parse_holiday_list(l, list);
}

static void holiday_file_found(const char *path, const struct rb_node *at, void *arg)
{
    load_holiday_file(arg, path, at);
}

static void load_holiday_files(struct loader *l, const struct rb_node *v)
{
    rb_conf_glob(v, "holiday_files", "../holidays/pk-*.yaml", l->base_dir, holiday_file_found,
                 l, l->e);
}

static int cmp_hol(const void *a, const void *b)
{
    const struct hol_in *x = a, *y = b;
    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sorts the exceptions, refuses a date listed twice, and moves them into the calendar. */
static void finish_holidays(struct loader *l)
{
    if (l->n_hol == 0)
        return;
    qsort(l->hol, l->n_hol, sizeof(*l->hol), cmp_hol);
    l->c->hol = rb_calloc(l->n_hol, sizeof(*l->c->hol));
    for (size_t i = 0; i < l->n_hol; i++) {
        const struct hol_in *h = &l->hol[i];
        if (l->c->n_hol > 0 && l->c->hol[l->c->n_hol - 1].day == h->day) {
            const struct hol_in *first = &l->hol[i - 1];
            for (size_t j = i; j > 0 && l->hol[j - 1].day == h->day; j--)
                first = &l->hol[j - 1];
            int64_t y;
            int m, d;
            rb_tz_civil_from_days(h->day, &y, &m, &d);
            rb_errors_at(l->e, h->at,
                         "key \"date\": %04lld-%02d-%02d is already a holiday (%s%s%s%s:%d:%d)",
                         (long long)y, m, d, first->name ? "\"" : "",
                         first->name ? first->name : "", first->name ? "\", " : "",
                         first->at->file, first->at->line, first->at->col);
            continue;
        }
        l->c->hol[l->c->n_hol].day = h->day;
        l->c->hol[l->c->n_hol].hours = h->hours;
        l->c->n_hol++;
    }
}

struct calendar_fields {
    char *name, *timezone;
};

struct rb_calendar *rb_cal_from_node(const struct rb_node *map, const char *name,
                                     const char *base_dir, struct rb_errors *errs)
{
    static const struct rb_conf_field fields[] = {
        {"name", RB_CONF_STRING, offsetof(struct calendar_fields, name), 0, 0, 0},
        {"timezone", RB_CONF_STRING, offsetof(struct calendar_fields, timezone),
         RB_CONF_REQUIRED, 0, 0},
    };
    static const char *const extra[] = {"hours", "holiday_files", "holidays", NULL};
    size_t before = errs->n;
    struct calendar_fields in = {NULL, NULL};
    if (rb_conf_parse(map, "a calendar", fields, RB_ARRAY_LEN(fields), extra, &in, errs) !=
            RB_OK &&
        (!map || map->type != RB_NODE_MAP)) {
        rb_conf_free(fields, RB_ARRAY_LEN(fields), &in);
        return NULL;
    }
    struct rb_calendar *c = rb_calloc(1, sizeof(*c));
    c->name = rb_strdup(in.name ? in.name : name ? name : "calendar");
    struct loader l = {.e = errs, .c = c, .base_dir = base_dir ? base_dir : ""};
    if (in.timezone) {
        char *why = NULL;
        c->tz = rb_tz_load(in.timezone, &why);
        if (!c->tz) {
            rb_errors_at(errs, rb_node_get(map, "timezone"), "key \"timezone\": %s", why);
            free(why);
        }
    }
    const struct rb_node *hours = rb_node_get(map, "hours");
    if (!hours)
        rb_errors_at(errs, map, "missing required key \"hours\" in a calendar");
    else
        parse_week(&l, hours);
    parse_holiday_list(&l, rb_node_get(map, "holidays"));
    load_holiday_files(&l, rb_node_get(map, "holiday_files"));
    finish_holidays(&l);
    for (int d = 0; d < 7; d++)
        c->week_seconds += day_seconds(&c->week[d]);
    for (size_t i = 0; i < l.n_docs; i++)
        rb_doc_free(l.docs[i]);
    free(l.docs);
    free(l.hol);
    rb_conf_free(fields, RB_ARRAY_LEN(fields), &in);
    if (errs->n != before) {
        rb_cal_free(c);
        return NULL;
    }
    return c;
}

struct rb_calendar *rb_cal_load_from(const char *path, const struct rb_node *from,
                                     const char *key, struct rb_errors *errs)
{
    struct rb_doc *doc = rb_doc_load_from(path, from, key, errs);
    if (!doc)
        return NULL;
    struct rb_calendar *c = NULL;
    if (!doc->root) {
        rb_errors_add(errs, "%s:1:1: the file is empty; expected a calendar (timezone, hours, "
                            "holidays)",
                      doc->file);
    } else {
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        size_t blen = strlen(base);
        if (blen > 5 && strcmp(base + blen - 5, ".yaml") == 0)
            blen -= 5;
        else if (blen > 4 && strcmp(base + blen - 4, ".yml") == 0)
            blen -= 4;
        char *name = rb_strndup(base, blen);
        char *dir = slash ? rb_strndup(path, (size_t)(slash - path + 1)) : rb_strdup("");
        c = rb_cal_from_node(doc->root, name, dir, errs);
        free(name);
        free(dir);
    }
    rb_doc_free(doc);
    return c;
}

struct rb_calendar *rb_cal_load(const char *path, struct rb_errors *errs)
{
    return rb_cal_load_from(path, NULL, NULL, errs);
}

void rb_cal_free(struct rb_calendar *c)
{
    if (!c)
        return;
    free(c->name);
    rb_tz_free(c->tz);
    free(c->hol);
    free(c);
}

const char *rb_cal_name(const struct rb_calendar *c)
{
    return c->name;
}

const struct rb_tz *rb_cal_tz(const struct rb_calendar *c)
{
    return c->tz;
}

int64_t rb_cal_week_seconds(const struct rb_calendar *c)
{
    return c->week_seconds;
}

size_t rb_cal_holiday_count(const struct rb_calendar *c)
{
    return c->n_hol;
}

/* ==== arithmetic ============================================================================= */

/* Walks local days forward. */
struct walk {
    const struct rb_calendar *c; /* borrowed */
    int64_t day;                 /* the local day being looked at */
    size_t hol;                  /* first holiday on or after day (after walk_hours) */
    int32_t off;                 /* zone offset, valid on the UTC range [from, until) */
    int64_t from, until;
};

static size_t hol_lower_bound(const struct rb_calendar *c, int64_t day)
{
    size_t lo = 0, hi = c->n_hol;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->hol[mid].day < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void walk_zone(struct walk *w, int64_t t)
{
    w->off = rb_tz_span(w->c->tz, t, &w->from, &w->until);
}

/* Starts at the local day of instant t. */
static void walk_init(struct walk *w, const struct rb_calendar *c, int64_t t)
{
    w->c = c;
    walk_zone(w, t);
    w->day = rb_tz_day_of(t + w->off);
    w->hol = hol_lower_bound(c, w->day - 1);
}

/* Whether the cached offset certainly maps local time to instant u: u is inside the cached
 * range and at least a day past its start, so no repeated hour of the last change can be
 * involved. */
static int walk_cached(const struct walk *w, int64_t u)
{
    return u < w->until && (w->from == INT64_MIN || (u >= w->from && u - w->from >= DAY));
}

static int64_t walk_utc(struct walk *w, int64_t local)
{
    int64_t u = local - w->off;
    if (walk_cached(w, u))
        return u;
    u = rb_tz_to_utc(w->c->tz, local);
    walk_zone(w, u);
    return u;
}

static void walk_hol(struct walk *w)
{
    while (w->hol < w->c->n_hol && w->c->hol[w->hol].day < w->day)
        w->hol++;
}

/* The hours of the current day. */
static const struct cal_day *walk_hours(struct walk *w)
{
    walk_hol(w);
    if (w->hol < w->c->n_hol && w->c->hol[w->hol].day == w->day)
        return &w->c->hol[w->hol].hours;
    return &w->c->week[rb_tz_weekday(w->day)];
}

/* How many whole weeks from the current day on (at most max) hold no holiday and no clock
 * change: each of them is worth exactly week_seconds. */
static int64_t walk_free_weeks(struct walk *w, int64_t max)
{
    if (max <= 0)
        return 0;
    int64_t midnight = w->day * DAY;
    walk_utc(w, midnight);
    if (!walk_cached(w, midnight - w->off))
        return 0;
    int64_t k = max;
    if (w->until != INT64_MAX) {
        int64_t kz = (w->until + w->off - midnight) / WEEK;
        if (kz < k)
            k = kz;
    }
    walk_hol(w);
    if (w->hol < w->c->n_hol) {
        int64_t kh = (w->c->hol[w->hol].day - w->day) / 7;
        if (kh < k)
            k = kh;
    }
    return k;
}

/* With no weekly hours, jumps to the next dated exception. Returns 0, or -1 when none is
 * left before last_day. */
static int walk_to_next_exception(struct walk *w, int64_t last_day)
{
    walk_hol(w);
    if (w->hol >= w->c->n_hol || w->c->hol[w->hol].day > last_day)
        return -1;
    w->day = w->c->hol[w->hol].day;
    return 0;
}

int64_t rb_cal_add(const struct rb_calendar *c, int64_t start, int64_t business_seconds)
{
    if (business_seconds <= 0)
        return start;
    if (start >= T_MAX)
        return RB_CAL_NEVER;
    int64_t s = start < T_MIN ? T_MIN : start;
    int64_t left = business_seconds, week = c->week_seconds;
    struct walk w;
    walk_init(&w, c, s);
    int64_t first_day = w.day;
    for (;;) {
        if (w.day > first_day && week > 0) {
            int64_t max = (left - 1) / week, room = (DAY_MAX - w.day) / 7 + 1;
            int64_t k = walk_free_weeks(&w, max < room ? max : room);
            w.day += 7 * k;
            left -= k * week;
        }
        if (w.day > DAY_MAX)
            return RB_CAL_NEVER;
        const struct cal_day *h = walk_hours(&w);
        if (h->n == 0 && week == 0) {
            if (walk_to_next_exception(&w, DAY_MAX) != 0)
                return RB_CAL_NEVER;
            h = walk_hours(&w);
        }
        int64_t base = w.day * DAY;
        for (int i = 0; i < h->n; i++) {
            int64_t u0 = walk_utc(&w, base + h->iv[i].start);
            int64_t u1 = walk_utc(&w, base + h->iv[i].end);
            if (u1 <= s)
                continue;
            if (u0 < s)
                u0 = s;
            if (u1 - u0 >= left)
                return u0 + left;
            left -= u1 - u0;
        }
        w.day++;
    }
}

int64_t rb_cal_between(const struct rb_calendar *c, int64_t a, int64_t b)
{
    a = a < T_MIN ? T_MIN : a > T_MAX ? T_MAX : a;
    b = b < T_MIN ? T_MIN : b > T_MAX ? T_MAX : b;
    if (b <= a)
        return 0;
    int64_t total = 0, week = c->week_seconds;
    struct walk w;
    walk_init(&w, c, a);
    int64_t first_day = w.day;
    int64_t last_day = rb_tz_day_of(b + rb_tz_offset(c->tz, b));
    /* One day either side: a repeated hour across midnight can put working time of a
     * neighbouring local day inside [a, b). */
    w.day--;
    while (w.day <= last_day + 1) {
        if (w.day > first_day && week > 0) {
            int64_t k = walk_free_weeks(&w, (last_day - w.day) / 7);
            w.day += 7 * k;
            total += k * week;
        }
        const struct cal_day *h = walk_hours(&w);
        if (h->n == 0 && week == 0) {
            if (walk_to_next_exception(&w, last_day + 1) != 0)
                break;
            h = walk_hours(&w);
        }
        int64_t base = w.day * DAY;
        for (int i = 0; i < h->n; i++) {
            int64_t u0 = walk_utc(&w, base + h->iv[i].start);
            int64_t u1 = walk_utc(&w, base + h->iv[i].end);
            if (u0 < a)
                u0 = a;
            if (u1 > b)
                u1 = b;
            if (u1 > u0)
                total += u1 - u0;
        }
        w.day++;
    }
    return total;
}

int64_t rb_cal_resume(const struct rb_calendar *c, int64_t deadline_before_pause,
                      int64_t paused_at, int64_t resumed_at)
{
    if (deadline_before_pause <= paused_at)
        return deadline_before_pause;
    if (resumed_at < paused_at)
        resumed_at = paused_at;
    return rb_cal_add(c, resumed_at, rb_cal_between(c, paused_at, deadline_before_pause));
}

int rb_cal_is_open(const struct rb_calendar *c, int64_t t)
{
    return t < INT64_MAX && rb_cal_between(c, t, t + 1) == 1;
}

int64_t rb_cal_next_open(const struct rb_calendar *c, int64_t t)
{
    int64_t r = rb_cal_add(c, t, 1);
    return r == RB_CAL_NEVER ? RB_CAL_NEVER : r - 1;
}
