/* The FastAGI server: Asterisk (dialplan AGI, FastAGI URL) connects here once per call,
 * sends its agi_* header lines and a blank line, then waits for commands; each command gets
 * one reply line (ivr_parse.h). Everything runs on the event loop with bufferevents; one
 * struct rb_agi_conn is one call, however many there are at once.
 *
 * Ownership: a connection is handed to on_session once its headers are complete; from then on
 * its owner must call rb_agi_close exactly once. When the socket closes, the owner learns it
 * through the pending command's callback (reply NULL) or, between commands, through on_gone. */
#ifndef RB_IVR_AGI_H
#define RB_IVR_AGI_H

#include <stddef.h>

#include "ivr_parse.h"

struct event_base;
struct rb_agi;
struct rb_agi_conn;

typedef void (*rb_agi_session_fn)(struct rb_agi_conn *c, void *arg);
/* r NULL: the connection is gone (closed by Asterisk, a read error or time-out). r->code 0:
 * a line that is no reply (logged). Borrowed for the call. */
typedef void (*rb_agi_reply_fn)(struct rb_agi_conn *c, const struct rb_agi_reply *r, void *arg);
typedef void (*rb_agi_gone_fn)(struct rb_agi_conn *c, void *arg);

/* Listens on addr:port (port 0: any; rb_agi_port says which). Returns NULL with err. */
struct rb_agi *rb_agi_listen(struct event_base *base, const char *addr, int port,
                             rb_agi_session_fn on_session, rb_ivr_log_fn log, void *arg,
                             char *err, size_t errlen);
int rb_agi_port(const struct rb_agi *a);
size_t rb_agi_active(const struct rb_agi *a); /* connections open now */
/* Stops listening and closes every connection (owners are not called). */
void rb_agi_free(struct rb_agi *a);

/* A header's value ("agi_callerid"), or NULL. Borrowed. */
const char *rb_agi_env(const struct rb_agi_conn *c, const char *key);
/* Sends one command line (printf format, no newline). Exactly one fn call follows unless the
 * connection is closed first by rb_agi_close. RB_OK, RB_EINVAL (a command pending, or a line
 * with CR/LF), RB_ERR (gone). */
int rb_agi_cmd(struct rb_agi_conn *c, rb_agi_reply_fn fn, void *arg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void rb_agi_set_gone(struct rb_agi_conn *c, rb_agi_gone_fn fn, void *arg);
int rb_agi_hungup(const struct rb_agi_conn *c); /* "HANGUP" seen, or the socket closed */
void rb_agi_close(struct rb_agi_conn *c);

#endif
