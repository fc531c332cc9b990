/* FastAGI and AMI line formats (see ivr_parse.h). */
#include "ivr_parse.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void rb_ivr_logf(rb_ivr_log_fn log, void *arg, int level, const char *fmt, ...)
{
    if (!log)
        return;
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log(level, msg, arg);
}

int rb_agi_header(const char *line, const char **key, size_t *klen, const char **val)
{
    if (line[0] == '\0')
        return 0;
    if (strncmp(line, "agi_", 4) != 0)
        return -1;
    const char *p = line + 4;
    while (*p && (islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
        p++;
    if (*p != ':' || p == line + 4)
        return -1;
    *key = line;
    *klen = (size_t)(p - line);
    p++;
    while (*p == ' ')
        p++;
    *val = p;
    return 1;
}

/* Copies the token at *p (up to a space) into out; moves *p past it. */
static void token(const char **p, char *out, size_t outlen)
{
    size_t n = 0;
    while (**p && **p != ' ') {
        if (n + 1 < outlen)
            out[n++] = **p;
        (*p)++;
    }
    out[n] = '\0';
}

static int parse_200(const char *p, struct rb_agi_reply *r)
{
    while (*p == ' ')
        p++;
    if (*p == '\0')
        return RB_AGI_REPLY; /* "200" alone */
    if (strncmp(p, "result=", 7) != 0)
        return RB_AGI_BAD;
    p += 7;
    r->has_result = 1;
    token(&p, r->result, sizeof(r->result));
    char *end;
    long v = strtol(r->result, &end, 10);
    if (r->result[0] && *end == '\0') {
        r->num = v;
        r->is_num = 1;
    }
    while (*p) {
        while (*p == ' ')
            p++;
        if (*p == '(') {
            const char *close = strchr(p, ')');
            if (!close)
                return RB_AGI_BAD;
            size_t n = (size_t)(close - p - 1);
            if (n >= sizeof(r->data))
                n = sizeof(r->data) - 1;
            memcpy(r->data, p + 1, n);
            r->data[n] = '\0';
            p = close + 1;
        } else if (strncmp(p, "endpos=", 7) == 0) {
            p += 7;
            r->endpos = strtol(p, &end, 10);
            if (end == p)
                return RB_AGI_BAD;
            p = end;
        } else if (*p) {
            char skip[64]; /* other name=value pairs (results= of speech) */
            token(&p, skip, sizeof(skip));
        }
    }
    return RB_AGI_REPLY;
}

enum rb_agi_line rb_agi_reply_parse(const char *line, struct rb_agi_reply *r)
{
    memset(r, 0, sizeof(*r));
    r->endpos = -1;
    if (strcmp(line, "HANGUP") == 0)
        return RB_AGI_HANGUP;
    if (strlen(line) < 3 || !isdigit((unsigned char)line[0]) ||
        !isdigit((unsigned char)line[1]) || !isdigit((unsigned char)line[2]))
        return RB_AGI_BAD;
    r->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    char sep = line[3];
    if (r->code == 520 && sep == '-')
        return RB_AGI_USAGE;
    if (sep != ' ' && sep != '\0')
        return RB_AGI_BAD;
    switch (r->code) {
    case 200:
        return (enum rb_agi_line)parse_200(line + 3, r);
    case 510:
    case 511:
    case 520:
        snprintf(r->data, sizeof(r->data), "%s", sep ? line + 4 : "");
        return RB_AGI_REPLY;
    default:
        return RB_AGI_BAD;
    }
}

int rb_agi_arg_ok(const char *s)
{
    return s && strlen(s) <= 256 && !strpbrk(s, "\r\n");
}

int rb_ami_banner(const char *line, char *ver, size_t verlen)
{
    static const char pre[] = "Asterisk Call Manager/";
    if (strncmp(line, pre, sizeof(pre) - 1) != 0)
        return 0;
    const char *v = line + sizeof(pre) - 1;
    if (!isdigit((unsigned char)v[0]))
        return 0;
    snprintf(ver, verlen, "%s", v);
    return 1;
}

void rb_ami_msg_reset(struct rb_ami_msg *m)
{
    m->n = 0;
    m->used = 0;
}

int rb_ami_msg_line(struct rb_ami_msg *m, const char *line)
{
    if (line[0] == '\0')
        return m->n > 0 ? 1 : 0;
    const char *colon = strchr(line, ':');
    if (!colon || colon == line)
        return -1;
    for (const char *p = line; p < colon; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '(' && *p != ')')
            return -1;
    size_t len = strlen(line);
    if (m->n >= RB_AMI_FIELDS_MAX || m->used + len + 2 > sizeof(m->buf))
        return -1;
    char *k = m->buf + m->used;
    memcpy(k, line, len + 1);
    m->used += len + 1;
    k[colon - line] = '\0';
    char *v = k + (colon - line) + 1;
    while (*v == ' ')
        v++;
    m->key[m->n] = k;
    m->val[m->n] = v;
    m->n++;
    return 0;
}

const char *rb_ami_get(const struct rb_ami_msg *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcasecmp(m->key[i], key) == 0)
            return m->val[i];
    return NULL;
}

int rb_ami_value_ok(const char *s)
{
    return s && strlen(s) <= 512 && !strpbrk(s, "\r\n");
}
