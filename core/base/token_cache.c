/* Bounded cache of sign-in tokens. See token_cache.h. */
#include "base/token_cache.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

#define PROBE 8 /* slots tried per key before evicting */

struct rb_token_cache {
    size_t slots, value_size, stride;
    unsigned char *mem; /* owned: slots x stride */
};

/* A slot: [double until][key][value]; until 0 means empty. */
#define SLOT(c, i) ((c)->mem + ((i) & ((c)->slots - 1)) * (c)->stride)
#define UNTIL(p) (*(double *)(void *)(p))
#define KEY(p) ((p) + sizeof(double))
#define VALUE(p) ((p) + sizeof(double) + RB_TOKEN_KEY_BYTES)

struct rb_token_cache *rb_token_cache_new(size_t slots, size_t value_size)
{
    rb_assert(slots && (slots & (slots - 1)) == 0);
    struct rb_token_cache *c = rb_calloc(1, sizeof(*c));
    c->slots = slots;
    c->value_size = value_size;
    c->stride = (sizeof(double) + RB_TOKEN_KEY_BYTES + value_size + 7) & ~(size_t)7;
    c->mem = rb_calloc(slots, c->stride);
    return c;
}

void rb_token_cache_free(struct rb_token_cache *c)
{
    if (!c)
        return;
    sodium_memzero(c->mem, c->slots * c->stride);
    free(c->mem);
    free(c);
}

static size_t home(const unsigned char *key)
{
    size_t h;
    memcpy(&h, key, sizeof(h)); /* the key is a hash already */
    return h;
}

static unsigned char *find(const struct rb_token_cache *c, const unsigned char *key, double now)
{
    size_t i = home(key);
    for (size_t p = 0; p < PROBE; p++) {
        unsigned char *s = SLOT(c, i + p);
        if (UNTIL(s) > now && sodium_memcmp(KEY(s), key, RB_TOKEN_KEY_BYTES) == 0)
            return s;
    }
    return NULL;
}

int rb_token_cache_get(const struct rb_token_cache *c, const unsigned char *key, double now,
                       void *out)
{
    const unsigned char *s = find(c, key, now);
    if (!s)
        return 0;
    memcpy(out, VALUE(s), c->value_size);
    return 1;
}

void rb_token_cache_put(struct rb_token_cache *c, const unsigned char *key, const void *value,
                        double until)
{
    size_t i = home(key);
    unsigned char *victim = NULL;
    for (size_t p = 0; p < PROBE; p++) {
        unsigned char *s = SLOT(c, i + p);
        if (UNTIL(s) == 0 || sodium_memcmp(KEY(s), key, RB_TOKEN_KEY_BYTES) == 0) {
            victim = s;
            break;
        }
        if (!victim || UNTIL(s) < UNTIL(victim))
            victim = s; /* the one closest to expiry */
    }
    memcpy(KEY(victim), key, RB_TOKEN_KEY_BYTES);
    memcpy(VALUE(victim), value, c->value_size);
    UNTIL(victim) = until;
}

void rb_token_cache_del(struct rb_token_cache *c, const unsigned char *key)
{
    unsigned char *s = find(c, key, 0);
    if (s)
        UNTIL(s) = 0;
}

void rb_token_cache_del_if(struct rb_token_cache *c, int (*match)(const void *value, void *arg),
                           void *arg)
{
    for (size_t i = 0; i < c->slots; i++) {
        unsigned char *s = SLOT(c, i);
        if (UNTIL(s) != 0 && match(VALUE(s), arg))
            UNTIL(s) = 0;
    }
}

void rb_token_cache_key(const char *token, unsigned char key[RB_TOKEN_KEY_BYTES])
{
    crypto_hash_sha256(key, (const unsigned char *)token, strlen(token));
}
