/* Pure text work for the SMS channel: no I/O, no host API (unit-tested on its own). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sms_kannel.h"

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s)
        abort(); /* out of memory: the core's rb_fatal is out of reach for a plugin */
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

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
        {"START", RB_SMS_START, "en"},
    };
    const unsigned char *u = (const unsigned char *)s;
    size_t b = 0, e = len;
    if (arg && argsz)
        arg[0] = '\0';
    *lang = rb_sms_language(s, len);
    /* trim */
    while (b < e) {
        size_t j = b;
        long cp = utf8_next(u, e, &j);
        if (cp < 0 || !space(cp))
            break;
        b = j;
    }
    while (e > b && (u[e - 1] == ' ' || u[e - 1] == '\t' || u[e - 1] == '\r' ||
                     u[e - 1] == '\n'))
        e--;
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
            char c = 0;
            if (cp >= 0x06F0 && cp <= 0x06F9)
                c = (char)('0' + (cp - 0x06F0));
            else if (cp >= 0x0660 && cp <= 0x0669)
                c = (char)('0' + (cp - 0x0660));
            else if ((cp >= '0' && cp <= '9') || (cp >= 'A' && cp <= 'Z') ||
                     (cp >= 'a' && cp <= 'z') || cp == '-')
                c = (char)cp;
            else if (cp >= 0 && (space(cp) || cp == ':' || cp == '#' || cp == 0x06D4))
                continue;
            else
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

const char *rb_sms_cmd_name(enum rb_sms_cmd c)
{
    switch (c) {
    case RB_SMS_COMPLAINT: return "complaint";
    case RB_SMS_STATUS: return "status";
    case RB_SMS_HELP: return "help";
    case RB_SMS_STOP: return "stop";
    case RB_SMS_START: return "start";
    }
    return "complaint";
}

static int urdu(const char *lang)
{
    return lang && strcmp(lang, "ur") == 0;
}

char *rb_sms_text_received(const char *lang, const char *tracking)
{
    if (urdu(lang))
        return fmt("رابطہ: آپ کی شکایت درج ہو گئی ہے۔ ٹریکنگ نمبر %s ہے۔ "
                   "حالت جاننے کے لیے حالت %s لکھ کر بھیجیں۔", tracking, tracking);
    return fmt("Rabta: your complaint is registered. Tracking number: %s. "
               "Send STATUS %s to follow it.", tracking, tracking);
}

static const char *status_ur(const char *st)
{
    static const char *const map[][2] = {
        {"submitted", "درج"}, {"routed", "متعلقہ محکمے کو بھیج دی گئی"},
        {"acknowledged", "محکمے کو موصول"}, {"in_progress", "زیر کارروائی"},
        {"awaiting_citizen", "آپ کے جواب کی منتظر"}, {"resolved", "حل ہو گئی"},
        {"closed", "بند"}, {"rejected", "مسترد"}, {"transferred", "دوسرے محکمے کو منتقل"},
        {"reopened", "دوبارہ کھولی گئی"}, {"answered", "جواب دے دیا گیا"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i][0], st) == 0)
            return map[i][1];
    return st;
}

char *rb_sms_text_status(const char *lang, const char *tracking, const char *status)
{
    if (urdu(lang))
        return fmt("رابطہ: شکایت %s کی حالت: %s۔", tracking, status_ur(status));
    char st[64];
    snprintf(st, sizeof(st), "%s", status);
    for (char *p = st; *p; p++)
        if (*p == '_')
            *p = ' ';
    return fmt("Rabta: complaint %s is %s.", tracking, st);
}

char *rb_sms_text_not_found(const char *lang, const char *what)
{
    if (urdu(lang))
        return fmt("رابطہ: اس نمبر سے %s کی کوئی شکایت نہیں ملی۔ ٹریکنگ نمبر دوبارہ دیکھیں۔",
                   what);
    return fmt("Rabta: no complaint %s was found for this phone. Please check the tracking "
               "number.", what);
}

char *rb_sms_text_help(const char *lang)
{
    if (urdu(lang))
        return fmt("رابطہ: شکایت درج کرنے کے لیے اپنی شکایت لکھ کر بھیجیں۔ حالت جاننے کے لیے "
                   "حالت اور ٹریکنگ نمبر بھیجیں۔ پیغامات بند کرنے کے لیے STOP بھیجیں۔");
    return fmt("Rabta: to complain, send your complaint as a message. To follow it, send "
               "STATUS and the tracking number. Send STOP to get no more notices.");
}

char *rb_sms_text_stop(const char *lang)
{
    if (urdu(lang))
        return fmt("رابطہ: آپ کو مزید اطلاعات نہیں بھیجی جائیں گی۔ دوبارہ شروع کرنے کے لیے "
                   "START بھیجیں۔");
    return fmt("Rabta: you will get no more notices. Send START to get them again.");
}

char *rb_sms_text_start(const char *lang)
{
    if (urdu(lang))
        return fmt("رابطہ: اطلاعات دوبارہ شروع کر دی گئی ہیں۔");
    return fmt("Rabta: notices are on again.");
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
