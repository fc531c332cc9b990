/* Staff scope and roles (core/staff/staff_account.c): who sees and changes which case, table-driven; the
 * named-official rule; district lists; roles by name; the password pool answering on the
 * loop (a real event base, no database). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <event2/event.h>

#include "config/config.h"
#include "staff/staff_account.h"

static struct rb_staff_user user(enum rb_staff_role role, const char *dept, const char *districts,
                                 const char *username, const char *display)
{
    struct rb_staff_user u;
    memset(&u, 0, sizeof(u));
    u.role = role;
    snprintf(u.department, sizeof(u.department), "%s", dept ? dept : "");
    snprintf(u.username, sizeof(u.username), "%s", username);
    snprintf(u.display_name, sizeof(u.display_name), "%s", display);
    assert_int_equal(rb_staff_set_districts(&u, districts), RB_OK);
    return u;
}

static void test_scope_matrix(void **state)
{
    (void)state;
    struct rb_staff_user off_rev = user(RB_STAFF_OFFICER, "revenue", "", "ali", "Ali Khan");
    struct rb_staff_user off_pol = user(RB_STAFF_OFFICER, "police", "", "bilal", "Bilal");
    struct rb_staff_user sup_rev = user(RB_STAFF_SUPERVISOR, "revenue", "", "sara", "Sara");
    struct rb_staff_user sup_lhr =
        user(RB_STAFF_SUPERVISOR, "revenue", "lahore,kasur", "zara", "Zara");
    struct rb_staff_user ovs = user(RB_STAFF_OVERSIGHT, NULL, "", "omar", "Omar");
    struct rb_staff_user adm = user(RB_STAFF_ADMIN, NULL, "", "root", "Admin");
    const struct {
        const char *name;
        const struct rb_staff_user *u;
        const char *dept, *district, *official;
        int write, want;
    } rows[] = {
        {"officer reads own department", &off_rev, "revenue", "lahore", NULL, 0, RB_OK},
        {"officer changes own department", &off_rev, "revenue", "lahore", NULL, 1, RB_OK},
        {"officer of another department reads", &off_pol, "revenue", "lahore", NULL, 0,
         RB_ENOTFOUND},
        {"officer of another department writes", &off_pol, "revenue", "lahore", NULL, 1,
         RB_ENOTFOUND},
        {"officer, case not routed yet", &off_rev, NULL, "lahore", NULL, 0, RB_ENOTFOUND},
        {"supervisor own department", &sup_rev, "revenue", "multan", NULL, 1, RB_OK},
        {"supervisor other department", &sup_rev, "police", "multan", NULL, 0, RB_ENOTFOUND},
        {"district supervisor, own district", &sup_lhr, "revenue", "kasur", NULL, 1, RB_OK},
        {"district supervisor, other district", &sup_lhr, "revenue", "multan", NULL, 0,
         RB_ENOTFOUND},
        {"district supervisor, no district", &sup_lhr, "revenue", NULL, NULL, 0, RB_ENOTFOUND},
        {"oversight reads anything", &ovs, "police", "multan", NULL, 0, RB_OK},
        {"oversight cannot change", &ovs, "police", "multan", NULL, 1, RB_ESTAFF_DENIED},
        {"admin reads", &adm, "police", NULL, NULL, 0, RB_OK},
        {"admin changes", &adm, "police", NULL, "Ali Khan", 1, RB_OK},
        {"case names the officer (display name)", &off_rev, "revenue", "lahore", "ali  KHAN", 0,
         RB_ENOTFOUND},
        {"case names the officer (username)", &off_rev, "revenue", "lahore", " Ali ", 0,
         RB_ENOTFOUND},
        {"case names someone else", &off_rev, "revenue", "lahore", "Ali Khan Niazi", 0, RB_OK},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int got = rb_staff_scope(rows[i].u, rows[i].dept, rows[i].district, rows[i].official,
                                 rows[i].write);
        if (got != rows[i].want)
            fail_msg("%s: got %d, want %d", rows[i].name, got, rows[i].want);
    }
}

static void test_role_rules(void **state)
{
    (void)state;
    struct rb_staff_user off = user(RB_STAFF_OFFICER, "revenue", "", "ali", "Ali");
    struct rb_staff_user sup = user(RB_STAFF_SUPERVISOR, "revenue", "", "sara", "Sara");
    struct rb_staff_user adm = user(RB_STAFF_ADMIN, NULL, "", "root", "");
    struct rb_staff_user ovs = user(RB_STAFF_OVERSIGHT, NULL, "", "omar", "");
    assert_int_equal(rb_staff_may_assign(&off, "ali"), RB_OK);            /* takes it */
    assert_int_equal(rb_staff_may_assign(&off, "sara"), RB_ESTAFF_DENIED); /* hands it on */
    assert_int_equal(rb_staff_may_assign(&sup, "ali"), RB_OK);
    assert_int_equal(rb_staff_may_assign(&adm, "ali"), RB_OK);
    assert_int_equal(rb_staff_may_assign(&ovs, "omar"), RB_ESTAFF_DENIED);
    assert_int_equal(rb_staff_may_act_on_official(&off), RB_ESTAFF_DENIED);
    assert_int_equal(rb_staff_may_act_on_official(&sup), RB_OK);
    assert_int_equal(rb_staff_may_act_on_official(&adm), RB_OK);
    assert_int_equal(rb_staff_may_act_on_official(&ovs), RB_ESTAFF_DENIED);
}

