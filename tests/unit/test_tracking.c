/* core/base/tracking.c: format, randomness (every one of the 50 data bits varies), the check
 * symbol catching every single substitution and every transposition on thousands of numbers
 * (tried one by one), and Crockford's forgiving parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/common.h"
#include "base/tracking.h"

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* The 11 symbols of a canonical number, without prefix and hyphens. */
static void symbols_of(const char *canon, char sym[12])
{
    size_t k = 0;

    for (const char *p = canon + 3; *p; p++) {
        if (*p != '-')
            sym[k++] = *p;
    }
    assert_int_equal(k, 11);
    sym[11] = '\0';
}

static int value_of(char c)
{
    const char *p = strchr(alphabet, c);
    return p && c ? (int)(p - alphabet) : -1;
}

/* Reference GF(2^5) arithmetic, written differently from the code under test: carry-less
 * multiplication, then reduction by x^5 + x^2 + 1. */
static unsigned gf_mul(unsigned a, unsigned b)
{
    unsigned r = 0;

    for (int i = 0; i < 5; i++)
        if (b & (1u << i))
            r ^= a << i;
    for (int i = 8; i >= 5; i--)
        if (r & (1u << i))
            r ^= 0x25u << (i - 5);
    return r;
}

static char reference_check(const unsigned char vals[10])
{
    unsigned sum = 0;

    for (int i = 0; i < 10; i++) {
        unsigned w = 1;
        for (int k = 0; k < 10 - i; k++)
            w = gf_mul(w, 2); /* a = x */
        sum ^= gf_mul(vals[i], w);
    }
    return alphabet[sum];
}

static void expect_fault(const char *in, enum rb_tracking_fault want)
{
    char out[RB_TRACKING_LEN] = "junk";
    enum rb_tracking_fault f = RB_TRACKING_FAULT_NONE;
    const char *why = NULL;

    if (rb_tracking_parse_why(in, out, &f, &why) != RB_EINVAL)
        fail_msg("\"%s\" was accepted as %s", in ? in : "(null)", out);
    if (f != want)
        fail_msg("\"%s\": fault %d, want %d", in ? in : "(null)", f, want);
    assert_string_equal(out, "");
    assert_non_null(why);
    assert_string_equal(why, want == RB_TRACKING_MISTYPED
                                 ? "the tracking number has a typing mistake; please check it"
                                 : "this is not a tracking number");
    assert_int_equal(rb_tracking_parse(in, out), RB_EINVAL);
}

static void expect_parse(const char *in, const char *want)
{
    char out[RB_TRACKING_LEN];
    enum rb_tracking_fault f = RB_TRACKING_MALFORMED;

    if (rb_tracking_parse_why(in, out, &f, NULL) != RB_OK)
        fail_msg("\"%s\" refused (fault %d)", in, f);
    assert_int_equal(f, RB_TRACKING_FAULT_NONE);
    assert_string_equal(out, want);
}

static void new_numbers_have_the_documented_shape(void **state)
{
    (void)state;
    char t[RB_TRACKING_LEN], back[RB_TRACKING_LEN];

    for (int i = 0; i < 1000; i++) {
        assert_int_equal(rb_tracking_new(t), RB_OK);
        assert_int_equal(strlen(t), RB_TRACKING_LEN - 1);
        assert_memory_equal(t, "RB-", 3);
        assert_int_equal(t[8], '-');
        assert_int_equal(t[14], '-');
        for (int k = 3; k < 16; k++) {
            if (k == 8 || k == 14)
                continue;
            if (value_of(t[k]) < 0)
                fail_msg("%s: '%c' is not a Crockford symbol", t, t[k]);
        }
        /* It parses back to itself. */
        assert_int_equal(rb_tracking_parse(t, back), RB_OK);
        assert_string_equal(back, t);
    }
}

