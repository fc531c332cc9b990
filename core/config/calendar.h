/* Business calendars: working hours in a time zone, public holidays, and the arithmetic SLA
 * deadlines need ("8 working hours after this complaint arrived", "how much working time is
 * left", "pause while we wait for the citizen, then resume").
 *
 * A calendar is
 *   - a time zone (IANA name such as Asia/Karachi or Europe/London, read by core/config/tz.c without
 *     touching the process's TZ),
 *   - weekly working hours: for each weekday a list of intervals of local wall-clock time,
 *     e.g. Mon-Thu 09:00-13:00 and 14:00-17:00 (a lunch break), Friday 09:00-12:30 and
 *     14:30-17:00 (Friday prayers), Saturday 09:00-13:00, Sunday closed,
 *   - dated exceptions ("holidays"): a date closed all day, or with its own intervals (a half
 *     day, or a working Sunday), optionally several days in a row.
 *
 * YAML (config/calendars/punjab.yaml; docs/sla.md has the full reference):
 *
 *   name: punjab                   # optional; defaults to the file name without .yaml
 *   timezone: Asia/Karachi
 *   hours:
 *     mon-thu: [09:00-13:00, 14:00-17:00]   # a weekday or a range; a list of HH:MM-HH:MM
 *     fri: [09:00-12:30, 14:30-17:00]
 *     sat: 09:00-13:00
 *     sun: closed                           # absent weekdays are closed too
 *   holiday_files: ../holidays/pk-*.yaml     # glob or list, relative to this file
 *   holidays:                               # and/or listed here
 *     - { date: 2026-03-23, name: Pakistan Day }
 *     - { date: 2026-03-20, name: Eid ul-Fitr, days: 3 }
 *     - { date: 2026-12-24, name: Christmas Eve, hours: [09:00-12:00] }
 *
 * A holiday file is a map with `holidays:` (the same list) and an optional `name:`.
 * Errors name file:line:col and the key: a bad time ("25:00"), an interval that ends before
 * it starts, overlapping intervals, an unknown weekday, a weekday given twice, an unknown time
 * zone, a malformed or impossible date, the same date listed twice (the message names where it
 * was first listed).
 *
 * Intervals are [start, end) in local time, end may be 24:00; a shift past midnight is
 * written as two intervals on two days. On days when clocks change, an interval lasts the real
 * time between its ends (09:00-17:00 is still 8 hours in London; 00:00-24:00 is 23 or 25);
 * an end inside a skipped hour counts from the moment clocks jumped, an end inside a repeated
 * hour is its first occurrence (tz.h).
 *
 * Arithmetic. All instants are int64 seconds since the epoch, UTC; durations are seconds of
 * working time.
 *
 *   rb_cal_add(c, start, n): the earliest instant t >= start such that n seconds of working
 *     time lie in [start, t). A start outside working hours therefore counts from the next
 *     opening; a deadline that is used up exactly at a closing time is that closing time
 *     (never the next opening); one that ends at a break's start is the break's start.
 *     n <= 0 gives start.
 *   rb_cal_between(c, a, b): working seconds in [a, b); 0 when b <= a.
 *     Together: rb_cal_between(c, s, rb_cal_add(c, s, n)) == n.
 *   rb_cal_resume(c, deadline, paused_at, resumed_at): the SLA clock stops while a case is
 *     paused and keeps the working time it had left:
 *       rb_cal_add(c, resumed_at, rb_cal_between(c, paused_at, deadline)).
 *     A deadline already passed when the pause began stays where it was (pausing does not
 *     cure a breach).
 *
 * Cost: one pass over days, not minutes; runs of whole weeks with no holiday and no
 * clock change are skipped in one step, so a duration of years costs a few hundred steps
 * (mostly the holidays and clock changes on the way). A calendar with no working time at all
 * from some point on gives RB_CAL_NEVER; so does anything past the year 9999.
 *
 * A calendar is read-only after loading and may be shared by threads. */
#ifndef RB_CALENDAR_H
#define RB_CALENDAR_H

#include <stdint.h>
#include "config/yaml_doc.h"

#define RB_CAL_NEVER INT64_MAX
#define RB_CAL_MAX_INTERVALS 8 /* per day */

struct rb_calendar;
struct rb_tz;

/* Loads the calendar file at path (holiday_files resolve against its directory). Returns a
 * new calendar (free with rb_cal_free) or NULL after adding every error found. */
struct rb_calendar *rb_cal_load(const char *path, struct rb_errors *errs);
/* Same, for a path another file names at node from under key: a file that cannot be read is
 * reported there ("sla.yaml:3:11: key \"calendar\": cannot open ..."). */
struct rb_calendar *rb_cal_load_from(const char *path, const struct rb_node *from,
                                     const char *key, struct rb_errors *errs);
/* A calendar from a map already parsed (an inline block); base_dir resolves holiday_files
 * ("" for the current directory). name is used when the map has no name key. Nothing of map
 * is kept. */
struct rb_calendar *rb_cal_from_node(const struct rb_node *map, const char *name,
                                     const char *base_dir, struct rb_errors *errs);
void rb_cal_free(struct rb_calendar *c);

/* Borrowed; valid while c lives. */
const char *rb_cal_name(const struct rb_calendar *c);
const struct rb_tz *rb_cal_tz(const struct rb_calendar *c);
/* Working seconds in an ordinary week (no holidays, no clock change). */
int64_t rb_cal_week_seconds(const struct rb_calendar *c);
/* Number of dated exceptions (each day of a multi-day holiday counts). */
size_t rb_cal_holiday_count(const struct rb_calendar *c);

int64_t rb_cal_add(const struct rb_calendar *c, int64_t start, int64_t business_seconds);
int64_t rb_cal_between(const struct rb_calendar *c, int64_t a, int64_t b);
int64_t rb_cal_resume(const struct rb_calendar *c, int64_t deadline_before_pause,
                      int64_t paused_at, int64_t resumed_at);
/* 1 when t lies inside working hours, else 0. */
int rb_cal_is_open(const struct rb_calendar *c, int64_t t);
/* The first instant >= t inside working hours (t itself when open), or RB_CAL_NEVER. */
int64_t rb_cal_next_open(const struct rb_calendar *c, int64_t t);

#endif
