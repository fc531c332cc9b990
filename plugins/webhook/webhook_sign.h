/* Signing and checking webhook messages (docs/webhook.md): HMAC-SHA256 (libsodium) over
 * "<timestamp>.<body>" with the department's secret, sent as
 *
 *   X-Rabta-Timestamp: 1767225600            (Unix seconds, UTC)
 *   X-Rabta-Signature: v1=<64 lowercase hex>
 *
 * in both directions: Rabta signs each delivery, the department signs each callback. No I/O
 * here, so the unit tests (tests/unit/test_webhook_sign.c) reach every function. */
#ifndef RB_WEBHOOK_SIGN_H
#define RB_WEBHOOK_SIGN_H

#include <stddef.h>

#define RB_WH_MAC_LEN 32
#define RB_WH_SIG_LEN (3 + 2 * RB_WH_MAC_LEN + 1) /* "v1=" + hex + NUL */
#define RB_WH_TS_MAX 16                          /* digits + NUL */

enum rb_wh_verdict {
    RB_WH_OK = 0,
    RB_WH_MALFORMED = -1, /* the signature header is not "v1=<64 hex>" */
    RB_WH_MISMATCH = -2,  /* well-formed, but not made with this secret over this message */
    RB_WH_STALE = -3,     /* the timestamp is not digits, or outside the window */
};

/* HMAC-SHA256 of msg under key (any length; RFC 2104/4231). */
void rb_wh_hmac(const unsigned char *key, size_t keylen, const unsigned char *msg, size_t len,
                unsigned char out[RB_WH_MAC_LEN]);

/* The HMAC over "<ts>.<body>" into mac. */
void rb_wh_mac(const char *secret, size_t slen, const char *ts, const char *body, size_t len,
               unsigned char mac[RB_WH_MAC_LEN]);

/* The signature header's value "v1=<hex>" for ts and body. */
void rb_wh_sign(const char *secret, size_t slen, const char *ts, const char *body, size_t len,
                char out[RB_WH_SIG_LEN]);

/* Is ts ("<1-15 digits>") within window seconds of now (either side)? RB_WH_OK or
 * RB_WH_STALE; *t gets the value when it parses. */
int rb_wh_check_time(const char *ts, double now, double window, long long *t);

/* Checks sig (the header's value) against ts and body: RB_WH_OK, RB_WH_MALFORMED or
 * RB_WH_MISMATCH; the comparison takes the same time wherever the first difference is. On
 * RB_WH_OK mac (may be NULL) gets the signature's bytes (the replay guard's key). */
int rb_wh_verify(const char *secret, size_t slen, const char *ts, const char *body, size_t len,
                 const char *sig, unsigned char mac[RB_WH_MAC_LEN]);

#endif
