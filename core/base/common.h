/* core/base/: the building blocks every other folder uses and that know nothing of cases: return
 * codes and allocation (common), the JSON-line log (log), metrics (metrics), input hygiene
 * (text), phone numbers (phone), tracking numbers (tracking), the token cache (token_cache), the
 * GCRA pace (pace) and the process's one global, struct rb_server (process.h, opaque pointers
 * only). Calls: libc, libsodium, jansson; nothing else of core. */
/* Shared basics for core: return codes, fatal errors, allocation that cannot fail. */
#ifndef RB_COMMON_H
#define RB_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <rabta/plugin.h> /* RB_OK, RB_ERR, ... and enum rb_log_level */

#define RB_VERSION "0.1.0"

#define RB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Out of memory and broken invariants: log file:line and abort. Never returns. */
#define rb_fatal(...) rb_fatal_at(__FILE__, __LINE__, __VA_ARGS__)
__attribute__((noreturn, format(printf, 3, 4))) void rb_fatal_at(const char *file, int line,
                                                                 const char *fmt, ...);
#define rb_assert(cond)                                                                       \
    do {                                                                                      \
        if (!(cond))                                                                          \
            rb_fatal("assertion failed: %s", #cond);                                          \
    } while (0)

/* Allocation: abort through rb_fatal on failure; callers never check for NULL. */
void *rb_malloc(size_t n);
void *rb_calloc(size_t n, size_t size);
void *rb_realloc(void *p, size_t n);
char *rb_strdup(const char *s);             /* NULL in, NULL out */
char *rb_strndup(const char *s, size_t n);
/* Returns a new string; caller frees. */
char *rb_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* As rb_sprintf, from a va_list (left as vsnprintf leaves it). New string; caller frees. */
char *rb_vsprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Monotonic clock in seconds; wall clock in seconds since the epoch. */
double rb_now_mono(void);
double rb_now_wall(void);

#endif
