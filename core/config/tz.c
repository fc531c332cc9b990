/* TZif reader and POSIX TZ rules. See tz.h for the model; RFC 8536 for the file format.
 *
 * A zone is one sorted table of the instants at which the UTC offset changes and the offset
 * from each on. Transitions that change only the abbreviation or the DST flag are dropped:
 * business arithmetic cares about offsets alone. The footer's rule is expanded into the same
 * table for 400 years past the last transition of the file ("horizon"); past the horizon an
 * instant is moved back by whole 400-year cycles (146097 days, after which Gregorian dates
 * and weekdays repeat exactly) and looked up there. */
#include "config/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"

#define DAY 86400
#define CYCLE_DAYS 146097 /* days in 400 Gregorian years */
#define CYCLE ((int64_t)CYCLE_DAYS * DAY)
#define TZIF_MAX_BYTES (1024 * 1024)
#define RULE_YEARS 401

struct rb_tz {
    char *name;      /* owned */
    int32_t initial; /* offset before the first transition */
    int64_t *at;     /* owned; n instants, strictly ascending */
    int32_t *off;    /* owned; off[i] holds from at[i] until at[i + 1] */
    size_t n, cap;
    int periodic;    /* the footer has DST rules: instants past horizon wrap by CYCLE */
    int64_t horizon;
};

/* ---- calendar arithmetic (Howard Hinnant's civil algorithms) -------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t rb_tz_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * CYCLE_DAYS + doe - 719468;
}

void rb_tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    days += 719468;
    int64_t era = floor_div(days, CYCLE_DAYS);
    int64_t doe = days - era * CYCLE_DAYS;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int64_t rb_tz_day_of(int64_t local)
{
    return floor_div(local, DAY);
}

int rb_tz_weekday(int64_t day)
{
    int64_t w = (day + 3) % 7; /* 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int n[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : n[m - 1];
}

static int64_t clamp(int64_t t)
{
    return t < -RB_TZ_LIMIT ? -RB_TZ_LIMIT : t > RB_TZ_LIMIT ? RB_TZ_LIMIT : t;
}

/* ---- the transition table ------------------------------------------------------------------- */

static struct rb_tz *tz_new(const char *name)
{
    struct rb_tz *tz = rb_calloc(1, sizeof(*tz));
    tz->name = rb_strdup(name);
    return tz;
}

void rb_tz_free(struct rb_tz *tz)
{
    if (!tz)
        return;
    free(tz->name);
    free(tz->at);
    free(tz->off);
    free(tz);
}

/* Appends a change to offset off at instant at, unless it changes nothing. at must not be
 * before the last one (an equal instant replaces it). */
static void tz_push(struct rb_tz *tz, int64_t at, int32_t off)
{
    if (tz->n > 0 && at == tz->at[tz->n - 1]) {
        tz->n--;
    }
    int32_t cur = tz->n ? tz->off[tz->n - 1] : tz->initial;
    if (off == cur)
        return;
    if (tz->n == tz->cap) {
        tz->cap = tz->cap ? tz->cap * 2 : 64;
        tz->at = rb_realloc(tz->at, tz->cap * sizeof(*tz->at));
        tz->off = rb_realloc(tz->off, tz->cap * sizeof(*tz->off));
    }
    tz->at[tz->n] = at;
    tz->off[tz->n] = off;
    tz->n++;
}

