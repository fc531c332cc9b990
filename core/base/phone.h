/* Phone numbers: whatever a citizen or an office typed → E.164 ("+923001234567").
 *
 * Accepted (separators: spaces of any kind, "-", ".", "/", "(", ")", dashes; invisible
 * bidi/zero-width marks that copy-paste from Urdu text drags along are ignored; Urdu
 * "۰..۹" and Arabic-Indic "٠..٩" digits read as ASCII):
 *
 *   Pakistan, mobile    +92 3xx xxxxxxx: 10 digits after 92, the first one 3
 *     03001234567  0300-1234567  (0300) 1234567  +92 300 1234567  +92 (0)300 1234567
 *     923001234567  00923001234567  3001234567                → "+923001234567"
 *   Pakistan, landline  +92 + area code + subscriber: 9 or 10 digits after 92, the first
 *     one 2, 4..9 (no area code starts with 0, 1 or 3)
 *     042-35761234 → "+924235761234"   051-1234567 → "+92511234567"
 *   Elsewhere           a leading "+" (or "00") and 8..15 digits, the first not 0: kept
 *     as is (E.164 does not let us check more without a numbering plan per country).
 *
 * Refused: empty, letters, control characters, a "+" that is not first, too few or too many
 * digits, a number without "+" or "00" that is not Pakistani. */
#ifndef RB_PHONE_H
#define RB_PHONE_H

#define RB_PHONE_MAX 17     /* "+" + at most 15 digits + NUL */
#define RB_PHONE_LAST4_LEN 5 /* 4 digits + NUL */

/* Normalises in (NUL-terminated UTF-8) to E.164 in out. RB_OK, or RB_EINVAL with out set
 * to "" and *why (if not NULL) a short static reason that reads after "the phone number":
 * "is too short", "contains letters", ... */
int rb_phone_normalize(const char *in, char out[RB_PHONE_MAX], const char **why);

/* The last four digits of phone (any form; non-digits skipped) for "ending in 4567"
 * messages. RB_OK, or RB_EINVAL (out "") when it has fewer than four digits. */
int rb_phone_last4(const char *phone, char out[RB_PHONE_LAST4_LEN]);

/* A normalised number with all but the country code (only for +92) and the last four
 * digits hidden: "+923001234567" → "+92******4567", "+441632960961" → "+********0961".
 * For staff who must not see a complainant's number. RB_OK, or RB_EINVAL (out "") if
 * e164 is not "+" and 8..15 digits. */
int rb_phone_mask(const char *e164, char out[RB_PHONE_MAX]);

/* 1 if e164 is a normalised Pakistani mobile number (+92 3xx xxxxxxx: can receive SMS),
 * else 0. */
int rb_phone_is_pk_mobile(const char *e164);

#endif
