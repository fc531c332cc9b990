/* The citizens' token cache: a second request with the same token costs no query; a
 * forgotten or expired entry is looked up again; unknown tokens and database failures are
 * not cached; malformed tokens never reach the database. The database is a fake here (this
 * file includes citizen_auth.c and provides rb_db_query_prepared). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/event.h>

#include "../../core/cases/citizen_auth.c"

/* ---- a fake pool: answers from a table, counts queries ---- */
static int queries;
static int fail_next;
static const char *known_hash; /* the one token the "database" knows */

int rb_db_query_prepared(struct rb_db *db, const char *sql, int nparams, const char *const *params,
                         rb_db_fn fn, void *arg)
{
    (void)db;
    (void)sql;
    assert_int_equal(nparams, 1);
    queries++;
    if (fail_next) {
        fail_next = 0;
        fn(NULL, "database unavailable", arg);
        return RB_OK;
    }
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    /* params[0] is the batch: {"\\x<hex>",...}; the known token answers if it is in it. */
    if (known_hash && strstr(params[0], known_hash + 2)) {
        PGresAttDesc cols[5];
        memset(cols, 0, sizeof(cols));
        const char *names[5] = {"id", "phone", "email", "left", "hash"};
        for (int i = 0; i < 5; i++) {
            cols[i].name = (char *)names[i];
            cols[i].format = 0;
            cols[i].typid = 25;
            cols[i].typlen = -1;
        }
        assert_true(PQsetResultAttrs(res, 5, cols));
        const char *vals[5] = {"42", "+923001234567", "", "86400", known_hash + 2};
        for (int i = 0; i < 5; i++)
            assert_true(PQsetvalue(res, 0, i, (char *)vals[i], (int)strlen(vals[i])));
    }
    fn(res, NULL, arg);
    PQclear(res);
    return RB_OK;
}

static int calls;
static long long seen_id;
static const char *seen_err;

static void got(const struct rb_citizen *c, const char *err, void *arg)
{
    (void)arg;
    calls++;
    seen_id = c ? c->id : -1;
    seen_err = err;
    if (c)
        assert_string_equal(c->phone, "+923001234567");
}

static const char TOKEN[] = "tok-0123456789abcdef";
static char hash[2 + 64 + 1];

static int setup(void **state)
{
    *state = rb_auth_new(NULL, NULL);
    queries = calls = 0;
    fail_next = 0;
    rb_auth_token_hash(TOKEN, hash);
    known_hash = hash;
    return 0;
}

static int teardown(void **state)
{
    rb_auth_free(*state);
    return 0;
}

static void second_lookup_is_served_from_the_cache(void **state)
{
    struct rb_auth *a = *state;
    assert_int_equal(rb_auth_citizen(a, TOKEN, got, NULL), RB_OK);
    assert_int_equal(rb_auth_citizen(a, TOKEN, got, NULL), RB_OK);
    assert_int_equal(calls, 2);
    assert_int_equal(seen_id, 42);
    assert_int_equal(queries, 1);
}

static void forgotten_token_is_looked_up_again(void **state)
{
    struct rb_auth *a = *state;
    rb_auth_citizen(a, TOKEN, got, NULL);
    rb_auth_forget(a, TOKEN);
    known_hash = NULL; /* revoked in the database meanwhile */
    rb_auth_citizen(a, TOKEN, got, NULL);
    assert_int_equal(queries, 2);
    assert_int_equal(seen_id, -1);
    assert_null(seen_err);
}

static void expired_entry_is_looked_up_again(void **state)
{
    struct rb_auth *a = *state;
    rb_auth_citizen(a, TOKEN, got, NULL);
    unsigned char key[RB_TOKEN_KEY_BYTES];
    struct rb_citizen c;
    rb_token_cache_key(TOKEN, key);
    assert_true(rb_token_cache_get(a->cache, key, rb_now_mono(), &c));
    rb_token_cache_put(a->cache, key, &c, rb_now_mono() - 1); /* as if the TTL passed */
    rb_auth_citizen(a, TOKEN, got, NULL);
    assert_int_equal(queries, 2);
}

static void unknown_tokens_and_failures_are_not_cached(void **state)
{
    struct rb_auth *a = *state;
    rb_auth_citizen(a, "someone-elses-token-xyz", got, NULL);
    rb_auth_citizen(a, "someone-elses-token-xyz", got, NULL);
    assert_int_equal(queries, 2);
    assert_int_equal(seen_id, -1);
    fail_next = 1;
    rb_auth_citizen(a, TOKEN, got, NULL);
    assert_string_equal(seen_err, "database unavailable");
    rb_auth_citizen(a, TOKEN, got, NULL);
    assert_int_equal(seen_id, 42);
    assert_int_equal(queries, 4);
}

static void malformed_tokens_never_reach_the_database(void **state)
{
    struct rb_auth *a = *state;
    const char *bad[] = {"", "short", "has space in the token", "tab\there-0123456789",
                         "\xd8\xb1\xd8\xb4\xd9\x88\xd8\xaa-0123456789abcdef"};
    for (size_t i = 0; i < RB_ARRAY_LEN(bad); i++)
        assert_int_equal(rb_auth_citizen(a, bad[i], got, NULL), RB_EINVAL);
    char longer[300];
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    assert_int_equal(rb_auth_citizen(a, longer, got, NULL), RB_EINVAL);
    assert_int_equal(queries, 0);
    assert_int_equal(calls, 0);
}

static void a_full_neighbourhood_evicts_instead_of_growing(void **state)
{
    struct rb_auth *a = *state;
    /* Many distinct cached tokens: the table never grows and lookups still work. */
    char tok[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(tok, sizeof(tok), "token-number-%08d", i);
        rb_auth_token_hash(tok, hash);
        known_hash = hash;
        rb_auth_citizen(a, tok, got, NULL);
        assert_int_equal(seen_id, 42);
    }
    assert_int_equal(queries, 5000);
    rb_auth_citizen(a, tok, got, NULL); /* the last one is cached */
    assert_int_equal(queries, 5000);
}

static void misses_in_one_turn_of_the_loop_share_one_query(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct rb_auth *a = rb_auth_new(base, NULL);
    rb_auth_citizen(a, TOKEN, got, NULL);
    rb_auth_citizen(a, "another-token-0123456789", got, NULL);
    rb_auth_citizen(a, TOKEN, got, NULL);
    assert_int_equal(queries, 0); /* nothing until the loop turns */
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(queries, 1);
    assert_int_equal(calls, 3);
    rb_auth_citizen(a, TOKEN, got, NULL); /* now cached */
    assert_int_equal(queries, 1);
    assert_int_equal(seen_id, 42);
    rb_auth_free(a);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(second_lookup_is_served_from_the_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(forgotten_token_is_looked_up_again, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_entry_is_looked_up_again, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_tokens_and_failures_are_not_cached, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(malformed_tokens_never_reach_the_database, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_full_neighbourhood_evicts_instead_of_growing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(misses_in_one_turn_of_the_loop_share_one_query, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