static void check_symbol_matches_the_reference(void **state)
{
    (void)state;
    unsigned char v[10];
    unsigned seed = 7;

    memset(v, 0, sizeof(v));
    assert_int_equal(rb_tracking_check_symbol(v), '0');
    for (int i = 0; i < 100000; i++) {
        for (int k = 0; k < 10; k++) {
            seed = seed * 1103515245u + 12345u;
            v[k] = (unsigned char)((seed >> 16) & 31u);
        }
        if (rb_tracking_check_symbol(v) != reference_check(v))
            fail_msg("check symbol differs from the reference at iteration %d", i);
    }
    /* And new numbers carry it. */
    for (int i = 0; i < 1000; i++) {
        char t[RB_TRACKING_LEN], sym[12];
        assert_int_equal(rb_tracking_new(t), RB_OK);
        symbols_of(t, sym);
        for (int k = 0; k < 10; k++)
            v[k] = (unsigned char)value_of(sym[k]);
        assert_int_equal(sym[10], reference_check(v));
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* 20,000 draws: no two alike, every symbol shows up at every data position, and every one of
 * the 50 data bits is set in 45..55% of draws (a stuck bit would show as 0% or 100%). */
static void numbers_are_random_in_all_fifty_bits(void **state)
{
    (void)state;
    enum { N = 20000 };
    char(*all)[RB_TRACKING_LEN] = rb_calloc(N, RB_TRACKING_LEN);
    unsigned seen[10][32] = {{0}};
    unsigned ones[RB_TRACKING_BITS] = {0};
    char sym[12];

    assert_true(RB_TRACKING_BITS >= 40);
    for (int i = 0; i < N; i++) {
        assert_int_equal(rb_tracking_new(all[i]), RB_OK);
        symbols_of(all[i], sym);
        for (int k = 0; k < 10; k++) {
            int v = value_of(sym[k]);
            seen[k][v]++;
            for (int b = 0; b < 5; b++)
                ones[k * 5 + b] += (unsigned)(v >> b) & 1u;
        }
    }
    qsort(all, N, RB_TRACKING_LEN, cmp_str);
    for (int i = 1; i < N; i++)
        if (strcmp(all[i - 1], all[i]) == 0)
            fail_msg("duplicate tracking number %s", all[i]);
    for (int k = 0; k < 10; k++)
        for (int v = 0; v < 32; v++)
            if (seen[k][v] == 0)
                fail_msg("symbol %c never drawn at position %d", alphabet[v], k);
    for (int b = 0; b < RB_TRACKING_BITS; b++)
        if (ones[b] < N * 45 / 100 || ones[b] > N * 55 / 100)
            fail_msg("data bit %d set in %u of %d draws", b, ones[b], N);
    free(all);
}

/* Builds "RB-xxxxx-xxxxx-c" from 11 symbols. */
static void format_symbols(const char sym[11], char out[RB_TRACKING_LEN])
{
    snprintf(out, RB_TRACKING_LEN, "RB-%.5s-%.5s-%c", sym, sym + 5, sym[10]);
}

static void every_single_substitution_is_caught(void **state)
{
    (void)state;
    unsigned long tried = 0;

    for (int i = 0; i < 2000; i++) {
        char t[RB_TRACKING_LEN], sym[12], bad[12], typed[RB_TRACKING_LEN];

        assert_int_equal(rb_tracking_new(t), RB_OK);
        symbols_of(t, sym);
        for (int pos = 0; pos < 11; pos++) {
            for (int v = 0; v < 32; v++) {
                if (alphabet[v] == sym[pos])
                    continue;
                memcpy(bad, sym, sizeof(bad));
                bad[pos] = alphabet[v];
                format_symbols(bad, typed);
                expect_fault(typed, RB_TRACKING_MISTYPED);
                tried++;
            }
        }
    }
    assert_int_equal(tried, 2000ul * 11 * 31);
}

static void every_transposition_is_caught(void **state)
{
    (void)state;
    unsigned long adjacent = 0, other = 0;

    for (int i = 0; i < 2000; i++) {
        char t[RB_TRACKING_LEN], sym[12], bad[12], typed[RB_TRACKING_LEN];

        assert_int_equal(rb_tracking_new(t), RB_OK);
        symbols_of(t, sym);
        for (int p = 0; p < 11; p++) {
            for (int q = p + 1; q < 11; q++) {
                if (sym[p] == sym[q])
                    continue; /* swapping equal symbols is no mistake */
                memcpy(bad, sym, sizeof(bad));
                bad[p] = sym[q];
                bad[q] = sym[p];
                format_symbols(bad, typed);
                expect_fault(typed, RB_TRACKING_MISTYPED);
                if (q == p + 1)
                    adjacent++;
                else
                    other++;
            }
        }
    }
    /* Roughly 10 adjacent pairs per number differ; make sure we really tried them. */
    assert_true(adjacent > 2000ul * 9);
    assert_true(other > 2000ul * 40);
}

static void parsing_is_forgiving_the_crockford_way(void **state)
{
    (void)state;
    /* A number with 1s and 0s in it, so that I/L/O matter: data 1010101010. */
    unsigned char v[10] = {1, 0, 1, 0, 1, 0, 1, 0, 1, 0};
    char c = rb_tracking_check_symbol(v), canon[RB_TRACKING_LEN], in[64];

    snprintf(canon, sizeof(canon), "RB-10101-01010-%c", c);
    expect_parse(canon, canon);
    snprintf(in, sizeof(in), "rb-10101-01010-%c", c | 0x20);
    expect_parse(in, canon); /* lower case */
    snprintf(in, sizeof(in), "1010101010%c", c);
    expect_parse(in, canon); /* no prefix, no hyphens */
    snprintf(in, sizeof(in), "RB1010101010%c", c);
    expect_parse(in, canon); /* prefix glued on */
    snprintf(in, sizeof(in), "IOlOi-oLoIo %c", c);
    expect_parse(in, canon); /* I, L → 1 and O → 0, either case */
    snprintf(in, sizeof(in), "  rb 10101 01010 %c  ", c);
    expect_parse(in, canon); /* spaces */
    snprintf(in, sizeof(in), "RB.10101_01010.%c", c);
    expect_parse(in, canon); /* dots and underscores */
    snprintf(in, sizeof(in), "RB\u201310101\u201301010\u2013%c", c);
    expect_parse(in, canon); /* en dashes from a word processor */
    snprintf(in, sizeof(in), "RB\u00A010101\u300001010-%c", c);
    expect_parse(in, canon); /* no-break and ideographic spaces */
    snprintf(in, sizeof(in), "RB-۱۰۱۰۱-٠١٠١٠-%c", c);
    expect_parse(in, canon); /* Urdu and Arabic-Indic digits */

    /* All-zero data has check 0, so "O" typed everywhere is the same number. */
    expect_parse("ooooooooooo", "RB-00000-00000-0");
    expect_parse("RB-00000-00000-0", "RB-00000-00000-0");
    /* The example in tracking.h. */
    expect_parse("rb-7k3m9-qxpd2-3", "RB-7K3M9-QXPD2-3");
}

static void malformed_input_is_told_apart_from_a_typo(void **state)
{
    (void)state;
    char t[RB_TRACKING_LEN], in[64], sym[12];

    assert_int_equal(rb_tracking_new(t), RB_OK);
    symbols_of(t, sym);

    expect_fault(NULL, RB_TRACKING_MALFORMED);
    expect_fault("", RB_TRACKING_MALFORMED);
    expect_fault("   -- ", RB_TRACKING_MALFORMED);
    expect_fault("RB-", RB_TRACKING_MALFORMED);
    snprintf(in, sizeof(in), "%.10s", sym); /* check symbol left off */
    expect_fault(in, RB_TRACKING_MALFORMED);
    snprintf(in, sizeof(in), "RB-%.9s", sym); /* one data symbol missing */
    expect_fault(in, RB_TRACKING_MALFORMED);
    snprintf(in, sizeof(in), "%s0", t); /* one too many */
    expect_fault(in, RB_TRACKING_MALFORMED);
    snprintf(in, sizeof(in), "XY-%.5s-%.5s-%c", sym, sym + 5, sym[10]); /* other prefix */
    expect_fault(in, RB_TRACKING_MALFORMED);
    snprintf(in, sizeof(in), "RB-%.4sU-%.5s-%c", sym, sym + 5, sym[10]); /* U is no symbol */
    expect_fault(in, RB_TRACKING_MALFORMED);
    snprintf(in, sizeof(in), "RB-%.5s-%.5s-*", sym, sym + 5); /* Crockford's *~$=U checks */
    expect_fault(in, RB_TRACKING_MALFORMED);
    snprintf(in, sizeof(in), "RB-%.5s-%.5s-$", sym, sym + 5);
    expect_fault(in, RB_TRACKING_MALFORMED);
    snprintf(in, sizeof(in), "RB-%.5s/%.5s-%c", sym, sym + 5, sym[10]); /* slash */
    expect_fault(in, RB_TRACKING_MALFORMED);
    snprintf(in, sizeof(in), "RB-%.5s-%.5s-%c\xC0", sym, sym + 5, sym[10]); /* bad UTF-8 */
    expect_fault(in, RB_TRACKING_MALFORMED);
    snprintf(in, sizeof(in), "RB-%.5s-%.5s-%c😀", sym, sym + 5, sym[10]);
    expect_fault(in, RB_TRACKING_MALFORMED);
    expect_fault("'; DROP TABLE cases; --", RB_TRACKING_MALFORMED);
    /* A very long input is refused without overflowing anything. */
    {
        char *big = rb_malloc(100001);
        memset(big, '7', 100000);
        big[100000] = '\0';
        expect_fault(big, RB_TRACKING_MALFORMED);
        free(big);
    }
    /* Same length, right alphabet, wrong check: a typo. */
    snprintf(in, sizeof(in), "RB-%.5s-%.5s-%c", sym, sym + 5,
             alphabet[(value_of(sym[10]) + 1) % 32]);
    expect_fault(in, RB_TRACKING_MISTYPED);
    /* why and fault may be NULL. */
    assert_int_equal(rb_tracking_parse_why("", t, NULL, NULL), RB_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_numbers_have_the_documented_shape),
        cmocka_unit_test(check_symbol_matches_the_reference),
        cmocka_unit_test(numbers_are_random_in_all_fifty_bits),
        cmocka_unit_test(every_single_substitution_is_caught),
        cmocka_unit_test(every_transposition_is_caught),
        cmocka_unit_test(parsing_is_forgiving_the_crockford_way),
        cmocka_unit_test(malformed_input_is_told_apart_from_a_typo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
