/* Time zones without global state: a reader for the compiled zone files in
 * /usr/share/zoneinfo (TZif versions 1 to 4, RFC 8536) and for POSIX TZ strings, answering
 * "what is the UTC offset at this instant" and "which instant is this local wall-clock time".
 *
 * Nothing here touches the TZ environment variable, tzset() or localtime(): every zone is a
 * value of its own, so calendars in Asia/Karachi and Europe/London can be used side by side
 * from any thread once loaded (a struct rb_tz is read-only after loading).
 *
 * Instants are int64 seconds since the epoch in UTC. "Local" times are the wall-clock reading
 * written as seconds since 1970-01-01T00:00 local, i.e. utc + offset. Offsets are seconds east
 * of Greenwich (Karachi +18000, New York -18000 in winter).
 *
 * After the last transition in the file, the POSIX TZ string of the footer (v2+) rules, e.g.
 * "GMT0BST,M3.5.0/1,M10.5.0": its Mm.w.d, Jn and n dates and times from -167 to 167 hours
 * (v3) are supported, and the rule is expanded into transitions for 400 years past the
 * file's data; beyond that, it repeats with the 400-year Gregorian cycle, so every instant
 * has an answer without any per-call allocation. Zone files with leap seconds ("right/...")
 * are refused.
 *
 * Local to UTC: a wall-clock time that does not exist (the spring-forward gap) moves forward
 * to the instant the clocks changed (02:30 on a night when 02:00 jumps to 03:00 gives the
 * instant of 03:00); one that happens twice (the fall-back overlap) takes the first
 * occurrence. The mapping is monotonic: later local times never give earlier instants. */
#ifndef RB_TZ_H
#define RB_TZ_H

#include <stddef.h>
#include <stdint.h>

#define RB_TZ_DIR "/usr/share/zoneinfo"

/* Instants and local times are clamped to +-2^60 s (about 36 billion years). */
#define RB_TZ_LIMIT (INT64_C(1) << 60)

struct rb_tz;

/* Loads zone name ("Asia/Karachi") from RB_TZ_DIR. Returns a new zone (free with
 * rb_tz_free), or NULL with *why set to a new sentence (caller frees): an invalid name
 * (absolute, "..", odd characters), no such zone, or a malformed file. */
struct rb_tz *rb_tz_load(const char *name, char **why);
/* Same from a file path; name is what rb_tz_name reports. */
struct rb_tz *rb_tz_load_file(const char *path, const char *name, char **why);
/* Same from TZif bytes in memory (borrowed; not kept). */
struct rb_tz *rb_tz_parse(const char *name, const unsigned char *data, size_t len, char **why);
/* A zone from a POSIX TZ string alone, e.g. "PKT-5" or "EST5EDT,M3.2.0,M11.1.0". The string
 * is also its name. NULL with *why on a malformed string. */
struct rb_tz *rb_tz_from_posix(const char *spec, char **why);
void rb_tz_free(struct rb_tz *tz);

/* The name given at loading. Borrowed; valid while tz lives. */
const char *rb_tz_name(const struct rb_tz *tz);

/* UTC offset in seconds east at instant t. */
int32_t rb_tz_offset(const struct rb_tz *tz, int64_t t);
/* Same, and the UTC range [*from, *until) over which that offset holds unchanged (INT64_MIN /
 * INT64_MAX when unbounded). Either pointer may be NULL. */
int32_t rb_tz_span(const struct rb_tz *tz, int64_t t, int64_t *from, int64_t *until);
/* Local wall-clock time (as seconds) to the instant, with the gap and overlap rules above. */
int64_t rb_tz_to_utc(const struct rb_tz *tz, int64_t local);

/* Proleptic Gregorian calendar helpers (any int64 day count in range of the clamp). */
int64_t rb_tz_days_from_civil(int64_t y, int m, int d);
void rb_tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* Floor division by 86400: the day number of a local time. */
int64_t rb_tz_day_of(int64_t local);
/* 0 = Monday ... 6 = Sunday for a day number (day 0 = 1970-01-01, a Thursday). */
int rb_tz_weekday(int64_t day);

#endif
