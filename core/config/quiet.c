/* Quiet hours (quiet.h). */
#include "config/quiet.h"

#include <string.h>

#include "base/common.h"
#include "config/tz.h"

/* "HH:MM" or "HH:MM:SS" at p into *secs; the characters read, or 0 when malformed. */
static size_t hhmm(const char *p, int *secs)
{
    if (!(p[0] >= '0' && p[0] <= '2' && p[1] >= '0' && p[1] <= '9' && p[2] == ':' &&
          p[3] >= '0' && p[3] <= '5' && p[4] >= '0' && p[4] <= '9'))
        return 0;
    int h = (p[0] - '0') * 10 + (p[1] - '0'), m = (p[3] - '0') * 10 + (p[4] - '0'), s = 0;
    size_t n = 5;
    if (p[5] == ':') {
        if (!(p[6] >= '0' && p[6] <= '5' && p[7] >= '0' && p[7] <= '9'))
            return 0;
        s = (p[6] - '0') * 10 + (p[7] - '0');
        n = 8;
    }
    if (h > 23)
        return 0;
    *secs = h * 3600 + m * 60 + s;
    return n;
}

int rb_quiet_parse(const char *spec, struct rb_quiet *q)
{
    struct rb_quiet r;
    size_t a = spec ? hhmm(spec, &r.start) : 0;
    size_t b = a && spec[a] == '-' ? hhmm(spec + a + 1, &r.end) : 0;
    if (!b || spec[a + 1 + b] != '\0')
        return RB_EINVAL;
    *q = r;
    return RB_OK;
}

int64_t rb_quiet_wait(const struct rb_quiet *q, const struct rb_tz *tz, int64_t t)
{
    if (!q || q->start == q->end)
        return 0;
    int64_t local = t + rb_tz_offset(tz, t);
    int64_t day = rb_tz_day_of(local), sod = local - day * 86400;
    int64_t end_local;
    if (q->start < q->end) {
        if (sod < q->start || sod >= q->end)
            return 0;
        end_local = day * 86400 + q->end;
    } else if (sod >= q->start) {
        end_local = (day + 1) * 86400 + q->end;
    } else if (sod < q->end) {
        end_local = day * 86400 + q->end;
    } else {
        return 0;
    }
    int64_t end = rb_tz_to_utc(tz, end_local);
    return end > t ? end - t : 0;
}
