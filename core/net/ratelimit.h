/* Per-client rate limits: token buckets kept as GCRA schedules (one time per client and rule,
 * no refill timer), in one open-addressing table per process. A key is a client's limit key
 * (base/addr.h: IPv4 address or IPv6 /64) and a rule number. An entry whose schedule has
 * caught up with the clock holds no state and is dropped when the table is swept, so the
 * table holds only clients that are currently limited or bursting. Hash: SipHash with a
 * random key, so that chosen addresses cannot pile into one chain.
 *
 * When the table reaches its capacity with clients that all still hold state (a flood from
 * very many addresses), a new client is refused as if limited: these limits guard guessing
 * and flooding, so they fail closed. */
#ifndef RB_RATELIMIT_H
#define RB_RATELIMIT_H

#include <stddef.h>

#include "base/addr.h"

struct rb_ratelimit;

/* max_entries: the most clients the table keeps (rounded up to a power of two). */
struct rb_ratelimit *rb_ratelimit_new(size_t max_entries);
void rb_ratelimit_free(struct rb_ratelimit *rl);

/* Takes one request for key under rule (any small number naming the rule), allowing on
 * average per_second requests a second and bursts of burst (>= 1). Returns 0 when allowed,
 * or the seconds until a request would be allowed (> 0). now: monotonic seconds. */
double rb_ratelimit_take(struct rb_ratelimit *rl, unsigned rule, double per_second, int burst,
                         const unsigned char key[RB_ADDR_KEY_LEN], double now);
/* The same without taking: what rb_ratelimit_take would answer now. */
double rb_ratelimit_peek(struct rb_ratelimit *rl, unsigned rule, double per_second, int burst,
                         const unsigned char key[RB_ADDR_KEY_LEN], double now);

/* Entries currently held (for /metrics and tests). */
size_t rb_ratelimit_size(const struct rb_ratelimit *rl);

#endif
