/* Shared by fuzz_case.c and fuzz_photo.c: intake's validation (validate() in
 * core/intake/intake.c, reached by including the file) on the sample province's
 * configuration, loaded once. */
#ifndef RB_FUZZ_INTAKE_HARNESS_H
#define RB_FUZZ_INTAKE_HARNESS_H

#include <math.h>

#include "core/intake/intake.c"
#include "tests/fuzz/fuzz.h"

static struct rb_intake harness_in;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    rb_log_min_level = RB_LOG_ERROR + 1;
    struct rb_errors e;
    rb_errors_init(&e);
    harness_in.cfg = rb_config_load(RB_SOURCE_DIR "/config/rabta.yaml", &e);
    if (!harness_in.cfg)
        abort();
    rb_errors_free(&e);
    return 0;
}

/* Validates c; a refusal must say why. */
static void harness_validate(const struct rb_case_in *c)
{
    char why[512] = "";
    struct sub *s = validate(&harness_in, c, why, sizeof(why));
    if (s)
        sub_free(s);
    else if (!why[0])
        abort();
}

#endif
