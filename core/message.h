/* Outgoing messages: templates from lua/templates.lua, quiet hours, and the one statement
 * that stores a message and its 'message.send' job (docs/sms.md, "Templates", "Quiet hours").
 *
 * Templates are declared in Lua (template("name", {en = "...", ur = "..."})) and compiled
 * with the rules (core/script.c); rendering replaces {placeholders} with values from a JSON
 * object and runs no Lua. The names the code uses, and the placeholders each may use, are
 * the table in message.c: a templates file that lacks one, or misspells a placeholder, is
 * refused at --check, start and reload with lua/templates.lua:LINE.
 *
 * Quiet hours ("21:00-08:00" in a time zone, messages: in rabta.yaml): a message that is not
 * urgent and falls due inside them waits for their end (the job's run_at), never a sleep. */
#ifndef RB_MESSAGE_H
#define RB_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "conf.h"
#include "db.h"

struct rb_script;
struct rb_tz;
struct rb_server;

#define RB_TEMPLATES_MODULE "templates"
/* Longest template text and longest rendered message, in characters (code points): about
 * two GSM parts, five Urdu (UCS-2, 67 a part) parts. */
#define RB_TEMPLATE_MAX_CHARS 320

/* ---- templates ---------------------------------------------------------------------------- */

/* 1 when name (len bytes) is a template name: [a-z0-9_.], 1..63, starting with a letter. */
int rb_template_name_ok(const char *name, size_t len);
/* NULL when text can be a template; else a static reason that reads after "the en text ":
 * "is empty", "is not valid UTF-8", "has a malformed placeholder ...", "is longer than ...". */
const char *rb_template_text_check(const char *text, size_t len);
/* Replaces each {name} of text with params[name] (a string, or a number written as such).
 * Returns a new string (caller frees), or NULL with why set (a placeholder without a value). */
char *rb_template_fill(const char *text, const json_t *params, char *why, size_t whylen);
/* Renders template name in language ("ur" or "en"; anything else: "ur") from the rules set.
 * Returns a new string (caller frees), or NULL with why (no such template, missing value,
 * rendered text longer than RB_TEMPLATE_MAX_CHARS). */
char *rb_template_render(const struct rb_script *s, const char *name, const char *language,
                         const json_t *params, char *why, size_t whylen);
/* Load-time check of a rules set's templates: the required ones exist, use only their
 * placeholders, and every template renders in both languages within the length limit.
 * Adds "lua/templates.lua:LINE: ..." errors. */
void rb_templates_check(const struct rb_script *s, struct rb_errors *errs);

/* ---- quiet hours -------------------------------------------------------------------------- */

struct rb_quiet {
    int start, end; /* seconds after local midnight; start == end: no quiet hours */
};

/* "HH:MM-HH:MM" (24-hour; the window may cross midnight). RB_OK or RB_EINVAL. */
int rb_quiet_parse(const char *spec, struct rb_quiet *q);
/* Seconds from instant t (UTC) until the quiet hours around it end, in zone tz; 0 when t is
 * outside them. */
int64_t rb_quiet_wait(const struct rb_quiet *q, const struct rb_tz *tz, int64_t t);
/* The server's quiet hours (messages.quiet_hours in its zone) at this moment; 0 outside. */
double rb_message_quiet_wait(struct rb_server *srv);

/* ---- queueing ----------------------------------------------------------------------------- */

struct rb_message_req {
    const char *template; /* a template name */
    const char *language; /* "ur" or "en" */
    const json_t *params; /* borrowed; may be NULL */
    const char *channel;  /* "sms" */
    const char *to;       /* E.164 phone for sms */
    long long case_id, citizen_id, event_id; /* 0: none. event_id: one message per event,
                                              * template and address */
    int notice;           /* not sent to citizens who opted out (STOP) */
    int urgent;           /* sent at once even in quiet hours */
};

/* Called once the message is stored: id > 0, or 0 for a duplicate of the event's message;
 * err set on failure. */
typedef void (*rb_message_fn)(long long id, const char *err, void *arg);

/* Renders the template and stores the messages row and its 'message.send' job in one
 * statement (the job due at the end of quiet hours for a message that is not urgent).
 * RB_OK (fn called later, once), RB_EINVAL with why (nothing stored, fn not called), or a
 * database error code (fn not called). */
int rb_message_queue(struct rb_server *srv, const struct rb_message_req *m, rb_message_fn fn,
                     void *arg, char *why, size_t whylen);

/* Renders and stores n messages in ONE statement (job handlers that send many at once).
 * refused[i] is set to 1 for a message whose template would not render (logged; not
 * stored). fn gets the ids stored (a duplicate of an event's message has no row). RB_OK (fn
 * called later, once), RB_ENOTFOUND when nothing was left to store (fn not called), or a
 * database error code (fn not called). */
int rb_message_queue_many(struct rb_server *srv, const struct rb_message_req *const *m,
                          size_t n, int *refused, rb_db_fn fn, void *arg);

/* Forgets the cached quiet-hours zone (shutdown). */
void rb_message_cleanup(void);

#endif
