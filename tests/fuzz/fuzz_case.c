/* Fuzz: a case as JSON (the app's body) through intake's validation: kinds, services,
 * districts, phones, e-mail, coordinates, ratings, texts (hygiene, limits), the channels' extras (origin, reply, hold). */
#include "tests/fuzz/intake_harness.h"

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t err;
    json_t *o = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err);
    if (!o)
        return 0;
    if (json_is_object(o)) {
        struct rb_case_in c;
        memset(&c, 0, sizeof(c));
        c.kind = str(o, "kind");
        c.service = str(o, "service");
        c.district = str(o, "district");
        c.text = str(o, "text");
        c.text_len = c.text ? json_string_length(json_object_get(o, "text")) : 0;
        c.channel = str(o, "channel") ? str(o, "channel") : "app";
        c.language = str(o, "language");
        c.phone = str(o, "phone");
        c.email = str(o, "email");
        json_t *lat = json_object_get(o, "lat"), *lon = json_object_get(o, "lon");
        c.lat = json_is_number(lat) ? json_number_value(lat) : NAN;
        c.lon = json_is_number(lon) ? json_number_value(lon) : NAN;
        c.anonymous = json_is_true(json_object_get(o, "anonymous"));
        c.official = str(o, "official");
        c.rating = (int)json_integer_value(json_object_get(o, "rating"));
        /* the channels' extras: an origin (JSON text), a reply, a hold */
        struct rb_case_extra x[3];
        size_t nx = 0;
        if (str(o, "origin"))
            x[nx++] = (struct rb_case_extra){RB_CASE_EXTRA_ORIGIN, str(o, "origin"), NULL, NULL};
        if (str(o, "reply"))
            x[nx++] = (struct rb_case_extra){RB_CASE_EXTRA_REPLY, str(o, "reply"),
                                             str(o, "reply_channel"), str(o, "reply_to")};
        if (str(o, "hold"))
            x[nx++] = (struct rb_case_extra){RB_CASE_EXTRA_HOLD, NULL, str(o, "hold"), NULL};
        c.extras = x;
        c.nextras = nx;
        c.idem_key = str(o, "idempotency_key");
        if (c.idem_key) {
            c.idem_scope = "fuzz";
            c.idem_hash = "00";
        }
        harness_validate(&c);
    }
    json_decref(o);
    return 0;
}
