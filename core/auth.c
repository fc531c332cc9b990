/* Citizens' sign-in tokens with a bounded cache. See auth.h. */
#include "auth.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

#define PROBE 8 /* slots tried per key before evicting */

struct slot {
    unsigned char key[crypto_hash_sha256_BYTES];
    double until; /* monotonic; 0: empty */
    struct rb_citizen c;
};

struct rb_auth {
    struct rb_db *db;   /* borrowed */
    struct slot *slots; /* owned; RB_AUTH_CACHE_SLOTS */
};

static const char token_sql[] =
    "SELECT c.id, coalesce(c.phone, ''), coalesce(c.email, ''), "
    "  extract(epoch from t.expires_at - now()) "
    "FROM citizen_tokens t JOIN citizens c ON c.id = t.citizen_id "
    "WHERE t.token_hash = $1::bytea AND t.expires_at > now() AND t.revoked_at IS NULL";

struct rb_auth *rb_auth_new(struct rb_db *db)
{
    struct rb_auth *a = rb_calloc(1, sizeof(*a));
    a->db = db;
    a->slots = rb_calloc(RB_AUTH_CACHE_SLOTS, sizeof(*a->slots));
    return a;
}

void rb_auth_free(struct rb_auth *a)
{
    if (!a)
        return;
    sodium_memzero(a->slots, RB_AUTH_CACHE_SLOTS * sizeof(*a->slots));
    free(a->slots);
    free(a);
}

static int valid_token(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    if (n < 16 || n > 200)
        return 0;
    for (; *t; t++)
        if (*t <= ' ' || *t > '~')
            return 0;
    return 1;
}

static size_t slot_of(const unsigned char key[crypto_hash_sha256_BYTES])
{
    size_t h;
    memcpy(&h, key, sizeof(h)); /* the key is a hash already */
    return h & (RB_AUTH_CACHE_SLOTS - 1);
}

static struct slot *find(struct rb_auth *a, const unsigned char *key, double now)
{
    size_t i = slot_of(key);
    for (int p = 0; p < PROBE; p++) {
        struct slot *s = &a->slots[(i + (size_t)p) & (RB_AUTH_CACHE_SLOTS - 1)];
        if (s->until > now && sodium_memcmp(s->key, key, sizeof(s->key)) == 0)
            return s;
    }
    return NULL;
}

static void store(struct rb_auth *a, const unsigned char *key, const struct rb_citizen *c,
                  double until)
{
    size_t i = slot_of(key);
    struct slot *victim = NULL;
    for (int p = 0; p < PROBE; p++) {
        struct slot *s = &a->slots[(i + (size_t)p) & (RB_AUTH_CACHE_SLOTS - 1)];
        if (s->until == 0 || sodium_memcmp(s->key, key, sizeof(s->key)) == 0) {
            victim = s;
            break;
        }
        if (!victim || s->until < victim->until)
            victim = s; /* the one closest to expiry */
    }
    memcpy(victim->key, key, sizeof(victim->key));
    victim->c = *c;
    victim->until = until;
}

void rb_auth_token_hash(const char *token, char out[2 + 64 + 1])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)token, strlen(token));
    out[0] = '\\';
    out[1] = 'x';
    sodium_bin2hex(out + 2, 65, d, sizeof(d));
}

struct lookup {
    struct rb_auth *a;
    unsigned char key[crypto_hash_sha256_BYTES];
    rb_auth_fn fn;
    void *arg;
};

static void looked_up(PGresult *res, const char *err, void *arg)
{
    struct lookup *l = arg;
    if (err) {
        l->fn(NULL, err, l->arg);
    } else if (PQntuples(res) != 1) {
        l->fn(NULL, NULL, l->arg);
    } else {
        struct rb_citizen c;
        memset(&c, 0, sizeof(c));
        c.id = atoll(PQgetvalue(res, 0, 0));
        snprintf(c.phone, sizeof(c.phone), "%s", PQgetvalue(res, 0, 1));
        snprintf(c.email, sizeof(c.email), "%s", PQgetvalue(res, 0, 2));
        double left = atof(PQgetvalue(res, 0, 3));
        double now = rb_now_mono();
        store(l->a, l->key, &c, now + (left < RB_AUTH_CACHE_TTL ? left : RB_AUTH_CACHE_TTL));
        l->fn(&c, NULL, l->arg);
    }
    free(l);
}

int rb_auth_citizen(struct rb_auth *a, const char *token, rb_auth_fn fn, void *arg)
{
    if (!valid_token(token))
        return RB_EINVAL;
    unsigned char key[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(key, (const unsigned char *)token, strlen(token));
    const struct slot *hit = find(a, key, rb_now_mono());
    if (hit) {
        struct rb_citizen c = hit->c; /* a copy: fn may evict the slot */
        fn(&c, NULL, arg);
        return RB_OK;
    }
    struct lookup *l = rb_malloc(sizeof(*l));
    l->a = a;
    memcpy(l->key, key, sizeof(key));
    l->fn = fn;
    l->arg = arg;
    char hash[2 + 64 + 1];
    rb_auth_token_hash(token, hash);
    const char *params[1] = {hash};
    int rc = rb_db_query(a->db, token_sql, 1, params, looked_up, l);
    if (rc != RB_OK)
        free(l);
    return rc;
}

void rb_auth_forget(struct rb_auth *a, const char *token)
{
    if (!token)
        return;
    unsigned char key[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(key, (const unsigned char *)token, strlen(token));
    struct slot *s = find(a, key, rb_now_mono());
    if (s)
        s->until = 0;
}
