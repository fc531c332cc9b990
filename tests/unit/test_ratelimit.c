/* Unit tests of the per-client rate limits (core/net/ratelimit.c): a burst is allowed and the
 * next request waits one interval; clients and rules count apart; an IPv6 /64 is one client
 * while IPv4 addresses are not; a flood of many addresses keeps the table bounded and fails
 * closed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "base/addr.h"
#include "base/common.h"
#include "net/ratelimit.h"

static void key(const char *addr, unsigned char k[RB_ADDR_KEY_LEN])
{
    assert_int_equal(rb_addr_key(addr, k), RB_OK);
}

static void a_burst_is_allowed_then_one_request_per_interval(void **state)
{
    (void)state;
    struct rb_ratelimit *rl = rb_ratelimit_new(100);
    unsigned char k[RB_ADDR_KEY_LEN];
    key("192.0.2.1", k);
    double now = 100;
    for (int i = 0; i < 5; i++)
        assert_true(rb_ratelimit_take(rl, 0, 1.0, 5, k, now) == 0);
    double wait = rb_ratelimit_take(rl, 0, 1.0, 5, k, now);
    assert_true(wait > 0.99 && wait < 1.01);
    assert_true(rb_ratelimit_take(rl, 0, 1.0, 5, k, now + 1.0) == 0);
    assert_true(rb_ratelimit_take(rl, 0, 1.0, 5, k, now + 1.0) > 0);
    rb_ratelimit_free(rl);
}

static void clients_and_rules_count_apart(void **state)
{
    (void)state;
    struct rb_ratelimit *rl = rb_ratelimit_new(100);
    unsigned char a[RB_ADDR_KEY_LEN], b[RB_ADDR_KEY_LEN];
    key("192.0.2.1", a);
    key("192.0.2.2", b);
    assert_true(rb_ratelimit_take(rl, 0, 0.1, 1, a, 50) == 0);
    assert_true(rb_ratelimit_take(rl, 0, 0.1, 1, a, 50) > 0);
    assert_true(rb_ratelimit_take(rl, 0, 0.1, 1, b, 50) == 0); /* another address */
    assert_true(rb_ratelimit_take(rl, 1, 0.1, 1, a, 50) == 0); /* another rule */
    rb_ratelimit_free(rl);
}

static void an_ipv6_slash_64_is_one_client(void **state)
{
    (void)state;
    unsigned char a[RB_ADDR_KEY_LEN], b[RB_ADDR_KEY_LEN], c[RB_ADDR_KEY_LEN];
    key("2001:db8:1:2::1", a);
    key("2001:db8:1:2:ffff::9", b);
    key("2001:db8:1:3::1", c);
    assert_memory_equal(a, b, RB_ADDR_KEY_LEN);
    assert_memory_not_equal(a, c, RB_ADDR_KEY_LEN);
    key("::ffff:192.0.2.1", a); /* IPv4-mapped is the IPv4 address */
    key("192.0.2.1", b);
    assert_memory_equal(a, b, RB_ADDR_KEY_LEN);
    assert_int_equal(rb_addr_key("not-an-address", a), RB_EINVAL);
}

static void cidr_blocks_match_their_addresses_only(void **state)
{
    (void)state;
    struct rb_cidr l[2];
    assert_int_equal(rb_cidr_parse("10.1.0.0/16", &l[0]), RB_OK);
    assert_int_equal(rb_cidr_parse("fd00::/8", &l[1]), RB_OK);
    assert_true(rb_cidr_match(l, 2, "10.1.200.3"));
    assert_true(rb_cidr_match(l, 2, "::ffff:10.1.0.1"));
    assert_false(rb_cidr_match(l, 2, "10.2.0.1"));
    assert_true(rb_cidr_match(l, 2, "fd12::1"));
    assert_false(rb_cidr_match(l, 2, "fe80::1"));
    assert_false(rb_cidr_match(l, 2, "garbage"));
    struct rb_cidr x;
    assert_int_equal(rb_cidr_parse("10.0.0.0/33", &x), RB_EINVAL);
    assert_int_equal(rb_cidr_parse("10.0.0.0/", &x), RB_EINVAL);
    assert_int_equal(rb_cidr_parse("", &x), RB_EINVAL);
}

static void a_flood_of_addresses_stays_bounded_and_fails_closed(void **state)
{
    (void)state;
    struct rb_ratelimit *rl = rb_ratelimit_new(1000); /* at most 2048 slots, half used */
    unsigned char k[RB_ADDR_KEY_LEN];
    char addr[32];
    int refused = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(addr, sizeof(addr), "10.%d.%d.1", i / 256, i % 256);
        key(addr, k);
        refused += rb_ratelimit_take(rl, 0, 0.01, 1, k, 10) > 0;
    }
    assert_true(rb_ratelimit_size(rl) <= 1024);
    assert_true(refused >= 5000 - 1024);
    /* Once their schedules have passed, the entries are swept and newcomers are served. */
    key("192.0.2.77", k);
    assert_true(rb_ratelimit_take(rl, 0, 0.01, 1, k, 10 + 1000) == 0);
    rb_ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_burst_is_allowed_then_one_request_per_interval),
        cmocka_unit_test(clients_and_rules_count_apart),
        cmocka_unit_test(an_ipv6_slash_64_is_one_client),
        cmocka_unit_test(cidr_blocks_match_their_addresses_only),
        cmocka_unit_test(a_flood_of_addresses_stays_bounded_and_fails_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
