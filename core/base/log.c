/* Structured JSON-line logging. */
#include "base/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int rb_log_min_level = RB_LOG_INFO;
static int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int rb_log_level_parse(const char *name)
{
    for (size_t i = 0; i < RB_ARRAY_LEN(level_names); i++)
        if (name && strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

int rb_log_set_fd(int fd)
{
    int old = log_fd;
    log_fd = fd;
    return old;
}

/* Appends s to buf as JSON string content (without quotes), escaping as needed. */
static size_t json_escape(char *buf, size_t cap, size_t pos, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[pos++] = '\\';
            buf[pos++] = (char)c;
        } else if (c == '\n') {
            buf[pos++] = '\\';
            buf[pos++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            buf[pos++] = '\\';
            buf[pos++] = 'u';
            buf[pos++] = '0';
            buf[pos++] = '0';
            buf[pos++] = hex[c >> 4];
            buf[pos++] = hex[c & 15];
        } else {
            buf[pos++] = (char)c;
        }
    }
    return pos;
}

void rb_log_vwrite(int level, const char *ctx, const char *file, int line, const char *fmt,
                   va_list ap)
{
    char msg[2048];
    char out[4096 + 512];
    int saved_errno = errno;

    vsnprintf(msg, sizeof(msg), fmt, ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t wl = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + wl, sizeof(when) - wl, ".%03ldZ", ts.tv_nsec / 1000000);

    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    if (level < 0 || level > RB_LOG_ERROR)
        level = RB_LOG_ERROR;

    size_t pos = (size_t)snprintf(out, sizeof(out), "{\"ts\":\"%s\",\"level\":\"%s\",", when,
                                  level_names[level]);
    if (ctx && *ctx) {
        memcpy(out + pos, "\"ctx\":\"", 7);
        pos += 7;
        pos = json_escape(out, sizeof(out) - 64, pos, ctx);
        out[pos++] = '"';
        out[pos++] = ',';
    }
    memcpy(out + pos, "\"msg\":\"", 7);
    pos += 7;
    pos = json_escape(out, sizeof(out) - 128, pos, msg);
    pos += (size_t)snprintf(out + pos, sizeof(out) - pos, "\",\"src\":\"%s:%d\"}\n", base, line);
    if (pos > sizeof(out))
        pos = sizeof(out);
    /* One write() per line so lines from several processes do not interleave. */
    ssize_t w = write(log_fd, out, pos);
    (void)w;
    errno = saved_errno;
}

void rb_log_write(int level, const char *ctx, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rb_log_vwrite(level, ctx, file, line, fmt, ap);
    va_end(ap);
}
