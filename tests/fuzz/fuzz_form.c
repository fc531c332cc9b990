/* Fuzz: the form-encoded body parser of the Open311 plugin (form_parse in
 * plugins/open311/open311_form.c): percent-decoding, '+', repeated keys, limits. */
#include <stdlib.h>
#include <string.h>

#include "plugins/open311/open311_form.c"
#include "tests/fuzz/fuzz.h"

/* open311_form.c's POST path answers errors through open311_out.c, which is not linked here:
 * the fuzzer calls only the parser, never that path. */
void o311_error(struct rb_http_req *req, int status, enum o311_fmt fmt, const char *msgfmt, ...)
{
    (void)req, (void)status, (void)fmt, (void)msgfmt;
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct o311_form f;
    memset(&f, 0, sizeof(f));
    char why[256] = "";
    if (form_parse((const char *)data, size, &f, why, sizeof(why)) == 0) {
        for (size_t i = 0; i < 2 * f.n; i++)
            if (!f.kv[i])
                abort();
        (void)o311_form_get(&f, "description");
    } else if (!why[0]) {
        abort(); /* a refusal says why */
    }
    form_free(&f);
    return 0;
}