/* Number of transitions at or before t. */
static size_t count_upto(const struct rb_tz *tz, int64_t t)
{
    size_t lo = 0, hi = tz->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->at[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* For t (instant or local time) past the horizon of a periodic zone: the multiple of CYCLE
 * to take away so that t lands in [horizon - CYCLE, horizon). */
static int64_t cycle_shift(const struct rb_tz *tz, int64_t t)
{
    if (!tz->periodic || t < tz->horizon)
        return 0;
    return ((t - tz->horizon) / CYCLE + 1) * CYCLE;
}

int32_t rb_tz_span(const struct rb_tz *tz, int64_t t, int64_t *from, int64_t *until)
{
    t = clamp(t);
    int64_t shift = cycle_shift(tz, t);
    size_t i = count_upto(tz, t - shift);
    if (from)
        *from = i ? tz->at[i - 1] + shift : INT64_MIN;
    if (until)
        *until = i < tz->n ? tz->at[i] + shift : INT64_MAX;
    return i ? tz->off[i - 1] : tz->initial;
}

int32_t rb_tz_offset(const struct rb_tz *tz, int64_t t)
{
    return rb_tz_span(tz, t, NULL, NULL);
}

int64_t rb_tz_to_utc(const struct rb_tz *tz, int64_t local)
{
    local = clamp(local);
    int64_t shift = cycle_shift(tz, local);
    int64_t l = local - shift;
    /* The first transition whose wall-clock reading just before it is after l. Those
     * readings ascend with the instants for any zone whose transitions are further apart
     * than its offsets jump. */
    size_t lo = 0, hi = tz->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int32_t before = mid ? tz->off[mid - 1] : tz->initial;
        if (l < tz->at[mid] + before)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (lo == 0)
        return l - tz->initial + shift;
    size_t prev = lo - 1;
    if (l >= tz->at[prev] + tz->off[prev])
        return l - tz->off[prev] + shift;
    return tz->at[prev] + shift; /* in the gap: the instant the clocks jumped */
}

const char *rb_tz_name(const struct rb_tz *tz)
{
    return tz->name;
}

/* ---- POSIX TZ strings ----------------------------------------------------------------------- */

struct rule_date {
    char kind; /* 'J': Julian day 1..365 without Feb 29; 'D': day 0..365; 'M': month.week.day */
    int n, m, w, d;
    int32_t time; /* seconds after local midnight, -167h..167h */
};

struct posix {
    int32_t std_off, dst_off; /* seconds east */
    int has_dst;
    struct rule_date start, end;
};

static const char *parse_abbr(const char *p)
{
    if (*p == '<') {
        const char *q = ++p;
        while (*q && *q != '>') {
            if (!((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
                  (*q >= '0' && *q <= '9') || *q == '+' || *q == '-'))
                return NULL;
            q++;
        }
        return *q == '>' && q - p >= 3 ? q + 1 : NULL;
    }
    const char *q = p;
    while ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z'))
        q++;
    return q - p >= 3 ? q : NULL;
}

static const char *parse_num(const char *p, int lo, int hi, int *out)
{
    if (*p < '0' || *p > '9')
        return NULL;
    int v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        if (v > hi)
            return NULL;
    }
    if (v < lo)
        return NULL;
    *out = v;
    return p;
}

/* [+-]hh[:mm[:ss]] with hh up to max_hours; the value in seconds, signed. */
static const char *parse_hms(const char *p, int max_hours, int32_t *out)
{
    int sign = 1, h, m = 0, s = 0;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    if (!(p = parse_num(p, 0, max_hours, &h)))
        return NULL;
    if (*p == ':') {
        if (!(p = parse_num(p + 1, 0, 59, &m)))
            return NULL;
        if (*p == ':' && !(p = parse_num(p + 1, 0, 59, &s)))
            return NULL;
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return p;
}

static const char *parse_rule_date(const char *p, struct rule_date *r)
{
    if (*p == 'J') {
        r->kind = 'J';
        p = parse_num(p + 1, 1, 365, &r->n);
    } else if (*p == 'M') {
        r->kind = 'M';
        if (!(p = parse_num(p + 1, 1, 12, &r->m)) || *p != '.')
            return NULL;
        if (!(p = parse_num(p + 1, 1, 5, &r->w)) || *p != '.')
            return NULL;
        p = parse_num(p + 1, 0, 6, &r->d);
    } else {
        r->kind = 'D';
        p = parse_num(p, 0, 365, &r->n);
    }
    if (!p)
        return NULL;
    r->time = 2 * 3600;
    if (*p == '/')
        p = parse_hms(p + 1, 167, &r->time);
    return p;
}

/* Parses spec into *out; returns 0, or -1 when malformed. */
static int parse_posix(const char *spec, struct posix *out)
{
    const char *p = parse_abbr(spec);
    int32_t v;
    if (!p || !(p = parse_hms(p, 24, &v)))
        return -1;
    memset(out, 0, sizeof(*out));
    out->std_off = -v;
    if (!*p)
        return 0;
    if (!(p = parse_abbr(p)))
        return -1;
    out->has_dst = 1;
    out->dst_off = out->std_off + 3600;
    if (*p && *p != ',') {
        if (!(p = parse_hms(p, 24, &v)))
            return -1;
        out->dst_off = -v;
    }
    const char *rules = *p ? p : ",M3.2.0,M11.1.0"; /* POSIX leaves it open; US rules, as tzcode */
    p = rules;
    if (*p != ',' || !(p = parse_rule_date(p + 1, &out->start)))
        return -1;
    if (*p != ',' || !(p = parse_rule_date(p + 1, &out->end)))
        return -1;
    return *p ? -1 : 0;
}

/* Local (wall-clock, as seconds) moment of rule date r in year y. */
static int64_t rule_local(const struct rule_date *r, int64_t y)
{
    int64_t day;
    if (r->kind == 'J') {
        day = rb_tz_days_from_civil(y, 1, 1) + r->n - 1 + (is_leap(y) && r->n >= 60);
    } else if (r->kind == 'D') {
        day = rb_tz_days_from_civil(y, 1, 1) + r->n;
    } else {
        int64_t first = rb_tz_days_from_civil(y, r->m, 1);
        int wd1 = (rb_tz_weekday(first) + 1) % 7; /* 0 = Sunday, as POSIX counts */
        int mday = 1 + (r->d - wd1 + 7) % 7 + 7 * (r->w - 1);
        while (mday > month_days(y, r->m))
            mday -= 7;
        day = first + mday - 1;
    }
    return day * DAY + r->time;
}

/* Appends the rule's transitions for the years [y0, y1], none at or before after. */
static void expand_rule(struct rb_tz *tz, const struct posix *px, int64_t y0, int64_t y1,
                        int64_t after)
{
    for (int64_t y = y0; y <= y1; y++) {
        int64_t s = rule_local(&px->start, y) - px->std_off; /* DST begins in standard time */
        int64_t e = rule_local(&px->end, y) - px->dst_off;   /* and ends in daylight time */
        int64_t t1 = s < e ? s : e, t2 = s < e ? e : s;
        int32_t o1 = s < e ? px->dst_off : px->std_off, o2 = s < e ? px->std_off : px->dst_off;
        if (t1 > after && (tz->n == 0 || t1 >= tz->at[tz->n - 1]))
            tz_push(tz, t1, o1);
        if (t2 > after && (tz->n == 0 || t2 >= tz->at[tz->n - 1]))
            tz_push(tz, t2, o2);
    }
}

/* Continues tz after its last transition (or from the start when it has none) with the
 * rule in spec. Returns 0 or -1 for a malformed spec. */
static int apply_footer(struct rb_tz *tz, const char *spec)
{
    struct posix px;
    if (parse_posix(spec, &px) != 0)
        return -1;
    if (tz->n == 0)
        tz->initial = px.std_off;
    if (!px.has_dst) {
        if (tz->n)
            tz_push(tz, tz->at[tz->n - 1] + 1, px.std_off);
        return 0;
    }
    int64_t last = tz->n ? tz->at[tz->n - 1] : INT64_MIN;
    int64_t y0 = 1900, m_y;
    int m, d;
    if (tz->n) {
        rb_tz_civil_from_days(floor_div(clamp(last), DAY), &m_y, &m, &d);
        y0 = m_y < 1800 ? 1800 : m_y > 3000 ? 3000 : m_y;
    }
    /* DST all year round ("EST5EDT,0/0,J365/25"): the rule never switches back. */
    int64_t s = rule_local(&px.start, y0 + 1) - px.std_off;
    int64_t e = rule_local(&px.end, y0 + 1) - px.dst_off;
    if (s <= e && e - s >= (int64_t)(is_leap(y0 + 1) ? 366 : 365) * DAY) {
        if (tz->n)
            tz_push(tz, last + 1, px.dst_off);
        else
            tz->initial = px.dst_off;
        return 0;
    }
    int64_t y_end = y0 + RULE_YEARS;
    expand_rule(tz, &px, y0, y_end + 1, last);
    tz->periodic = 1;
    tz->horizon = rb_tz_days_from_civil(y_end, 1, 1) * DAY;
    return 0;
}

struct rb_tz *rb_tz_from_posix(const char *spec, char **why)
{
    struct rb_tz *tz = tz_new(spec);
    if (apply_footer(tz, spec) != 0) {
        *why = rb_sprintf("\"%s\" is not a POSIX TZ string such as PKT-5 or "
                          "GMT0BST,M3.5.0/1,M10.5.0",
                          spec);
        rb_tz_free(tz);
        return NULL;
    }
    return tz;
}

/* ---- TZif ----------------------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_header {
    int version; /* 1, 2, 3, 4 */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

/* Reads the 44-byte header at p; returns 0, or -1 with why. */
static int read_header(const unsigned char *p, size_t len, struct tzif_header *h, char **why)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0) {
        *why = rb_strdup("not a TZif zone file (no \"TZif\" header)");
        return -1;
    }
    h->version = p[4] == 0 ? 1 : (p[4] >= '2' && p[4] <= '9') ? p[4] - '0' : -1;
    if (h->version < 0) {
        *why = rb_sprintf("unknown TZif version byte 0x%02x", p[4]);
        return -1;
    }
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    if (h->typecnt > 256 || h->timecnt > 100000 || h->charcnt > 100000 ||
        h->leapcnt > 100000 || h->isutcnt > 256 || h->isstdcnt > 256) {
        *why = rb_strdup("malformed TZif header counts");
        return -1;
    }
    return 0;
}

static size_t block_size(const struct tzif_header *h, size_t timesize)
{
    return h->timecnt * timesize + h->timecnt + h->typecnt * 6 + h->charcnt +
           h->leapcnt * (timesize + 4) + h->isstdcnt + h->isutcnt;
}

/* Fills tz from the data block at p (after its header). Returns 0, or -1 with why. */
static int read_block(struct rb_tz *tz, const unsigned char *p, const struct tzif_header *h,
                      size_t timesize, char **why)
{
    if (h->typecnt == 0 || h->charcnt == 0 || (h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
        (h->isstdcnt != 0 && h->isstdcnt != h->typecnt)) {
        *why = rb_strdup("malformed TZif header counts");
        return -1;
    }
    if (h->leapcnt) {
        *why = rb_strdup("zone files with leap seconds (right/...) are not supported");
        return -1;
    }
    const unsigned char *times = p, *idx = p + h->timecnt * timesize;
    const unsigned char *types = idx + h->timecnt;
    for (uint32_t i = 0; i < h->typecnt; i++) {
        int32_t off = (int32_t)be32(types + 6 * i);
        if (off < -25 * 3600 || off > 26 * 3600 || types[6 * i + 4] > 1 ||
            types[6 * i + 5] >= h->charcnt) {
            *why = rb_sprintf("malformed local time type %u", i);
            return -1;
        }
    }
    tz->initial = (int32_t)be32(types);
    int64_t prev = INT64_MIN;
    for (uint32_t i = 0; i < h->timecnt; i++) {
        int64_t at = timesize == 4 ? (int64_t)(int32_t)be32(times + 4 * i)
                                   : be64(times + 8 * i);
        if (idx[i] >= h->typecnt) {
            *why = rb_sprintf("transition %u names local time type %u of %u", i, idx[i],
                              h->typecnt);
            return -1;
        }
        if (i > 0 && at <= prev) {
            *why = rb_sprintf("transition times are not ascending at transition %u", i);
            return -1;
        }
        prev = at;
        tz_push(tz, clamp(at), (int32_t)be32(types + 6 * idx[i]));
    }
    return 0;
}

struct rb_tz *rb_tz_parse(const char *name, const unsigned char *data, size_t len, char **why)
{
    struct tzif_header h;
    if (read_header(data, len, &h, why) != 0)
        return NULL;
    size_t off = 44 + block_size(&h, 4);
    size_t timesize = 4;
    const unsigned char *block = data + 44;
    if (off > len) {
        *why = rb_strdup("the TZif file is truncated");
        return NULL;
    }
    if (h.version >= 2) {
        if (read_header(data + off, len - off, &h, why) != 0)
            return NULL;
        block = data + off + 44;
        timesize = 8;
        off += 44 + block_size(&h, 8);
        if (off > len) {
            *why = rb_strdup("the TZif file is truncated");
            return NULL;
        }
    }
    struct rb_tz *tz = tz_new(name);
    if (read_block(tz, block, &h, timesize, why) != 0) {
        rb_tz_free(tz);
        return NULL;
    }
    if (h.version >= 2) {
        /* Footer: "\n" TZ-string "\n"; an empty string means no rule after the data. */
        const unsigned char *f = data + off, *end = data + len;
        const unsigned char *nl = f < end && *f == '\n' ? memchr(f + 1, '\n', (size_t)(end - f - 1))
                                                        : NULL;
        if (!nl) {
            *why = rb_strdup("the TZif footer (a POSIX TZ string between newlines) is missing");
            rb_tz_free(tz);
            return NULL;
        }
        if (nl > f + 1) {
            char *spec = rb_strndup((const char *)f + 1, (size_t)(nl - f - 1));
            int rc = apply_footer(tz, spec);
            if (rc != 0)
                *why = rb_sprintf("the TZif footer \"%s\" is not a POSIX TZ string I can read",
                                  spec);
            free(spec);
            if (rc != 0) {
                rb_tz_free(tz);
                return NULL;
            }
        }
    }
    return tz;
}

struct rb_tz *rb_tz_load_file(const char *path, const char *name, char **why)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = rb_sprintf("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > TZIF_MAX_BYTES) {
        *why = rb_sprintf("%s is not a zone file (not a regular file under 1 MiB)", path);
        close(fd);
        return NULL;
    }
    size_t len = 0, cap = (size_t)st.st_size + 1;
    unsigned char *buf = rb_malloc(cap);
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *why = rb_sprintf("cannot read %s: %s", path, strerror(errno));
            close(fd);
            free(buf);
            return NULL;
        }
        if (r == 0 || (len += (size_t)r) == cap)
            break;
    }
    close(fd);
    struct rb_tz *tz = NULL;
    if (len == cap) {
        *why = rb_sprintf("%s changed while it was read", path);
    } else {
        char *inner = NULL;
        tz = rb_tz_parse(name, buf, len, &inner);
        if (!tz) {
            *why = rb_sprintf("%s: %s", path, inner);
            free(inner);
        }
    }
    free(buf);
    return tz;
}

static int valid_zone_name(const char *name)
{
    if (!name[0] || name[0] == '/' || strlen(name) > 255)
        return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '-' || c == '+' || c == '.'))
            return 0;
        if (c == '.' && (p == name || p[-1] == '/'))
            return 0; /* no "..", no hidden files */
        if (c == '/' && p[1] == '/')
            return 0;
    }
    return name[strlen(name) - 1] != '/';
}

struct rb_tz *rb_tz_load(const char *name, char **why)
{
    if (!valid_zone_name(name)) {
        *why = rb_sprintf("\"%s\" is not a time zone name such as Asia/Karachi", name);
        return NULL;
    }
    char *path = rb_sprintf("%s/%s", RB_TZ_DIR, name);
    struct stat st;
    struct rb_tz *tz = NULL;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        *why = rb_sprintf("unknown time zone \"%s\" (no file %s; is tzdata installed?)", name,
                          path);
    else
        tz = rb_tz_load_file(path, name, why);
    free(path);
    return tz;
}
