/* Fuzz: the YAML reader (config/yaml_doc.c) and the declarative field parser on its root. */
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "config/yaml_doc.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

struct out {
    char *s;
    long long i;
    int b;
    double d, dur;
    size_t sz;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct rb_conf_field fields[] = {
        {"s", RB_CONF_STRING, offsetof(struct out, s), 0, 0, 0},
        {"i", RB_CONF_INT, offsetof(struct out, i), 0, -5, 5},
        {"b", RB_CONF_BOOL, offsetof(struct out, b), 0, 0, 0},
        {"d", RB_CONF_DOUBLE, offsetof(struct out, d), 0, 0, 0},
        {"dur", RB_CONF_DURATION, offsetof(struct out, dur), 0, 0, 0},
        {"sz", RB_CONF_SIZE, offsetof(struct out, sz), 0, 0, 1 << 20},
    };
    struct rb_errors e;
    rb_errors_init(&e);
    struct rb_doc *doc = rb_doc_parse("fuzz.yaml", (const char *)data, size, &e);
    if (doc && doc->root && doc->root->type == RB_NODE_MAP) {
        struct out o = {0};
        rb_conf_parse(doc->root, "fuzz", fields, RB_ARRAY_LEN(fields), NULL, &o, &e);
        rb_conf_free(fields, RB_ARRAY_LEN(fields), &o);
    }
    for (size_t i = 0; i < e.n; i++)
        if (strlen(e.msgs[i]) == 0)
            abort(); /* every error says something */
    rb_doc_free(doc);
    rb_errors_free(&e);
    return 0;
}
