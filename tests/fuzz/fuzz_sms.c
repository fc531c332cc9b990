/* Fuzz: the SMS text parsers of the Kannel plugin (plugins/sms_kannel/sms_text.c): commands,
 * language, "reply to a case" prefixes, UTF-8 checks, URL encoding. */
#include <stdlib.h>
#include <string.h>

#include "plugins/sms_kannel/sms_text.c"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char arg[64], word[32];
    const char *lang = NULL;
    enum rb_sms_cmd c = rb_sms_command(s, size, arg, sizeof(arg), &lang);
    if (strlen(arg) >= sizeof(arg) || !rb_sms_cmd_name(c))
        abort();
    (void)rb_sms_language(s, size);
    (void)rb_sms_utf8_valid(s, size);
    (void)rb_sms_field_valid(s, size);
    size_t at = rb_sms_reply_prefix(s, size, word, sizeof(word));
    if (at > size || strlen(word) >= sizeof(word))
        abort();
    char *z = malloc(size + 1);
    memcpy(z, data, size);
    z[size] = '\0';
    free(rb_sms_urlencode(z));
    free(z);
    return 0;
}
