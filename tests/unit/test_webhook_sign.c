/* Unit tests of the webhook plugin's signing (plugins/webhook/webhook_sign.c): HMAC-SHA256
 * against the RFC 4231 test cases, the "v1=<hex>" signature over "<timestamp>.<body>",
 * verification (tampering, wrong secret, malformed headers) and the timestamp window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/webhook/webhook_sign.c"

static void hex_of(const unsigned char *b, size_t n, char *out)
{
    sodium_bin2hex(out, 2 * n + 1, b, n);
}

static void fill(unsigned char *b, unsigned char v, size_t n)
{
    memset(b, v, n);
}

/* RFC 4231 section 4: test cases 1-7, HMAC-SHA-256. */
static void hmac_matches_rfc4231(void **state)
{
    (void)state;
    unsigned char key[131], data[152], mac[RB_WH_MAC_LEN];
    char hex[2 * RB_WH_MAC_LEN + 1];

    fill(key, 0x0b, 20); /* 1 */
    rb_wh_hmac(key, 20, (const unsigned char *)"Hi There", 8, mac);
    hex_of(mac, 32, hex);
    assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    rb_wh_hmac((const unsigned char *)"Jefe", 4, /* 2 */
               (const unsigned char *)"what do ya want for nothing?", 28, mac);
    hex_of(mac, 32, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    fill(key, 0xaa, 20); /* 3 */
    fill(data, 0xdd, 50);
    rb_wh_hmac(key, 20, data, 50, mac);
    hex_of(mac, 32, hex);
    assert_string_equal(hex, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");

    for (int i = 0; i < 25; i++) /* 4 */
        key[i] = (unsigned char)(i + 1);
    fill(data, 0xcd, 50);
    rb_wh_hmac(key, 25, data, 50, mac);
    hex_of(mac, 32, hex);
    assert_string_equal(hex, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");

    fill(key, 0x0c, 20); /* 5: truncated to 128 bits */
    rb_wh_hmac(key, 20, (const unsigned char *)"Test With Truncation", 20, mac);
    hex_of(mac, 16, hex);
    assert_string_equal(hex, "a3b6167473100ee06e0c796c2955552b");

    fill(key, 0xaa, 131); /* 6: a key longer than the block is hashed first */
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    rb_wh_hmac(key, 131, (const unsigned char *)m6, strlen(m6), mac);
    hex_of(mac, 32, hex);
    assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");

    const char *m7 = "This is a test using a larger than block-size key and a larger than "
                     "block-size data. The key needs to be hashed before being used by the "
                     "HMAC algorithm."; /* 7 */
    rb_wh_hmac(key, 131, (const unsigned char *)m7, strlen(m7), mac);
    hex_of(mac, 32, hex);
    assert_string_equal(hex, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

/* The signature is the HMAC of "<ts>.<body>": the same as hashing the joined string. */
static void signature_covers_timestamp_dot_body(void **state)
{
    (void)state;
    const char *secret = "Jefe";
    char sig[RB_WH_SIG_LEN];
    rb_wh_sign(secret, 4, "what do ya want", " for nothing?", 13, sig);
    /* "what do ya want" + "." + " for nothing?" is not RFC case 2's message: */
    assert_string_not_equal(sig + 3,
                            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    unsigned char mac[RB_WH_MAC_LEN];
    char hex[65];
    const char *joined = "what do ya want. for nothing?";
    rb_wh_hmac((const unsigned char *)secret, 4, (const unsigned char *)joined, strlen(joined),
               mac);
    hex_of(mac, 32, hex);
    assert_memory_equal(sig, "v1=", 3);
    assert_string_equal(sig + 3, hex);
    assert_int_equal(strlen(sig), 67);
}

static void verify_accepts_own_signature_and_refuses_tampering(void **state)
{
    (void)state;
    const char *secret = "0123456789abcdef-department-secret";
    size_t sl = strlen(secret);
    const char *body = "{\"tracking_no\":\"RB-7K2QD-M9XRT-4\",\"status\":\"acknowledged\"}";
    char sig[RB_WH_SIG_LEN];
    unsigned char mac[RB_WH_MAC_LEN], want[RB_WH_MAC_LEN];
    rb_wh_sign(secret, sl, "1767225600", body, strlen(body), sig);
    assert_int_equal(rb_wh_verify(secret, sl, "1767225600", body, strlen(body), sig, mac),
                     RB_WH_OK);
    rb_wh_mac(secret, sl, "1767225600", body, strlen(body), want);
    assert_memory_equal(mac, want, RB_WH_MAC_LEN);
    /* another timestamp, another body, another secret */
    assert_int_equal(rb_wh_verify(secret, sl, "1767225601", body, strlen(body), sig, NULL),
                     RB_WH_MISMATCH);
    assert_int_equal(rb_wh_verify(secret, sl, "1767225600", body, strlen(body) - 1, sig, NULL),
                     RB_WH_MISMATCH);
    assert_int_equal(rb_wh_verify("another-secret-of-length", 24, "1767225600", body,
                                  strlen(body), sig, NULL),
                     RB_WH_MISMATCH);
    /* one flipped hex digit */
    char bad[RB_WH_SIG_LEN];
    memcpy(bad, sig, sizeof(bad));
    bad[10] = bad[10] == '0' ? '1' : '0';
    assert_int_equal(rb_wh_verify(secret, sl, "1767225600", body, strlen(body), bad, NULL),
                     RB_WH_MISMATCH);
}

static void verify_refuses_malformed_headers(void **state)
{
    (void)state;
    const char *s = "0123456789abcdef";
    char sig[RB_WH_SIG_LEN];
    rb_wh_sign(s, 16, "1", "b", 1, sig);
    const char *bad[] = {
        NULL, "", "v1=", sig + 3, /* no prefix */
        "v2=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        "v1=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff",   /* 63 */
        "v1=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7a", /* 65 */
        "v1=z0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",  /* not hex */
        "v1=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cf f",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rb_wh_verify(s, 16, "1", "b", 1, bad[i], NULL), RB_WH_MALFORMED);
    assert_int_equal(rb_wh_verify(s, 16, "1", "b", 1, sig, NULL), RB_WH_OK);
}

static void timestamp_window(void **state)
{
    (void)state;
    long long t = 0;
    assert_int_equal(rb_wh_check_time("1767225600", 1767225600.0, 300, &t), RB_WH_OK);
    assert_int_equal(t, 1767225600LL);
    assert_int_equal(rb_wh_check_time("1767225300", 1767225600.0, 300, NULL), RB_WH_OK);
    assert_int_equal(rb_wh_check_time("1767225900", 1767225600.0, 300, NULL), RB_WH_OK);
    assert_int_equal(rb_wh_check_time("1767225299", 1767225600.0, 300, NULL), RB_WH_STALE);
    assert_int_equal(rb_wh_check_time("1767225901", 1767225600.0, 300, NULL), RB_WH_STALE);
    const char *bad[] = {NULL, "", "-1767225600", "1767225600.5", " 1767225600", "17672256OO",
                         "1234567890123456", "0x69500000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rb_wh_check_time(bad[i], 1767225600.0, 300, NULL), RB_WH_STALE);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hmac_matches_rfc4231),
        cmocka_unit_test(signature_covers_timestamp_dot_body),
        cmocka_unit_test(verify_accepts_own_signature_and_refuses_tampering),
        cmocka_unit_test(verify_refuses_malformed_headers),
        cmocka_unit_test(timestamp_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
