/* Citizens' sign-in tokens with a bounded cache. See auth.h. */
#include "cases/citizen_auth.h"

#include <event2/event.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/token_cache.h"
#include "db/db.h"

struct lookup {
    struct lookup *next;
    struct rb_auth *a;
    unsigned char key[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    rb_auth_fn fn;
    void *arg;
};

struct rb_auth {
    struct rb_db *db;       /* borrowed */
    struct rb_token_cache *cache; /* owned: token -> citizen */
    struct event *flush_ev; /* owned; NULL without a loop (then one query per look-up) */
    struct lookup *pending; /* misses waiting for the next batched query */
    size_t n_pending;
};

#define BATCH_MAX 500

/* Every miss of one turn of the loop in one query. */
static const char token_sql[] =
    "SELECT c.id, coalesce(c.phone, ''), coalesce(c.email, ''), "
    "  extract(epoch from t.expires_at - now()), encode(t.token_hash, 'hex') "
    "FROM citizen_tokens t JOIN citizens c ON c.id = t.citizen_id "
    "WHERE t.token_hash = ANY($1::bytea[]) AND t.expires_at > now() AND t.revoked_at IS NULL";

static void flush(struct rb_auth *a);

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush(arg);
}

struct rb_auth *rb_auth_new(struct event_base *base, struct rb_db *db)
{
    struct rb_auth *a = rb_calloc(1, sizeof(*a));
    a->db = db;
    a->cache = rb_token_cache_new(RB_AUTH_CACHE_SLOTS, sizeof(struct rb_citizen));
    if (base && !(a->flush_ev = event_new(base, -1, 0, on_flush, a)))
        rb_fatal("out of memory");
    return a;
}

void rb_auth_free(struct rb_auth *a)
{
    if (!a)
        return;
    while (a->pending) {
        struct lookup *l = a->pending;
        a->pending = l->next;
        l->fn(NULL, "shutting down", l->arg);
        free(l);
    }
    if (a->flush_ev)
        event_free(a->flush_ev);
    rb_token_cache_free(a->cache);
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

void rb_auth_token_hash(const char *token, char out[2 + 64 + 1])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)token, strlen(token));
    out[0] = '\\';
    out[1] = 'x';
    sodium_bin2hex(out + 2, 65, d, sizeof(d));
}

static void looked_up(PGresult *res, const char *err, void *arg)
{
    struct lookup *l = arg, *next;
    int rows = err ? 0 : PQntuples(res);
    double now = rb_now_mono();
    for (; l; l = next) {
        next = l->next;
        int row = -1;
        for (int i = 0; i < rows && row < 0; i++)
            if (strcmp(PQgetvalue(res, i, 4), l->hex) == 0)
                row = i;
        if (err || row < 0) {
            l->fn(NULL, err, l->arg);
        } else {
            struct rb_citizen c;
            memset(&c, 0, sizeof(c));
            c.id = atoll(PQgetvalue(res, row, 0));
            snprintf(c.phone, sizeof(c.phone), "%s", PQgetvalue(res, row, 1));
            snprintf(c.email, sizeof(c.email), "%s", PQgetvalue(res, row, 2));
            double left = atof(PQgetvalue(res, row, 3));
            rb_token_cache_put(l->a->cache, l->key, &c,
                  now + (left < RB_AUTH_CACHE_TTL ? left : RB_AUTH_CACHE_TTL));
            l->fn(&c, NULL, l->arg);
        }
        free(l);
    }
}

/* Sends the waiting misses, BATCH_MAX per query: {"\\x<hex>",...}. */
static void flush(struct rb_auth *a)
{
    while (a->pending) {
        struct lookup *batch = NULL;
        size_t n = 0;
        char *arr = rb_malloc(BATCH_MAX * (2 * crypto_hash_sha256_BYTES + 8) + 3);
        size_t pos = 0;
        arr[pos++] = '{';
        while (a->pending && n < BATCH_MAX) {
            struct lookup *l = a->pending;
            a->pending = l->next;
            l->next = batch;
            batch = l;
            pos += (size_t)sprintf(arr + pos, "%s\"\\\\x%s\"", n++ ? "," : "", l->hex);
        }
        arr[pos++] = '}';
        arr[pos] = '\0';
        a->n_pending -= n;
        const char *params[1] = {arr};
        if (rb_db_query_prepared(a->db, token_sql, 1, params, looked_up, batch) != RB_OK)
            looked_up(NULL, "the database is overloaded; try again shortly", batch);
        free(arr);
    }
}

int rb_auth_citizen(struct rb_auth *a, const char *token, rb_auth_fn fn, void *arg)
{
    if (!valid_token(token))
        return RB_EINVAL;
    unsigned char key[RB_TOKEN_KEY_BYTES];
    rb_token_cache_key(token, key);
    struct rb_citizen c;
    if (rb_token_cache_get(a->cache, key, rb_now_mono(), &c)) { /* a copy: fn may evict */
        fn(&c, NULL, arg);
        return RB_OK;
    }
    if (a->n_pending >= 50000)
        return RB_EAGAIN;
    struct lookup *l = rb_calloc(1, sizeof(*l));
    l->a = a;
    memcpy(l->key, key, sizeof(key));
    sodium_bin2hex(l->hex, sizeof(l->hex), key, sizeof(key));
    l->fn = fn;
    l->arg = arg;
    l->next = a->pending;
    a->pending = l;
    if (a->n_pending++ == 0) {
        if (a->flush_ev)
            event_active(a->flush_ev, EV_TIMEOUT, 0); /* at the end of this turn of the loop */
        else
            flush(a);
    }
    return RB_OK;
}

void rb_auth_forget(struct rb_auth *a, const char *token)
{
    if (!token)
        return;
    unsigned char key[RB_TOKEN_KEY_BYTES];
    rb_token_cache_key(token, key);
    rb_token_cache_del(a->cache, key);
}
