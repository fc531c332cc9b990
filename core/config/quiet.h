/* Quiet hours: "21:00-08:00" in a time zone (messages: in rabta.yaml, outreach policies). A
 * message that is not urgent and falls due inside them waits for their end (its job's run_at),
 * never a sleep. Parsed when the configuration loads; the wait is computed where a message is
 * queued (core/messages/message.c). */
#ifndef RB_QUIET_H
#define RB_QUIET_H

#include <stdint.h>

struct rb_tz;

struct rb_quiet {
    int start, end; /* seconds after local midnight; start == end: no quiet hours */
};

/* "HH:MM-HH:MM", or with seconds "HH:MM:SS-HH:MM:SS" (24-hour; the window may cross
 * midnight). RB_OK or RB_EINVAL. */
int rb_quiet_parse(const char *spec, struct rb_quiet *q);
/* Seconds from instant t (UTC) until the quiet hours around it end, in zone tz; 0 when t is
 * outside them. */
int64_t rb_quiet_wait(const struct rb_quiet *q, const struct rb_tz *tz, int64_t t);

#endif
