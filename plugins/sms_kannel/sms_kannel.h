/* The SMS channel through Kannel: internals shared by the plugin's files.
 *
 *   sms_kannel.c  configuration, routes, the job handler's registration
 *   sms_text.c    pure text work: UTF-8, script detection, digits, commands, flood limit
 *                 (the reply texts are templates in lua/templates.lua)
 *   sms_mo.c      GET/POST /sms/kannel/mo (Kannel's sms-service): complaints, answers to an
 *                 officer's question, commands
 *   sms_mt.c      the sender of channel "sms" (sendsms), delivery reports
 */
#ifndef RB_SMS_KANNEL_H
#define RB_SMS_KANNEL_H

#include <stddef.h>

#include <rabta/plugin.h>

/* The job kind of this channel's sends (core's "message.send.<channel>"), paced to `rate`. */
#define RB_SMS_SEND_KIND "message.send.sms"

struct rb_sms_conf {
    char *secret;       /* owned; required: Kannel's get-url carries ?secret=... */
    char *sendsms_url;  /* owned; NULL: http://127.0.0.1:13013/cgi-bin/sendsms */
    char *username;     /* owned; sendsms-user */
    char *password;     /* owned */
    char *sender;       /* owned; the short code our SMS come from; NULL: "8080" */
    char *dlr_base;     /* owned; how Kannel reaches us, e.g. http://127.0.0.1:8080 */
    double rate;        /* messages per second to the gateway */
    long long burst;    /* bucket size */
    double timeout;     /* seconds for one sendsms request */
    long long max_text; /* bytes of one MO text */
    long long flood_max;  /* texts one phone may send within flood_window; 0: no limit */
    double flood_window;  /* seconds */
};

/* Shared by the plugin's files; set once in init. */
extern const struct rb_host_api *rb_sms_api;
extern struct rb_sms_conf rb_sms_conf;

/* ---- sms_text.c ---------------------------------------------------------------------- */

enum rb_sms_cmd {
    RB_SMS_COMPLAINT = 0, /* free text */
    RB_SMS_STATUS,
    RB_SMS_HELP,
    RB_SMS_STOP,
    RB_SMS_START,
    RB_SMS_RATING, /* a lone 1 or 2: the answer to a resolve notice's "reply 1 or 2" */
    RB_SMS_FLOOD,  /* any text past the flood limit (stored, no case) */
    RB_SMS_REPLY,  /* free text answering an officer's question (decided in sms_mo.c: the
                      phone's citizen has a case awaiting their answer) */
    RB_SMS_SURVEY, /* an answer to an outreach survey (decided by the host: survey_answer) */
};

enum rb_sms_flood {
    RB_SMS_FLOOD_OK = 0, /* within the limit */
    RB_SMS_FLOOD_REPLY,  /* the first text past it: one polite reply */
    RB_SMS_FLOOD_SILENT, /* the following ones: stored, no answer */
};

/* 1 if s[0..len) is well-formed UTF-8 without NUL bytes. */
int rb_sms_utf8_valid(const char *s, size_t len);
/* 1 if s[0..len) is well-formed UTF-8 without control characters (a one-line field). */
int rb_sms_field_valid(const char *s, size_t len);
/* "ur" if the text holds an Arabic-script letter, else "en". */
const char *rb_sms_language(const char *s, size_t len);
/* Recognises a command. For STATUS, arg receives the rest with Urdu/Arabic digits made
 * ASCII and spaces removed (argsz bytes, NUL-terminated; "" when none). *lang is the
 * language of the keyword ("ur" for حالت / مدد, "en" for the English words). */
enum rb_sms_cmd rb_sms_command(const char *s, size_t len, char *arg, size_t argsz,
                               const char **lang);
/* An answer that names its case first ("RB-7K3M9-QXPD2-3 the street is ..."): when the
 * text's first word (after spaces and an optional '#') is "RB" followed by exactly 11 ASCII
 * letters or digits (Urdu/Arabic digits count as digits; '-', '.' and '_' between them), copies
 * that word, digits made ASCII, to out (outsz bytes, NUL-terminated) and returns the byte
 * offset where the answer begins (past spaces and ':' ',' ';' '-' '.' '،' '؛' '۔'). Returns 0,
 * out "", when the text does not start so, the word is too long for out, or nothing follows
 * the number. The word may still be mistyped: check it with tracking_parse. */
size_t rb_sms_reply_prefix(const char *s, size_t len, char *out, size_t outsz);
/* Name of a command, as stored in sms_mo.command. */
const char *rb_sms_cmd_name(enum rb_sms_cmd c);
/* The flood limit per phone: more than max texts within window seconds (from the first) are
 * over it. Counts this text. Per process; at most 4096 phones are tracked at once. */
enum rb_sms_flood rb_sms_flood_check(const char *phone, double now, long long max,
                                     double window);
void rb_sms_flood_reset(void); /* tests */
/* Percent-encodes s for a query string. Returns a new string; caller frees. */
char *rb_sms_urlencode(const char *s);
/* Constant-time string comparison; 1 when equal. */
int rb_sms_secret_ok(const char *given, const char *want);

/* ---- sms_mo.c / sms_mt.c ------------------------------------------------------------- */

void rb_sms_on_mo(struct rb_http_req *req, void *arg);   /* arg: plugin ctx */
void rb_sms_on_dlr(struct rb_http_req *req, void *arg);  /* arg: plugin ctx */
void rb_sms_send(struct rb_message_send *send, const struct rb_message_info *m, void *arg);

#endif