static void test_names_match(void **state)
{
    (void)state;
    assert_true(rb_staff_names_match("Ali Khan", "ali khan", "ak"));
    assert_true(rb_staff_names_match("  ALI\t khan ", "Ali Khan", "ak"));
    assert_true(rb_staff_names_match("ak", "Ali Khan", "ak"));
    assert_false(rb_staff_names_match("Ali", "Ali Khan", "ak"));
    assert_false(rb_staff_names_match("Ali Khanzada", "Ali Khan", "ak"));
    assert_false(rb_staff_names_match(NULL, "Ali Khan", "ak"));
    assert_false(rb_staff_names_match("   ", "", "ak"));
    assert_false(rb_staff_names_match("x", "", ""));
}

static void test_districts_and_roles(void **state)
{
    (void)state;
    struct rb_staff_user u;
    memset(&u, 0, sizeof(u));
    assert_int_equal(rb_staff_set_districts(&u, "lahore,,kasur"), RB_OK);
    assert_int_equal(u.n_districts, 2);
    assert_string_equal(u.districts[1], "kasur");
    assert_int_equal(rb_staff_set_districts(&u, ""), RB_OK);
    assert_int_equal(u.n_districts, 0);
    char many[400] = "";
    for (int i = 0; i <= RB_STAFF_MAX_DISTRICTS; i++)
        strcat(many, "d,");
    assert_int_equal(rb_staff_set_districts(&u, many), RB_EINVAL);

    enum rb_staff_role r = RB_STAFF_ADMIN;
    assert_int_equal(rb_staff_role_from_str("supervisor", &r), RB_OK);
    assert_int_equal(r, RB_STAFF_SUPERVISOR);
    assert_int_equal(rb_staff_role_from_str("root", &r), RB_EINVAL);
    assert_int_equal(r, RB_STAFF_SUPERVISOR);
    assert_string_equal(rb_staff_role_str(RB_STAFF_OVERSIGHT), "oversight");
    assert_null(rb_staff_role_str((enum rb_staff_role)9));

    char t1[RB_STAFF_TOKEN_LEN + 1], t2[RB_STAFF_TOKEN_LEN + 1];
    rb_staff_token_new(t1);
    rb_staff_token_new(t2);
    assert_int_equal(strlen(t1), RB_STAFF_TOKEN_LEN);
    assert_string_not_equal(t1, t2);
}

/* ---- the password pool: results come back on the loop ---- */
struct verdicts {
    int n, ok[4];
    struct event_base *base;
};

static void got(int ok, void *arg)
{
    struct verdicts *v = arg;
    v->ok[v->n++] = ok;
    if (v->n == 3)
        event_base_loopbreak(v->base);
}

static void test_password_pool(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct rb_staff *s = rb_staff_new(base, NULL);
    assert_non_null(s);
    char hash[crypto_pwhash_STRBYTES];
    assert_int_equal(rb_staff_hash_password("correct horse", hash), RB_OK);
    struct verdicts v = {.base = base};
    /* one at a time, so the order of the answers is known */
    assert_int_equal(rb_staff_verify(s, hash, "correct horse", got, &v), RB_OK);
    assert_int_equal(v.n, 0); /* never from inside the call */
    assert_int_equal(rb_staff_pending(s), 1);
    while (v.n < 1)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(rb_staff_verify(s, hash, "wrong horse", got, &v), RB_OK);
    while (v.n < 2)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(rb_staff_verify(s, NULL, "correct horse", got, &v), RB_OK); /* dummy */
    while (v.n < 3)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(v.ok[0], 1);
    assert_int_equal(v.ok[1], 0);
    assert_int_equal(v.ok[2], 0);
    assert_int_equal(rb_staff_pending(s), 0);

    /* a full queue is refused at once (the API answers 503) */
    int accepted = 0, refused = 0;
    for (int i = 0; i < RB_STAFF_PW_QUEUE + 5; i++) {
        int rc = rb_staff_verify(s, hash, "x", got, &v);
        accepted += rc == RB_OK;
        refused += rc == RB_EAGAIN;
    }
    assert_int_equal(accepted, RB_STAFF_PW_QUEUE);
    assert_int_equal(refused, 5);
    rb_staff_free(s); /* drops the queued ones without calling back */
    event_base_free(base);
}

