/* A bounded cache keyed by the SHA-256 of a secret (a sign-in token), holding a fixed-size
 * value until a deadline. Open addressing with a short probe; when a neighbourhood is full the
 * entry closest to expiry is evicted, so memory never grows. Used for citizens' (core/cases/citizen_auth.c)
 * and staff's (core/staff/staff_account.c) tokens. Memory is wiped when freed. */
#ifndef RB_TOKEN_CACHE_H
#define RB_TOKEN_CACHE_H

#include <stddef.h>

#define RB_TOKEN_KEY_BYTES 32

struct rb_token_cache;

/* slots: a power of two; value_size: bytes copied in and out. */
struct rb_token_cache *rb_token_cache_new(size_t slots, size_t value_size);
void rb_token_cache_free(struct rb_token_cache *c);
/* Copies the value of key into out and returns 1 while it lives (now < until); else 0. */
int rb_token_cache_get(const struct rb_token_cache *c, const unsigned char *key, double now,
                       void *out);
void rb_token_cache_put(struct rb_token_cache *c, const unsigned char *key, const void *value,
                        double until);
void rb_token_cache_del(struct rb_token_cache *c, const unsigned char *key);
/* Drops every entry whose value match() says 1 for (a whole pass over the slots). */
void rb_token_cache_del_if(struct rb_token_cache *c, int (*match)(const void *value, void *arg),
                           void *arg);
/* The key of a token: its SHA-256. */
void rb_token_cache_key(const char *token, unsigned char key[RB_TOKEN_KEY_BYTES]);

#endif
