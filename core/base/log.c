/* Structured JSON-line logging. */
#include "base/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
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

/* Writes one line; suppressed > 0 adds "suppressed":N. */
static void write_line(int level, const char *ctx, const char *file, int line, const char *msg,
                       unsigned long suppressed)
{
    char out[4096 + 512];
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
    pos += (size_t)snprintf(out + pos, sizeof(out) - pos, "\",\"src\":\"%s:%d\"", base, line);
    if (suppressed > 0 && pos < sizeof(out))
        pos += (size_t)snprintf(out + pos, sizeof(out) - pos, ",\"suppressed\":%lu", suppressed);
    if (pos < sizeof(out))
        pos += (size_t)snprintf(out + pos, sizeof(out) - pos, "}\n");
    if (pos > sizeof(out))
        pos = sizeof(out);
    /* One write() per line so lines from several processes do not interleave. */
    ssize_t w = write(log_fd, out, pos);
    (void)w;
}

/* ---- repeats: per call site, RB_LOG_REPEAT_BURST lines a window, the rest counted -------- */

#define SITES 32

struct site {
    const char *file; /* borrowed: __FILE__ of the call site; NULL: free slot */
    const char *fmt;  /* borrowed: its format (plugins' lines all come from "plugin":0) */
    uint64_t hash;    /* of the line's text: only the same line repeated is held back */
    int line, level;
    double start;              /* monotonic: the current window's start */
    unsigned written;          /* lines written in the window */
    unsigned long suppressed;  /* lines held back in the window */
    char ctx[64], last[512];   /* the last line held back */
};

static struct site sites[SITES];
static pthread_mutex_t sites_mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t text_hash(const char *s) /* FNV-1a */
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Copies src into dst[cap], cut to fit at a character's start. */
static void copy_cut(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) { /* not inside a UTF-8 sequence */
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Writes the count of what s held back (if anything) and starts a new window at now. */
static void site_flush(struct site *s, double now)
{
    if (s->suppressed > 0) {
        char msg[1024];
        snprintf(msg, sizeof(msg),
                 "%lu more like this in the last %.0f s were not written; the last: %s",
                 s->suppressed, now - s->start, s->last);
        write_line(s->level, s->ctx[0] ? s->ctx : NULL, s->file, s->line, msg, s->suppressed);
    }
    s->start = now;
    s->written = 0;
    s->suppressed = 0;
}

/* Whether the line msg of file:line (format fmt) may be written now (else it is counted); flushes the sites
 * whose window is over. Called with sites_mu held. */
static int site_admit(int level, const char *ctx, const char *file, int line, const char *fmt,
                      const char *msg)
{
    double now = mono_now();
    uint64_t hash = text_hash(msg);
    struct site *mine = NULL, *oldest = &sites[0];
    for (size_t i = 0; i < SITES; i++) {
        struct site *s = &sites[i];
        if (s->file && now - s->start >= RB_LOG_REPEAT_WINDOW)
            site_flush(s, now);
        if (s->file == file && s->line == line && s->fmt == fmt && s->hash == hash)
            mine = s;
        if (!s->file || (oldest->file && s->start < oldest->start))
            oldest = s;
    }
    if (!mine) {
        mine = oldest;
        if (mine->file)
            site_flush(mine, now);
        *mine = (struct site){.file = file, .fmt = fmt, .hash = hash, .line = line, .start = now};
    }
    mine->level = level;
    if (mine->written < RB_LOG_REPEAT_BURST) {
        mine->written++;
        return 1;
    }
    mine->suppressed++;
    copy_cut(mine->ctx, sizeof(mine->ctx), ctx ? ctx : "");
    copy_cut(mine->last, sizeof(mine->last), msg);
    return 0;
}

void rb_log_flush(void)
{
    pthread_mutex_lock(&sites_mu);
    double now = mono_now();
    for (size_t i = 0; i < SITES; i++)
        if (sites[i].file)
            site_flush(&sites[i], now);
    pthread_mutex_unlock(&sites_mu);
}

void rb_log_vwrite(int level, const char *ctx, const char *file, int line, const char *fmt,
                   va_list ap)
{
    char msg[2048];
    int saved_errno = errno;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (level >= RB_LOG_WARN) {
        pthread_mutex_lock(&sites_mu);
        if (site_admit(level, ctx, file, line, fmt, msg))
            write_line(level, ctx, file, line, msg, 0);
        pthread_mutex_unlock(&sites_mu);
    } else {
        write_line(level, ctx, file, line, msg, 0);
    }
    errno = saved_errno;
}

void rb_log_write(int level, const char *ctx, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rb_log_vwrite(level, ctx, file, line, fmt, ap);
    va_end(ap);
}
