/* Input hygiene shared by every input path (app, SMS, IVR, web, staff forms).
 *
 * Everything a citizen or a department types passes through here before it is stored:
 *
 *   1. rb_text_clean()  — in place, never grows the string: drops bidirectional override
 *      characters, turns CR LF / lone CR / U+0085 / U+2028 / U+2029 into "\n", optionally folds
 *      Urdu and Arabic-Indic digits to ASCII and collapses whitespace, and trims leading and
 *      trailing whitespace (ASCII and Unicode: U+00A0, U+3000, ...) and invisible format
 *      characters (ZWSP, ZWNJ, ZWJ, WORD JOINER, BOM).
 *   2. rb_text_check()  — refuses what cannot be cleaned: invalid UTF-8, NUL, control
 *      characters, stacked combining marks (zalgo), text longer than the limit.
 *
 * rb_text_sanitize() does both in that order, which is what intake wants.
 *
 * Decisions (tests/unit/test_text.c holds each of them to account):
 *  - UTF-8 is validated strictly (RFC 3629): overlong forms, UTF-16 surrogates (U+D800..DFFF),
 *    code points above U+10FFFF, stray continuation bytes and truncated sequences are refused.
 *  - Lengths are in code points, not bytes and not grapheme clusters: "👍🏽" counts 2, a
 *    family emoji joined with ZWJ counts each member and each joiner. A limit of 0 means none.
 *  - NUL is refused anywhere (strings are handled with an explicit length so we can see it).
 *  - Control characters are refused: C0 except "\t" (RB_TEXT_TABS) and "\n" (RB_TEXT_NEWLINES,
 *    which also admits "\r\n" pairs and U+2028/U+2029), DEL, and C1 (U+0080..U+009F).
 *  - Bidirectional embedding, override and isolate controls (U+202A..U+202E, U+2066..U+2069)
 *    are refused by check and stripped by clean unless RB_TEXT_BIDI: an unbalanced U+202E
 *    ("RIGHT-TO-LEFT OVERRIDE") in a complaint would reorder the rest of a staff screen and
 *    can disguise a phone number or a file name ("Trojan Source", CVE-2021-42574). Urdu does
 *    not need them: the marks U+200E LRM, U+200F RLM and U+061C ALM are allowed, and so are
 *    ZWNJ/ZWJ (U+200C/U+200D), which Urdu spelling needs inside words.
 *  - Noncharacters (U+FDD0..U+FDEF and every U+xxFFFE/U+xxFFFF) are refused.
 *  - More than RB_TEXT_MAX_MARKS combining marks in a row on one base character is refused
 *    ("zalgo"); Urdu and Arabic diacritics (zer, zabar, pesh, shadd, ...) need at most 3.
 *  - Private-use characters, emoji, variation selectors and tag characters are allowed.
 */
#ifndef RB_TEXT_H
#define RB_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Flags for rb_text_check / rb_text_clean / rb_text_sanitize. */
#define RB_TEXT_NEWLINES 0x01u /* allow "\n" (and "\r\n", U+2028, U+2029): multi-line text */
#define RB_TEXT_TABS 0x02u     /* allow "\t" */
#define RB_TEXT_BIDI 0x04u     /* allow (check) / keep (clean) bidi embeddings and overrides */
#define RB_TEXT_COLLAPSE 0x08u /* clean: runs of spaces → one " "; spaces around a newline
                                  dropped; more than one blank line → one blank line; without
                                  RB_TEXT_NEWLINES a newline becomes a space */
#define RB_TEXT_DIGITS 0x10u   /* clean: Urdu/Arabic-Indic digits → ASCII "0".."9" */
#define RB_TEXT_REQUIRED 0x20u /* check: refuse text with nothing visible in it */

/* Convenience sets: a one-line field (name, subject: a pasted newline or tab becomes a
 * space) and a free-text field (description: lines kept, spaces collapsed). Add
 * RB_TEXT_DIGITS for fields that hold numbers (CNIC, reference numbers). */
#define RB_TEXT_LINE RB_TEXT_COLLAPSE
#define RB_TEXT_BODY (RB_TEXT_NEWLINES | RB_TEXT_COLLAPSE)

/* Most combining marks allowed in a row after one base character. */
#define RB_TEXT_MAX_MARKS 8

/* Decodes one code point of strict UTF-8 at s[*pos] (pos < len), stores it in *cp and
 * advances *pos past it. RB_OK, or RB_EINVAL (and *pos unchanged) when the bytes there are
 * not valid UTF-8 (overlong, surrogate, > U+10FFFF, truncated, stray continuation). */
int rb_text_decode(const char *s, size_t len, size_t *pos, uint32_t *cp);

/* RB_OK when s[0..len) is valid UTF-8; else RB_EINVAL and, if bad_at is not NULL, the byte
 * offset of the first invalid sequence. */
int rb_text_valid_utf8(const char *s, size_t len, size_t *bad_at);

/* Number of code points in valid UTF-8 s[0..len) (for invalid input: the count of bytes that
 * are not continuation bytes). */
size_t rb_text_chars(const char *s, size_t len);

/* The value 0..9 of an ASCII, Arabic-Indic (U+0660..0669) or Extended Arabic-Indic / Urdu
 * (U+06F0..06F9) digit; -1 for anything else. */
int rb_text_digit(uint32_t cp);

/* Unicode White_Space (ASCII and U+0085, U+00A0, U+1680, U+2000..200A, U+2028, U+2029,
 * U+202F, U+205F, U+3000). Returns 1 or 0. */
int rb_text_is_space(uint32_t cp);

/* Replaces every Urdu/Arabic-Indic digit in s[0..*len) by its ASCII digit, in place, and
 * updates *len (each replacement shrinks by one byte); writes a NUL at s[*len] when the
 * string shrank. Other bytes, valid or not, are left alone. */
void rb_text_fold_digits(char *s, size_t *len);

/* Validates s[0..len) against the rules above and `flags`; max_chars is the limit in code
 * points (0: none). RB_OK, or RB_EINVAL with *why (if why is not NULL) set to a short static
 * reason that reads after a field name: "is not valid UTF-8", "is too long", ... */
int rb_text_check(const char *s, size_t len, size_t max_chars, unsigned flags, const char **why);

/* Cleans s[0..*len) in place as described above, updates *len and writes a NUL at s[*len]
 * (so s must have room for *len + 1 bytes). RB_OK; RB_EINVAL (s untouched, *why set) when s
 * is not valid UTF-8. Control characters are left in place for rb_text_check to refuse. */
int rb_text_clean(char *s, size_t *len, unsigned flags, const char **why);

/* rb_text_clean then rb_text_check on the result. On RB_EINVAL, s may have been cleaned. */
int rb_text_sanitize(char *s, size_t *len, size_t max_chars, unsigned flags, const char **why);

/* Cuts NUL-terminated s before a last UTF-8 sequence that is not complete (what snprintf
 * leaves when it cuts a message in the middle of a character). Returns the new length. */
size_t rb_text_cut_utf8(char *s);

#endif
