/* A pace: at most `rate` events a second, in bursts of at most `burst`, as a virtual schedule
 * (the generic cell rate algorithm, GCRA: one number of state, no bucket to refill). Used by
 * the jobs runner for paced kinds (rb_jobs_pace), such as an SMS gateway's messages a second.
 * Times are seconds on any one clock (the runner uses the monotonic clock). */
#ifndef RB_PACE_H
#define RB_PACE_H

struct rb_pace {
    double rate; /* events a second; > 0 */
    double tau;  /* (burst - 1) / rate: how far ahead of the schedule a burst may run */
    double tat;  /* the "theoretical arrival time": when the next event would go with no burst */
};

/* Sets (or changes) rate and burst; the schedule so far is kept. */
void rb_pace_set(struct rb_pace *p, double rate, int burst);
/* Takes the next turn: the time it starts (never before now). */
double rb_pace_take(struct rb_pace *p, double now);
/* How many turns, taken one after another from now, would start by now + ahead. */
double rb_pace_turns(const struct rb_pace *p, double now, double ahead);

#endif
