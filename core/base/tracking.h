/* Tracking numbers: what a citizen is given after COMMIT and types back to ask about a case.
 *
 * Canonical form:  "RB-" + 5 symbols + "-" + 5 symbols + "-" + 1 check symbol
 *                  e.g. "RB-7K3M9-QXPD2-3"      (16 characters; RB_TRACKING_LEN with the NUL)
 *
 *  - Symbols are Crockford base32: 0123456789ABCDEFGHJKMNPQRSTVWXYZ (no I, L, O, U), so a
 *    number read aloud or copied by hand has no 1/I/L or 0/O ambiguity and spells no words.
 *  - The 10 data symbols are 50 random bits from libsodium's CSPRNG (randombytes_buf): not
 *    sequential, not derived from the case id, and unguessable — with 10 million cases on
 *    file a guessed number hits one with probability below 1 in 100 million. Uniqueness is
 *    the database's job (a UNIQUE column; on the rare conflict, draw again).
 *  - The check symbol is also a Crockford symbol (no "*~$=U" extension, which is awkward to
 *    read over the phone or type on a phone keypad). It is a weighted sum over GF(32):
 *    c = sum_i d_i * a^(11-i) with a = x (generator of GF(32)*, x^5 = x^2 + 1), i.e. the
 *    Damm quasigroup x*y = a.x + y. Every weight is non-zero and all eleven weights differ,
 *    so every single-symbol substitution and every transposition of two different symbols
 *    (adjacent or not, check symbol included) changes the sum: they are all detected.
 *    tests/unit/test_tracking.c tries them all on thousands of numbers.
 *
 * Parsing is forgiving the Crockford way: case-insensitive; I and L read as 1, O as 0;
 * hyphens, spaces, dots and underscores ignored; the "RB" prefix optional (13 symbols, or
 * "RB" standing alone before the first separator, means a prefix); Urdu and Arabic-Indic
 * digits read as ASCII digits. */
#ifndef RB_TRACKING_H
#define RB_TRACKING_H

#define RB_TRACKING_PREFIX "RB"
#define RB_TRACKING_DATA 10             /* random symbols, 5 bits each */
#define RB_TRACKING_LEN 17              /* "RB-XXXXX-XXXXX-C" + NUL */
#define RB_TRACKING_BITS (RB_TRACKING_DATA * 5)

/* Why a parse failed. */
enum rb_tracking_fault {
    RB_TRACKING_FAULT_NONE = 0,
    RB_TRACKING_MALFORMED, /* not a tracking number: wrong length, a symbol outside the alphabet,
                              an unknown prefix, invalid UTF-8 */
    RB_TRACKING_MISTYPED,  /* well formed but the check symbol does not match: a typo */
};

/* Writes a new random tracking number in canonical form to out. RB_OK, or RB_ERR if
 * libsodium cannot be initialised (no entropy source). Thread-safe. */
int rb_tracking_new(char out[RB_TRACKING_LEN]);

/* Reads what a citizen typed (NUL-terminated UTF-8) and writes the canonical form to out.
 * RB_OK, or RB_EINVAL with out set to "" (malformed or mistyped: see rb_tracking_parse_why). */
int rb_tracking_parse(const char *in, char out[RB_TRACKING_LEN]);

/* Like rb_tracking_parse, and on RB_EINVAL says why: *fault (if not NULL) is
 * RB_TRACKING_MALFORMED or RB_TRACKING_MISTYPED, *why (if not NULL) a sentence for the citizen:
 * "this is not a tracking number" / "the tracking number has a typing mistake; please check
 * it". On RB_OK *fault is RB_TRACKING_FAULT_NONE. */
int rb_tracking_parse_why(const char *in, char out[RB_TRACKING_LEN],
                          enum rb_tracking_fault *fault, const char **why);

/* The check symbol ('0'..'Z') for RB_TRACKING_DATA symbol values 0..31 (for tests and tools). */
char rb_tracking_check_symbol(const unsigned char vals[RB_TRACKING_DATA]);

#endif