/* ---- a new account's checks, shared by the CLI and the staff API ---- */
static void test_account_check(void **state)
{
    (void)state;
    struct rb_department deps[1] = {{.id = "police"}};
    struct rb_district dis[2] = {{.id = "lahore"}, {.id = "kasur"}};
    struct rb_config cfg = {.departments = deps, .n_departments = 1, .districts = dis,
                            .n_districts = 2};
    static const struct {
        struct rb_staff_account a;
        const char *why; /* NULL: accepted */
    } cases[] = {
        {{.role = "officer", .department = "police", .districts = "lahore,kasur",
          .phone = "0300 1234567", .email = "a@b.pk"}, NULL},
        {{.role = "admin"}, NULL},
        {{.role = "king"}, "--role is one of officer, supervisor, oversight, admin or agent"},
        {{.role = "supervisor"}, "a supervisor needs --department"},
        {{.role = "oversight", .department = "police"}, "the oversight role covers every"},
        {{.role = "officer", .department = "tax"}, "there is no department \"tax\""},
        {{.role = "officer", .department = "police", .districts = "lahore,atlantis"},
         "there is no district \"atlantis\""},
        {{.role = "officer", .department = "police", .districts = "a b"},
         "--districts is a comma-separated list"},
        {{.role = "admin", .phone = "call me"}, "--phone \"call me\" is not a phone number"},
        {{.role = "admin", .email = "nobody"}, "--email \"nobody\" is not an e-mail address"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rb_staff_account a = cases[i].a;
        char why[512] = "";
        int rc = rb_staff_account_check(&cfg, &a, "--", why, sizeof(why));
        if (!cases[i].why) {
            assert_int_equal(rc, RB_OK);
        } else {
            assert_int_equal(rc, RB_EINVAL);
            assert_non_null(strstr(why, cases[i].why));
        }
    }
    struct rb_staff_account a = {.role = "admin", .phone = "0300-1234567"};
    char why[512];
    assert_int_equal(rb_staff_account_check(&cfg, &a, "", why, sizeof(why)), RB_OK);
    assert_string_equal(a.e164, "+923001234567");
    assert_int_equal(rb_staff_username_ok("ali.khan@pb-1_x"), 1);
    assert_int_equal(rb_staff_username_ok("ali khan"), 0);
    assert_int_equal(rb_staff_username_ok(""), 0);
}

/* ---- hashing on the pool: the hash verifies, and comes back on the loop ---- */
struct hashed_out {
    char hash[crypto_pwhash_STRBYTES];
    int n;
};

static void hashed(const char *hash, void *arg)
{
    struct hashed_out *h = arg;
    assert_non_null(hash);
    snprintf(h->hash, sizeof(h->hash), "%s", hash);
    h->n++;
}

static void test_password_pool_hashes(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct rb_staff *s = rb_staff_new(base, NULL);
    assert_non_null(s);
    struct hashed_out h = {.n = 0};
    assert_int_equal(rb_staff_hash(s, "new pass word", hashed, &h), RB_OK);
    assert_int_equal(h.n, 0); /* never from inside the call */
    while (h.n < 1)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(crypto_pwhash_str_verify(h.hash, "new pass word", 13), 0);
    assert_int_not_equal(crypto_pwhash_str_verify(h.hash, "other", 5), 0);
    char big[RB_STAFF_PASSWORD_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(rb_staff_hash(s, big, hashed, &h), RB_EINVAL);
    char pw[RB_STAFF_GENERATED_LEN + 1], pw2[RB_STAFF_GENERATED_LEN + 1];
    rb_staff_password_new(pw);
    rb_staff_password_new(pw2);
    assert_int_equal(strlen(pw), RB_STAFF_GENERATED_LEN);
    assert_string_not_equal(pw, pw2);
    rb_staff_free(s);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_matrix),
        cmocka_unit_test(test_role_rules),
        cmocka_unit_test(test_names_match),
        cmocka_unit_test(test_districts_and_roles),
        cmocka_unit_test(test_password_pool),
        cmocka_unit_test(test_account_check),
        cmocka_unit_test(test_password_pool_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
