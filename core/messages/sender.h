/* Senders by channel: which plugin sends each channel's messages, and the send job that
 * hands it one message at a time (docs/plugins.md, "A channel's sender").
 *
 * The channels are what the loaded plugins register: core knows no list of them. A message is
 * stored with a job of kind "message.send.<channel>" (SQL rabta_message_queue); the job's
 * handler here loads the message, skips one sent before, fails a notice to a citizen who
 * opted out, waits out quiet hours for what is not urgent (the job put off, no attempt
 * counted), and calls the channel's sender, which reports once with rb_sender_done (the job's
 * lease is renewed until then: a send is never handed to a second process); the message row (status, sent_at, last_error,
 * attempts) is written here, never by the plugin.
 *
 * Owns: the registry (one per process, srv->senders) and the send jobs. Calls: base, db,
 * jobs, and message.h (quiet hours). */
#ifndef RB_SENDER_H
#define RB_SENDER_H

#include <stddef.h>

#include <rabta/plugin.h>

#include "config/yaml_doc.h"

struct rb_server;
struct rb_senders;

struct rb_senders *rb_senders_new(void);
void rb_senders_free(struct rb_senders *s);

/* Registers owner (a plugin's name, copied) as the sender of channel (copied): its send jobs
 * are handed to fn. With srv->jobs set, the job kind "message.send.<channel>" is registered
 * (without it, as under --check, only the registry learns the channel). RB_OK; RB_EINVAL (a
 * channel name not of [a-z][a-z0-9_]{0,31}); RB_EEXIST (another owner sends it): why gets a
 * sentence naming both owners. */
int rb_sender_register(struct rb_server *srv, const char *channel, const char *owner,
                       rb_plugin_send_fn fn, void *arg, char *why, size_t whylen);

/* 1 when some loaded plugin sends channel. */
int rb_sender_has(const struct rb_server *srv, const char *channel);

/* RB_OK when channel has a sender; otherwise RB_EINVAL with the sentence in why. */
int rb_sender_check(const struct rb_server *srv, const char *channel, char *why,
                    size_t whylen);

/* The registered channels as "a, b, c" (at most len bytes into out; "none" when empty). */
void rb_sender_list(const struct rb_server *srv, char *out, size_t len);

/* Ends one send (host API message_done). */
void rb_sender_done(struct rb_message_send *send, enum rb_send_outcome outcome,
                    double retry_after, const char *error, const char *gateway_ref);

struct rb_sla;
/* Adds "file:line:col: ..." to errs for every configured use of a channel that has no sender
 * (the via: of sla's escalation actions other than "inbox", the staff notifications; sla may
 * be NULL). */
void rb_sender_check_config(const struct rb_server *srv, const struct rb_sla *sla,
                            struct rb_errors *errs);

#endif
