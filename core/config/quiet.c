/* Quiet hours (quiet.h). */
#include "config/quiet.h"

#include <string.h>

#include "base/common.h"
#include "config/tz.h"

static int hhmm(const char *p, int *secs)
{
    if (!(p[0] >= '0' && p[0] <= '2' && p[1] >= '0' && p[1] <= '9' && p[2] == ':' &&
          p[3] >= '0' && p[3] <= '5' && p[4] >= '0' && p[4] <= '9'))
        return RB_EINVAL;
    int h = (p[0] - '0') * 10 + (p[1] - '0'), m = (p[3] - '0') * 10 + (p[4] - '0');
    if (h > 23)
        return RB_EINVAL;
    *secs = h * 3600 + m * 60;
    return RB_OK;
}

int rb_quiet_parse(const char *spec, struct rb_quiet *q)
{
    if (!spec || strlen(spec) != 11 || spec[5] != '-')
        return RB_EINVAL;
    struct rb_quiet r;
    if (hhmm(spec, &r.start) != RB_OK || hhmm(spec + 6, &r.end) != RB_OK)
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
