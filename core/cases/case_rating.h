/* A citizen's rating of their own case, whichever door it comes through (the app's
 * POST /api/v1/cases/:tracking/rating, an SMS reply of 1 or 2 to a resolve notice). */
#ifndef RB_CASE_RATING_H
#define RB_CASE_RATING_H

#include "db/db.h"

/* One statement ($1 tracking  $2 citizen  $3 rating 1-5  $4 satisfied  $5 comment or NULL
 * $6 the reopen window in seconds or NULL: none).
 * Satisfied: rate → closed. Unsatisfied: reopen → reopened, escalation_level + 1 and an
 * escalation.requested event for the SLA work. Feedback cannot be reopened (case_state.c), so
 * an unsatisfied rating of feedback closes it like a satisfied one, keeping the rating.
 * A case resolved (or answered, or closed) longer ago than the reopen window can be neither
 * rated nor reopened. Answers one row: kind, status before, status after (NULL: refused),
 * escalation level, and when the refusal is for lateness the window's end (ISO 8601 UTC,
 * else NULL); no row: not the citizen's case. */
extern const char rb_case_rating_sql[];

/* Runs rb_case_rating_sql; reopen_window <= 0: no window. Returns as rb_db_query. */
int rb_case_rate(struct rb_db *db, const char *tracking, long long citizen_id, int rating,
                 int satisfied, const char *comment, double reopen_window, rb_db_fn fn,
                 void *arg);

#endif
