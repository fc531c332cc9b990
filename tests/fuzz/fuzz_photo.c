/* Fuzz: photo sniffing in intake's validation: the bytes of an attached photo, with and
 * without a declared type, on an otherwise valid case. */
#include "tests/fuzz/intake_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rb_case_in c;
    memset(&c, 0, sizeof(c));
    c.kind = "complaint";
    c.service = "arms_licence";
    c.text = "the office was closed";
    c.text_len = strlen(c.text);
    c.channel = "app";
    c.anonymous = 1;
    c.lat = c.lon = NAN;
    c.photo = data;
    c.photo_len = size;
    harness_validate(&c);
    c.photo_type = size && data[0] & 1 ? "image/png" : "image/jpeg";
    harness_validate(&c);
    return 0;
}
