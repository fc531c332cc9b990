/* Fuzz: Asterisk's two wire formats as the IVR plugin parses them (plugins/ivr_asterisk/
 * ivr_parse.c): FastAGI header lines and command replies, AMI's banner and its blank-line
 * framed "Key: Value" messages. The input is split at '\n' (a '\r' before it is dropped, as
 * the plugin's line reader does) and every line goes through every parser; AMI lines
 * accumulate into messages as they would on one connection. */
#include <stdlib.h>
#include <string.h>

#include "plugins/ivr_asterisk/ivr_parse.c"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static void one_line(const char *line, size_t len, struct rb_ami_msg *m)
{
    const char *key = NULL, *val = NULL;
    size_t klen = 0;
    int h = rb_agi_header(line, &key, &klen, &val);
    if (h == 1 && (key < line || key + klen > line + len || val < line || val > line + len ||
                   klen < 5 || strncmp(key, "agi_", 4) != 0))
        abort();
    struct rb_agi_reply r;
    enum rb_agi_line t = rb_agi_reply_parse(line, &r);
    if ((t == RB_AGI_REPLY || t == RB_AGI_USAGE) &&
        (memchr(r.result, '\0', sizeof(r.result)) == NULL ||
         memchr(r.data, '\0', sizeof(r.data)) == NULL))
        abort();
    (void)rb_agi_arg_ok(line);
    (void)rb_ami_value_ok(line);
    char ver[16];
    if (rb_ami_banner(line, ver, sizeof(ver)) == 1 && memchr(ver, '\0', sizeof(ver)) == NULL)
        abort();
    int a = rb_ami_msg_line(m, line);
    if (m->n > RB_AMI_FIELDS_MAX || m->used > sizeof(m->buf))
        abort();
    if (a == 1) {
        for (size_t i = 0; i < m->n; i++)
            if (rb_ami_get(m, m->key[i]) == NULL)
                abort();
        (void)rb_ami_get(m, "ActionID");
        (void)rb_ami_get(m, "Event");
    }
    if (a != 0)
        rb_ami_msg_reset(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rb_ami_msg *m = malloc(sizeof(*m));
    char *buf = malloc(size + 1);
    if (!m || !buf)
        abort();
    rb_ami_msg_reset(m);
    size_t at = 0;
    while (at <= size) {
        const uint8_t *nl = memchr(data + at, '\n', size - at);
        size_t raw = nl ? (size_t)(nl - (data + at)) : size - at, len = raw;
        memcpy(buf, data + at, len);
        if (len > 0 && buf[len - 1] == '\r')
            len--;
        buf[len] = '\0';
        one_line(buf, strlen(buf), m);
        if (!nl)
            break;
        at += raw + 1;
    }
    free(buf);
    free(m);
    return 0;
}
