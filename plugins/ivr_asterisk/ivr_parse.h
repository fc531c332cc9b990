/* The wire formats of Asterisk's two protocols, as pure functions (no I/O): FastAGI's header
 * lines and command replies (res/res_agi.c) and AMI's banner and blank-line framed messages
 * (main/manager.c). Unit-tested in tests/unit/test_ivr_parse.c. */
#ifndef RB_IVR_PARSE_H
#define RB_IVR_PARSE_H

#include <stddef.h>

#define RB_IVR_LINE_MAX 1024 /* longest line accepted from Asterisk (AGI_BUF_LEN is 2048) */

/* The logging callback the AGI server and the AMI client are given, and printf into it. */
typedef void (*rb_ivr_log_fn)(int level, const char *msg, void *arg);
void rb_ivr_logf(rb_ivr_log_fn log, void *arg, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- FastAGI ---------------------------------------------------------------------------- */

/* One "agi_name: value" header line. Returns 1 with key, klen and val pointing into line
 * (value without leading spaces), 0 for the blank line that ends the headers, -1 when the
 * line is not a header ("agi_" name of [a-z0-9_], a colon). */
int rb_agi_header(const char *line, const char **key, size_t *klen, const char **val);

enum rb_agi_line {
    RB_AGI_REPLY = 1,  /* a complete reply: 200, 510, 511, or the last line of a 520 */
    RB_AGI_HANGUP,     /* "HANGUP": the caller hung up (not a reply to the command) */
    RB_AGI_USAGE,      /* "520-...": usage text follows up to "520 End of proper usage." */
    RB_AGI_BAD = -1,   /* none of these */
};

/* A reply: "200 result=N [(data)] [endpos=M]", "510 ...", "511 ...", "520 ...". */
struct rb_agi_reply {
    int code;          /* 200, 510, 511, 520 */
    int has_result;    /* 200: result= was present */
    char result[64];   /* the text after result= up to a space ("", "0", "-1", "*12", "49") */
    long num;          /* result as a number when it is one (else 0) */
    int is_num;
    char data[128];    /* text in parentheses ("timeout", "dtmf", "hangup", "MACHINE"), or "" */
    long endpos;       /* endpos=, or -1 */
};

/* Parses one line. A line of a 520 usage block after RB_AGI_USAGE is just text to skip until
 * a line starting "520 " (which parses as RB_AGI_REPLY with code 520). */
enum rb_agi_line rb_agi_reply_parse(const char *line, struct rb_agi_reply *r);

/* 1 when s may be sent as one AGI argument (no CR, LF, NUL; at most 256 bytes). */
int rb_agi_arg_ok(const char *s);

/* ---- AMI -------------------------------------------------------------------------------- */

/* "Asterisk Call Manager/X.Y[.Z]": 1 and the version copied into ver, else 0. */
int rb_ami_banner(const char *line, char *ver, size_t verlen);

#define RB_AMI_FIELDS_MAX 48

/* One AMI message: up to RB_AMI_FIELDS_MAX "Key: Value" lines. */
struct rb_ami_msg {
    size_t n;
    char *key[RB_AMI_FIELDS_MAX]; /* point into buf */
    char *val[RB_AMI_FIELDS_MAX];
    size_t used;
    char buf[4096];
};

void rb_ami_msg_reset(struct rb_ami_msg *m);
/* Adds one line. Returns 1 when the blank line ends a message with fields, 0 when more lines
 * are needed (a blank line before any field is skipped), -1 for a line that is not
 * "Key: Value" or a message too big. */
int rb_ami_msg_line(struct rb_ami_msg *m, const char *line);
/* The value of key (case-insensitive), or NULL. Borrowed from m. */
const char *rb_ami_get(const struct rb_ami_msg *m, const char *key);

/* 1 when s may be sent as an AMI header value (no CR, LF). */
int rb_ami_value_ok(const char *s);

#endif
