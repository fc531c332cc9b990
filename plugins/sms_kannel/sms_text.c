/* Pure text work for the SMS channel: no I/O, no host API (unit-tested on its own). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sms_kannel.h"

/* Decodes one code point at s[*i]; -1 for malformed input (overlongs, surrogates, > 10FFFF). */
static long utf8_next(const unsigned char *s, size_t len, size_t *i)
{
    unsigned c = s[*i];
    size_t n;
    long cp, min;
    if (c < 0x80) {
        (*i)++;
        return c;
    } else if ((c & 0xE0) == 0xC0) {
        n = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 3, cp = c & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if (*i + n >= len)
        return -1;
    for (size_t k = 1; k <= n; k++) {
        if ((s[*i + k] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[*i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *i += n + 1;
    return cp;
}

int rb_sms_utf8_valid(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        long cp = utf8_next((const unsigned char *)s, len, &i);
        if (cp <= 0)
            return 0;
    }
    return 1;
}

int rb_sms_field_valid(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        long cp = utf8_next((const unsigned char *)s, len, &i);
        if (cp < 0x20 || cp == 0x7F)
            return 0;
    }
    return 1;
}

static int arabic_letter(long cp)
{
    return (cp >= 0x0620 && cp <= 0x064A) || (cp >= 0x066E && cp <= 0x06D3) ||
           (cp >= 0x06FA && cp <= 0x06FF) || (cp >= 0x0750 && cp <= 0x077F) ||
           (cp >= 0xFB50 && cp <= 0xFDFF) || (cp >= 0xFE70 && cp <= 0xFEFF);
}

const char *rb_sms_language(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        long cp = utf8_next((const unsigned char *)s, len, &i);
        if (cp < 0)
            break;
        if (arabic_letter(cp))
            return "ur";
    }
    return "en";
}

static int space(long cp)
{
    return cp == ' ' || cp == '\t' || cp == '\r' || cp == '\n' || cp == 0xA0 || cp == 0x200C ||
           cp == 0x200F || cp == 0x200E;
}

/* Skips the code points at s[i..len) for which keep() holds; returns the new offset. */
static size_t skip_while(const unsigned char *u, size_t len, size_t i, int (*keep)(long))
{
    while (i < len) {
        size_t j = i;
        long cp = utf8_next(u, len, &j);
        if (cp < 0 || !keep(cp))
            break;
        i = j;
    }
    return i;
}

/* A symbol of a tracking number as typed: an ASCII letter or digit as itself, an Urdu (۰-۹)
 * or Arabic (٠-٩) digit as its ASCII digit; 0 for anything else. */
static char symbol(long cp)
{
    if (cp >= 0x06F0 && cp <= 0x06F9)
        return (char)('0' + (cp - 0x06F0));
    if (cp >= 0x0660 && cp <= 0x0669)
        return (char)('0' + (cp - 0x0660));
    if ((cp >= '0' && cp <= '9') || (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z'))
        return (char)cp;
    return 0;
}

/* The keyword at s (case-insensitive for ASCII); returns its byte length or 0. */
static size_t keyword(const char *s, size_t len, const char *kw)
{
    size_t n = strlen(kw);
    if (len < n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)s[i], b = (unsigned char)kw[i];
        if (a >= 'a' && a <= 'z')
            a = (unsigned char)(a - 'a' + 'A');
        if (a != b)
            return 0;
    }
    return n;
}

enum rb_sms_cmd rb_sms_command(const char *s, size_t len, char *arg, size_t argsz,
                               const char **lang)
{
    static const struct {
        const char *kw;
        enum rb_sms_cmd cmd;
        const char *lang;
    } kws[] = {
        {"STATUS", RB_SMS_STATUS, "en"},
        {"\xD8\xAD\xD8\xA7\xD9\x84\xD8\xAA", RB_SMS_STATUS, "ur"}, /* حالت */
        {"HELP", RB_SMS_HELP, "en"},
        {"\xD9\x85\xD8\xAF\xD8\xAF", RB_SMS_HELP, "ur"}, /* مدد */
        {"STOP", RB_SMS_STOP, "en"},
        {"\xD8\xA8\xD9\x86\xD8\xAF", RB_SMS_STOP, "ur"}, /* بند */
        {"START", RB_SMS_START, "en"},
        {"\xD8\xB4\xD8\xB1\xD9\x88\xD8\xB9", RB_SMS_START, "ur"}, /* شروع */
    };
    const unsigned char *u = (const unsigned char *)s;
    size_t b = 0, e = len;
    if (arg && argsz)
        arg[0] = '\0';
    *lang = rb_sms_language(s, len);
    b = skip_while(u, e, b, space); /* trim */
    while (e > b && (u[e - 1] == ' ' || u[e - 1] == '\t' || u[e - 1] == '\r' ||
                     u[e - 1] == '\n'))
        e--;
    /* A lone 1 or 2 (ASCII, Urdu or Arabic digit): an answer to "reply 1 or 2". */
    if (b < e) {
        size_t j = b;
        long cp = utf8_next(u, e, &j);
        int d = cp == '1' || cp == 0x06F1 || cp == 0x0661   ? 1
                : cp == '2' || cp == 0x06F2 || cp == 0x0662 ? 2
                                                            : 0;
        if (d && j == e) {
            if (arg && argsz >= 2) {
                arg[0] = (char)('0' + d);
                arg[1] = '\0';
            }
            if (cp > 0x7F)
                *lang = "ur";
            return RB_SMS_RATING;
        }
    }
    for (size_t k = 0; k < sizeof(kws) / sizeof(kws[0]); k++) {
        size_t n = keyword(s + b, e - b, kws[k].kw);
        if (!n)
            continue;
        size_t r = b + n;
        if (kws[k].cmd != RB_SMS_STATUS) {
            if (r != e)
                continue; /* "stop the noise ..." is a complaint, not a command */
            *lang = kws[k].lang;
            return kws[k].cmd;
        }
        /* STATUS: the rest must look like a tracking number: ASCII letters, digits, '-',
         * Urdu/Arabic digits, separators (spaces, ':', '#') that are dropped. */
        if (r < e && ((u[r] >= 'A' && u[r] <= 'Z') || (u[r] >= 'a' && u[r] <= 'z')))
            continue; /* "STATUSES ..." */
        size_t o = 0;
        int ok = 1;
        while (r < e && ok) {
            long cp = utf8_next(u, e, &r);
            char c = cp == '-' ? '-' : symbol(cp);
            if (!c && cp >= 0 && (space(cp) || cp == ':' || cp == '#' || cp == 0x06D4))
                continue;
            if (!c)
                ok = 0;
            if (c) {
                if (o + 1 >= argsz || o >= 40)
                    ok = 0;
                else
                    arg[o++] = c;
            }
        }
        if (!ok)
            continue;
        arg[o] = '\0';
        *lang = kws[k].lang;
        return RB_SMS_STATUS;
    }
    return RB_SMS_COMPLAINT;
}

/* What may stand between a tracking number and the answer. */
static int answer_sep(long cp)
{
    return space(cp) || cp == ':' || cp == ',' || cp == ';' || cp == '-' || cp == '.' ||
           cp == 0x060C || cp == 0x061B || cp == 0x06D4; /* ، ؛ ۔ */
}

size_t rb_sms_reply_prefix(const char *s, size_t len, char *out, size_t outsz)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = skip_while(u, len, 0, space), o = 0;
    int symbols = 0;
    if (outsz == 0)
        return 0;
    out[0] = '\0';
    if (i < len && u[i] == '#')
        i++;
    if (keyword(s + i, len - i, "RB") != 2 || outsz < 3)
        return 0;
    out[o++] = 'R';
    out[o++] = 'B';
    i += 2;
    while (i < len) {
        size_t j = i;
        long cp = utf8_next(u, len, &j);
        char c = symbol(cp);
        if (c)
            symbols++;
        else if ((cp == '-' || cp == '.' || cp == '_') && symbols < 11)
            c = (char)cp; /* inside the number; after its last symbol it separates the answer */
        else
            break; /* the end of the word (or invalid UTF-8: the caller checked it) */
        if (symbols > 11 || o + 1 >= outsz)
            goto no;
        out[o++] = c;
        i = j;
    }
    if (symbols != 11)
        goto no;
    /* The number must end its word: "RB-7K3M9-QXPD2-3x" is not one. */
    size_t a = skip_while(u, len, i, answer_sep);
    if (a == i && i < len)
        goto no;
    if (a >= len)
        goto no; /* nothing after the number: not an answer that names its case */
    out[o] = '\0';
    return a;
no:
    out[0] = '\0';
    return 0;
}

const char *rb_sms_cmd_name(enum rb_sms_cmd c)
{
    switch (c) {
    case RB_SMS_COMPLAINT: return "complaint";
    case RB_SMS_STATUS: return "status";
    case RB_SMS_HELP: return "help";
    case RB_SMS_STOP: return "stop";
    case RB_SMS_START: return "start";
    case RB_SMS_RATING: return "rating";
    case RB_SMS_FLOOD: return "flood";
    case RB_SMS_REPLY: return "reply";
    case RB_SMS_SURVEY: return "survey";
    }
    return "complaint";
}

char *rb_sms_urlencode(const char *s)
{
    static const char hexd[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        abort();
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hexd[*p >> 4];
            *o++ = hexd[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

int rb_sms_secret_ok(const char *given, const char *want)
{
    if (!given || !want)
        return 0;
    size_t a = strlen(given), b = strlen(want);
    unsigned char d = (unsigned char)(a != b);
    for (size_t i = 0; i < b; i++)
        d |= (unsigned char)(given[i % (a ? a : 1)] ^ want[i]);
    return d == 0 && a > 0;
}

/* ---- flood limit ----------------------------------------------------------------------- */

#define FLOOD_SLOTS 4096u /* phones tracked at once; a busy slot goes to the newest */
#define FLOOD_PROBE 8u

struct flood_slot {
    char phone[20];
    double start; /* the window began */
    long long count;
    int replied;
};

static struct flood_slot flood[FLOOD_SLOTS];

static unsigned flood_hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

enum rb_sms_flood rb_sms_flood_check(const char *phone, double now, long long max,
                                     double window)
{
    if (max <= 0)
        return RB_SMS_FLOOD_OK;
    unsigned h = flood_hash(phone);
    struct flood_slot *slot = NULL, *oldest = NULL;
    for (unsigned i = 0; i < FLOOD_PROBE; i++) {
        struct flood_slot *c = &flood[(h + i) % FLOOD_SLOTS];
        if (strcmp(c->phone, phone) == 0) {
            slot = c;
            break;
        }
        if (!oldest || c->start < oldest->start)
            oldest = c;
    }
    if (!slot || now - slot->start >= window) {
        if (!slot) {
            slot = oldest;
            snprintf(slot->phone, sizeof(slot->phone), "%s", phone);
        }
        slot->start = now;
        slot->count = 0;
        slot->replied = 0;
    }
    if (++slot->count <= max)
        return RB_SMS_FLOOD_OK;
    if (slot->replied)
        return RB_SMS_FLOOD_SILENT;
    slot->replied = 1;
    return RB_SMS_FLOOD_REPLY;
}

void rb_sms_flood_reset(void)
{
    memset(flood, 0, sizeof(flood));
}
