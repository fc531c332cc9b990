/* Citizens' sign-in tokens: looked up by their SHA-256 in citizen_tokens, with a bounded
 * in-memory cache so that a signed-in citizen's requests do not each cost a database query.
 *
 * A cached entry lives at most RB_AUTH_CACHE_TTL seconds (and never past the token's own
 * expiry), so a token revoked by another rabtad process stops working here within that time;
 * revocation through this process (rb_auth_forget) takes effect at once. Invalid tokens are
 * never cached. Look-ups that miss the cache in one turn of the loop share one query. */
#ifndef RB_AUTH_H
#define RB_AUTH_H

#include <stdint.h>
#include "base/phone.h"

struct event_base;
struct rb_db;
struct rb_auth;

#define RB_AUTH_CACHE_TTL 30.0
#define RB_AUTH_CACHE_SLOTS (1u << 16)

struct rb_citizen {
    long long id;
    char phone[RB_PHONE_MAX]; /* "" when the citizen has none */
    char email[256];          /* "" when none */
};

/* c is NULL when the token is unknown, expired or revoked (err NULL), or on a database
 * failure (err set). c is borrowed for the callback. */
typedef void (*rb_auth_fn)(const struct rb_citizen *c, const char *err, void *arg);

/* db and base borrowed. Misses arriving in one turn of base's loop share one query; without a
 * base (tests) each miss is queried at once. */
struct rb_auth *rb_auth_new(struct event_base *base, struct rb_db *db);
void rb_auth_free(struct rb_auth *a);

/* Resolves a bearer token (the text after "Bearer "). fn is called exactly once, possibly
 * before this returns (cache hit). RB_OK, RB_EINVAL (malformed token: fn not called),
 * RB_EAGAIN (database queue full: fn not called). */
int rb_auth_citizen(struct rb_auth *a, const char *token, rb_auth_fn fn, void *arg);
/* Drops a token from the cache (after revoking it in the database). */
void rb_auth_forget(struct rb_auth *a, const char *token);

/* SHA-256 of token as "\\x<64 hex>" (a bytea literal for a query parameter). */
void rb_auth_token_hash(const char *token, char out[2 + 64 + 1]);

#endif
