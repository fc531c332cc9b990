/* Allocation that cannot fail, fatal errors, clocks. */
#include "base/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"

void rb_fatal_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rb_log_vwrite(RB_LOG_ERROR, "fatal", file, line, fmt, ap);
    va_end(ap);
    abort();
}

void *rb_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        rb_fatal("out of memory allocating %zu bytes", n);
    return p;
}

void *rb_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        rb_fatal("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *rb_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        rb_fatal("out of memory reallocating to %zu bytes", n);
    return q;
}

char *rb_strdup(const char *s)
{
    return s ? rb_strndup(s, strlen(s)) : NULL;
}

char *rb_strndup(const char *s, size_t n)
{
    char *p = rb_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *rb_vsprintf(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0)
        rb_fatal("bad format string %s", fmt);
    char *p = rb_malloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

char *rb_sprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = rb_vsprintf(fmt, ap);
    va_end(ap);
    return p;
}

double rb_now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double rb_now_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
