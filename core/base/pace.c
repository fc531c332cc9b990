/* A pace as a virtual schedule (GCRA). See pace.h.
 *
 * Turn k (k = 0, 1, ...) taken from now starts at max(now, T + k / rate - tau), where
 * T = max(tat, now): after an idle spell the first `burst` turns start at once, and each later
 * one 1 / rate after the one before. */
#include "base/pace.h"

#include <math.h>

void rb_pace_set(struct rb_pace *p, double rate, int burst)
{
    p->rate = rate;
    p->tau = (burst > 1 ? burst - 1 : 0) / rate;
}

double rb_pace_take(struct rb_pace *p, double now)
{
    double t = p->tat > now ? p->tat : now;
    p->tat = t + 1 / p->rate;
    return t - p->tau > now ? t - p->tau : now;
}

double rb_pace_turns(const struct rb_pace *p, double now, double ahead)
{
    double t = p->tat > now ? p->tat : now;
    double n = floor((now + ahead + p->tau - t) * p->rate) + 1;
    return n > 0 ? n : 0;
}
