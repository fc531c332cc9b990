/* core/messages/: everything the server tells people. Queueing a rendered message with its send
 * job (message), the notices citizens get on case events (notice) and the people an
 * escalation names (escalation). Calls: base, config, db, jobs, cases, lua, sla. */
/* Outgoing messages: the one statement that renders a template (core/lua/templates.c) and
 * stores a message with its send job (SQL rabta_message_queue), its run_at put past the quiet hours
 * (core/config/quiet.c) for a message that is not urgent (docs/sms.md, "Templates", "Quiet
 * hours").
 *
 * Owns: queueing messages. Calls: lua (templates), config (quiet hours, zones), db, sla (the
 * calendar's zone). */
#ifndef RB_MESSAGE_H
#define RB_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config/yaml_doc.h"
#include "db/db.h"

struct rb_script;
struct rb_tz;
struct rb_server;

/* ---- quiet hours ----------------------------------------------------------------------- */

/* The server's quiet hours (messages.quiet_hours in its zone) at this moment; 0 outside. */
double rb_message_quiet_wait(struct rb_server *srv);

/* ---- queueing ----------------------------------------------------------------------------- */

struct rb_message_req {
    const char *template; /* a template name */
    const char *language; /* "ur" or "en" */
    const json_t *params; /* borrowed; may be NULL */
    const char *channel;  /* a channel with a sender (messages/sender.h): "sms", "email" */
    const char *to;       /* E.164 phone for sms, an address for email */
    long long case_id, citizen_id, event_id; /* 0: none. event_id: one message per event,
                                              * template and address */
    int notice;           /* not sent to citizens who opted out (STOP) */
    int urgent;           /* sent at once even in quiet hours */
    const char *subject_template; /* rendered as the subject (e-mail), or NULL */
    const char *data_json; /* what the sender needs beyond address and text (a call's script):
                            * a JSON object of at most RB_MESSAGE_DATA_MAX bytes, or NULL */
};

/* Called once the message is stored: id > 0, or 0 for a duplicate of the event's message;
 * err set on failure. */
typedef void (*rb_message_fn)(long long id, const char *err, void *arg);

/* Renders the template and stores the messages row and its 'message.send.<channel>' job in
 * one statement, SQL rabta_message_queue (the job due at the end of quiet hours for a message
 * that is not urgent). The channel must have a sender in this process (the SQL function
 * cannot know the loaded plugins, so it is checked here). RB_OK (fn called later, once),
 * RB_EINVAL with why (nothing stored, fn not called: a bad request, a template that does not
 * render, a channel nobody sends), or a database error code (fn not called). */
int rb_message_queue(struct rb_server *srv, const struct rb_message_req *m, rb_message_fn fn,
                     void *arg, char *why, size_t whylen);

/* Renders and stores n messages in ONE statement (job handlers that send many at once).
 * refused[i] is set to 1 for a message whose template would not render or whose channel has
 * no sender (logged; not stored). fn gets the ids stored (a duplicate of an event's message has no row). RB_OK (fn
 * called later, once), RB_ENOTFOUND when nothing was left to store (fn not called), or a
 * database error code (fn not called). */
int rb_message_queue_many(struct rb_server *srv, const struct rb_message_req *const *m,
                          size_t n, int *refused, rb_db_fn fn, void *arg);

/* Forgets the cached quiet-hours zone (shutdown). */
void rb_message_cleanup(void);

#endif
