/* The AMI client: one TCP connection to Asterisk's manager port (5038). It reads the
 * "Asterisk Call Manager/x.y" banner, logs in (Action: Login), then sends actions (Originate
 * with Async: true and an ActionID) and hands every message that follows (responses and
 * events: OriginateResponse, Newchannel, Hangup, ...) to the owner. When the connection fails,
 * is closed or the login is refused, it says so in the log and connects again with back-off
 * (1 s, doubling, at most 30 s). Non-blocking on the event loop. */
#ifndef RB_IVR_AMI_H
#define RB_IVR_AMI_H

#include "ivr_parse.h"

struct event_base;
struct rb_ami;

/* Every message after the login, borrowed for the call. */
typedef void (*rb_ami_msg_fn)(const struct rb_ami_msg *m, void *arg);
/* up 1: logged in; 0: the connection is lost (actions sent and not answered may or may not
 * have been carried out). */
typedef void (*rb_ami_state_fn)(int up, void *arg);

struct rb_ami_opts {
    const char *host; /* IPv4 address */
    int port;
    const char *username, *secret;
};

/* Starts connecting at once. Strings are copied. NULL on a bad address. */
struct rb_ami *rb_ami_new(struct event_base *base, const struct rb_ami_opts *o,
                          rb_ami_msg_fn on_msg, rb_ami_state_fn on_state, rb_ivr_log_fn log,
                          void *arg);
int rb_ami_up(const struct rb_ami *a);
/* Sends an action: fields are "Key", "Value" pairs (n pairs); values must not hold CR/LF.
 * RB_OK, RB_EUNAVAIL (not logged in), RB_EINVAL. */
int rb_ami_action(struct rb_ami *a, const char *const *fields, size_t n);
void rb_ami_free(struct rb_ami *a);

#endif
