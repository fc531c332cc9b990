/* Fuzz: tracking numbers as people type them (base/tracking.c) and phone numbers in any
 * accepted form (base/phone.c). Whatever parses must round-trip. */
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/phone.h"
#include "base/tracking.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    char t[RB_TRACKING_LEN], t2[RB_TRACKING_LEN];
    if (rb_tracking_parse(s, t) == RB_OK) {
        if (rb_tracking_parse(t, t2) != RB_OK || strcmp(t, t2) != 0)
            abort(); /* a parsed number must parse to itself */
    }
    const char *why = NULL;
    char p[RB_PHONE_MAX], p2[RB_PHONE_MAX], last4[RB_PHONE_LAST4_LEN], masked[RB_PHONE_MAX];
    if (rb_phone_normalize(s, p, &why) == RB_OK) {
        if (rb_phone_normalize(p, p2, &why) != RB_OK || strcmp(p, p2) != 0)
            abort(); /* E.164 normalises to itself */
        rb_phone_last4(p, last4);
        rb_phone_mask(p, masked);
        (void)rb_phone_is_pk_mobile(p);
    }
    free(s);
    return 0;
}
