/* Structured logging: one JSON object per line on stderr (or a file).
 *
 *   rb_log(RB_LOG_INFO, "req-42", "listening on %s:%d", addr, port);
 *
 * The macro skips formatting below the configured level. ctx is a short context string (a
 * request id, a case id, a plugin name) or NULL. */
#ifndef RB_LOG_H
#define RB_LOG_H

#include <stdarg.h>
#include "base/common.h"

#define rb_log(level, ctx, ...)                                                               \
    do {                                                                                      \
        if ((int)(level) >= rb_log_min_level)                                                 \
            rb_log_write((level), (ctx), __FILE__, __LINE__, __VA_ARGS__);                    \
    } while (0)

#define rb_debug(ctx, ...) rb_log(RB_LOG_DEBUG, ctx, __VA_ARGS__)
#define rb_info(ctx, ...) rb_log(RB_LOG_INFO, ctx, __VA_ARGS__)
#define rb_warn(ctx, ...) rb_log(RB_LOG_WARN, ctx, __VA_ARGS__)
#define rb_error(ctx, ...) rb_log(RB_LOG_ERROR, ctx, __VA_ARGS__)

/* The level below which nothing is formatted. Part of the process-wide logging state, the
 * one piece of global state besides the server struct (it must work before config loads). */
extern int rb_log_min_level;

void rb_log_write(int level, const char *ctx, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void rb_log_vwrite(int level, const char *ctx, const char *file, int line, const char *fmt,
                   va_list ap) __attribute__((format(printf, 5, 0)));

/* Repeats: of the same warning or error (the same call site, file:line, and the same text)
 * the first RB_LOG_REPEAT_BURST in each RB_LOG_REPEAT_WINDOW seconds are written; the rest are
 * counted,
 * and once the window is over (at the next line written, or at rb_log_flush) the site writes
 * ONE line "N more like this in the last W s were not written; the last: <message>" with
 * "suppressed":N. A flood of one warning (a message refused 100,000 times) is then a few
 * lines per window, never 100,000. */
#define RB_LOG_REPEAT_BURST 10
#define RB_LOG_REPEAT_WINDOW 10.0

/* Writes the counts of the lines held back so far (at shutdown). */
void rb_log_flush(void);

/* "debug", "info", "warn", "error" -> level, or -1. */
int rb_log_level_parse(const char *name);
/* Redirect output to fd (default 2). Returns the previous fd. */
int rb_log_set_fd(int fd);

#endif
