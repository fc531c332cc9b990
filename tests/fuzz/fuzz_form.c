/* Fuzz: the form-encoded body parser of the Open311 plugin (form_parse in
 * plugins/open311/open311.c): percent-decoding, '+', repeated keys, limits. */
#include <stdlib.h>
#include <string.h>

#include "plugins/open311/open311.c"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct form f;
    memset(&f, 0, sizeof(f));
    char why[256] = "";
    if (form_parse((const char *)data, size, &f, why, sizeof(why)) == 0) {
        for (size_t i = 0; i < 2 * f.n; i++)
            if (!f.kv[i])
                abort();
        (void)form_get(&f, "description");
    } else if (!why[0]) {
        abort(); /* a refusal says why */
    }
    form_free(&f);
    return 0;
}
