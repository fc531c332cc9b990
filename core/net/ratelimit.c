/* Per-client rate limits as GCRA schedules in an open-addressing table (see ratelimit.h). */
#include "net/ratelimit.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

#define MIN_SLOTS 1024u
#define EPSILON 1e-9 /* seconds */

struct slot {
    double tat;             /* theoretical arrival time; 0: the slot is free */
    unsigned rule;
    unsigned char key[RB_ADDR_KEY_LEN];
};

struct rb_ratelimit {
    struct slot *slots; /* owned; n_slots of them, a power of two */
    size_t n_slots, used, max_slots;
    unsigned char hkey[crypto_shorthash_KEYBYTES];
};

struct rb_ratelimit *rb_ratelimit_new(size_t max_entries)
{
    if (sodium_init() < 0)
        rb_fatal("libsodium could not be initialised");
    struct rb_ratelimit *rl = rb_calloc(1, sizeof(*rl));
    size_t max = MIN_SLOTS;
    while (max / 2 < max_entries && max < ((size_t)1 << 30))
        max *= 2; /* the table is kept at most half full */
    rl->max_slots = max;
    rl->n_slots = MIN_SLOTS;
    rl->slots = rb_calloc(rl->n_slots, sizeof(struct slot));
    randombytes_buf(rl->hkey, sizeof(rl->hkey));
    return rl;
}

void rb_ratelimit_free(struct rb_ratelimit *rl)
{
    if (!rl)
        return;
    free(rl->slots);
    free(rl);
}

size_t rb_ratelimit_size(const struct rb_ratelimit *rl)
{
    return rl ? rl->used : 0;
}

static size_t slot_hash(const struct rb_ratelimit *rl, unsigned rule,
                        const unsigned char key[RB_ADDR_KEY_LEN])
{
    unsigned char in[RB_ADDR_KEY_LEN + 4], out[crypto_shorthash_BYTES];
    memcpy(in, key, RB_ADDR_KEY_LEN);
    memcpy(in + RB_ADDR_KEY_LEN, &rule, 4);
    crypto_shorthash(out, in, sizeof(in), rl->hkey);
    uint64_t h;
    memcpy(&h, out, sizeof(h));
    return (size_t)h;
}

static struct slot *find(struct rb_ratelimit *rl, unsigned rule,
                         const unsigned char key[RB_ADDR_KEY_LEN], int *found)
{
    size_t mask = rl->n_slots - 1;
    for (size_t i = slot_hash(rl, rule, key) & mask;; i = (i + 1) & mask) {
        struct slot *s = &rl->slots[i];
        if (s->tat == 0) {
            *found = 0;
            return s;
        }
        if (s->rule == rule && memcmp(s->key, key, RB_ADDR_KEY_LEN) == 0) {
            *found = 1;
            return s;
        }
    }
}

/* Rebuilds the table into n_slots slots, keeping only the entries still ahead of now. */
static void rebuild(struct rb_ratelimit *rl, size_t n_slots, double now)
{
    struct slot *old = rl->slots;
    size_t n_old = rl->n_slots;
    rl->slots = rb_calloc(n_slots, sizeof(struct slot));
    rl->n_slots = n_slots;
    rl->used = 0;
    for (size_t i = 0; i < n_old; i++) {
        if (old[i].tat <= now)
            continue;
        int found;
        struct slot *s = find(rl, old[i].rule, old[i].key, &found);
        *s = old[i];
        rl->used++;
    }
    free(old);
}

static double check(struct rb_ratelimit *rl, unsigned rule, double per_second, int burst,
                    const unsigned char key[RB_ADDR_KEY_LEN], double now, int take)
{
    if (!rl || per_second <= 0)
        return 0;
    if (burst < 1)
        burst = 1;
    if (now <= 0)
        now = 1e-9; /* tat 0 marks a free slot */
    int found;
    struct slot *s = find(rl, rule, key, &found);
    if (!take) {
        double start = found && s->tat > now ? s->tat : now;
        double wait = start + 1.0 / per_second - now - (double)burst / per_second;
        return wait > EPSILON ? wait : 0;
    }
    if (!found && (rl->used + 1) * 2 > rl->n_slots) {
        /* Sweep first; grow only if the live entries still fill half the table. */
        size_t live = 0;
        for (size_t i = 0; i < rl->n_slots; i++)
            live += rl->slots[i].tat > now;
        size_t n = rl->n_slots;
        while ((live + 1) * 2 > n && n < rl->max_slots)
            n *= 2;
        if ((live + 1) * 2 > n)
            return 1.0; /* full of live clients: refuse newcomers (fail closed) */
        rebuild(rl, n, now);
        s = find(rl, rule, key, &found);
    }
    double interval = 1.0 / per_second;
    double start = found && s->tat > now ? s->tat : now;
    double next = start + interval;
    double wait = next - now - (double)burst * interval;
    if (wait > EPSILON) /* not a rounding error of the sums above */
        return wait;
    if (!found) {
        s->rule = rule;
        memcpy(s->key, key, RB_ADDR_KEY_LEN);
        rl->used++;
    }
    s->tat = next;
    return 0;
}

double rb_ratelimit_take(struct rb_ratelimit *rl, unsigned rule, double per_second, int burst,
                         const unsigned char key[RB_ADDR_KEY_LEN], double now)
{
    return check(rl, rule, per_second, burst, key, now, 1);
}

double rb_ratelimit_peek(struct rb_ratelimit *rl, unsigned rule, double per_second, int burst,
                         const unsigned char key[RB_ADDR_KEY_LEN], double now)
{
    return check(rl, rule, per_second, burst, key, now, 0);
}
