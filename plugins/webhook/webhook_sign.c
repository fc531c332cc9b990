/* Signing and checking webhook messages (see webhook_sign.h). */
#include "webhook_sign.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

void rb_wh_hmac(const unsigned char *key, size_t keylen, const unsigned char *msg, size_t len,
                unsigned char out[RB_WH_MAC_LEN])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, msg, len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

void rb_wh_mac(const char *secret, size_t slen, const char *ts, const char *body, size_t len,
               unsigned char mac[RB_WH_MAC_LEN])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, slen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
}

void rb_wh_sign(const char *secret, size_t slen, const char *ts, const char *body, size_t len,
                char out[RB_WH_SIG_LEN])
{
    unsigned char mac[RB_WH_MAC_LEN];
    rb_wh_mac(secret, slen, ts, body, len, mac);
    memcpy(out, "v1=", 3);
    sodium_bin2hex(out + 3, RB_WH_SIG_LEN - 3, mac, sizeof(mac));
}

int rb_wh_check_time(const char *ts, double now, double window, long long *t)
{
    size_t n = ts ? strlen(ts) : 0;
    if (n == 0 || n >= RB_WH_TS_MAX || strspn(ts, "0123456789") != n)
        return RB_WH_STALE;
    long long v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (ts[i] - '0');
    if (t)
        *t = v;
    double d = (double)v - now;
    return d > window || d < -window ? RB_WH_STALE : RB_WH_OK;
}

int rb_wh_verify(const char *secret, size_t slen, const char *ts, const char *body, size_t len,
                 const char *sig, unsigned char mac[RB_WH_MAC_LEN])
{
    unsigned char got[RB_WH_MAC_LEN], want[RB_WH_MAC_LEN];
    size_t bin = 0;
    const char *end = NULL;
    if (!sig || strncmp(sig, "v1=", 3) != 0 || strlen(sig + 3) != 2 * RB_WH_MAC_LEN ||
        sodium_hex2bin(got, sizeof(got), sig + 3, 2 * RB_WH_MAC_LEN, NULL, &bin, &end) != 0 ||
        bin != RB_WH_MAC_LEN || *end)
        return RB_WH_MALFORMED;
    rb_wh_mac(secret, slen, ts, body, len, want);
    int rc = sodium_memcmp(got, want, RB_WH_MAC_LEN) == 0 ? RB_WH_OK : RB_WH_MISMATCH;
    if (rc == RB_WH_OK && mac)
        memcpy(mac, got, RB_WH_MAC_LEN);
    sodium_memzero(want, sizeof(want));
    return rc;
}
