/* email_smtp: the sender of channel "email" through an SMTP relay (docs/plugins.md,
 * docs/config.md "email_smtp").
 *
 * Each message the core hands over (host API message_sender) becomes one libcurl SMTP
 * transfer: a UTF-8 text/plain MIME message, body in base64, Subject as RFC 2047 encoded
 * words, so Urdu arrives intact. Transfers run on rabtad's event loop through curl's multi
 * interface: curl tells us which sockets to watch (sock_cb) and when to wake it (timer_cb),
 * libevent calls curl_multi_socket_action when one is ready; nothing ever blocks the loop.
 *
 * Outcomes (message_done): the relay accepted it → sent; the relay refused it for good (a 5xx
 * answer: a bad address, bad credentials) → failed; no relay, a timeout or a 4xx → retry,
 * after `retry_after` or the queue's back-off. */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <sodium.h>

#include <rabta/plugin.h>

struct email_conf {
    char *host;            /* owned; the relay; default 127.0.0.1 */
    long long port;        /* default 25 */
    int starttls;          /* 1: STARTTLS is required before anything is sent */
    char *username;        /* owned; NULL: no AUTH */
    char *password_env;    /* owned; the environment variable holding the password */
    char *from;            /* owned; required: the sender's address */
    char *from_name;       /* owned; NULL: none */
    char *subject;         /* owned; the subject of messages that bring none */
    double timeout;        /* seconds for one transfer */
    double retry_after;    /* seconds before a retry; 0: the jobs queue's back-off */
    double rate;           /* e-mails a second to the relay; 0: unpaced */
    long long burst;
};

#define SEND_KIND "message.send.email"

static const struct rb_host_api *api;
static struct email_conf conf;
static struct rb_plugin_ctx *plugin_ctx;

/* The multi handle on the loop (from start() to stop()). */
static CURLM *multi;
static struct event *multi_timer;
static struct event_base *loop;
static struct mail *flying; /* owned: every transfer added to multi */

/* One transfer: the message as MIME text, read by curl from `at`. */
struct mail {
    struct mail *prev, *next;     /* the transfers in flight (list `flying`) */
    CURL *easy;                   /* owned */
    struct rb_message_send *send; /* borrowed until message_done */
    long long id;
    char *text;                   /* owned: headers and body */
    size_t len, at;
    struct curl_slist *rcpt;      /* owned */
    char error[CURL_ERROR_SIZE];
};

/* ---- the message --------------------------------------------------------------------------- */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

/* An address fit for a header and an SMTP command: one @, no spaces, controls, <>, quotes. */
static int address_ok(const char *s)
{
    size_t n = strlen(s);
    const char *at = strchr(s, '@');
    if (n < 3 || n > 254 || !at || at == s || !at[1] || strchr(at + 1, '@'))
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f || strchr("<>()\",;:\\[]", *p))
            return 0;
    return 1;
}

/* base64 of len bytes; a new string, caller frees. */
static char *b64(const void *data, size_t len)
{
    size_t n = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    char *out = xmalloc(n);
    sodium_bin2base64(out, n, data, len, sodium_base64_VARIANT_ORIGINAL);
    return out;
}

/* Appends s (n bytes) to the growing buffer *buf (length *len, capacity *cap). */
static void put(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        while (*len + n + 1 > *cap)
            *cap = *cap ? *cap * 2 : 1024;
        *buf = realloc(*buf, *cap);
        if (!*buf)
            abort();
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static void puts_(char **buf, size_t *len, size_t *cap, const char *s)
{
    put(buf, len, cap, s, strlen(s));
}

/* text as RFC 2047 encoded words (=?UTF-8?B?...?=), each at most 75 characters, split only
 * between UTF-8 characters, folded onto continuation lines. */
static void put_encoded(char **buf, size_t *len, size_t *cap, const char *text)
{
    size_t n = strlen(text), i = 0;
    int first = 1;
    while (i < n) {
        size_t take = n - i > 45 ? 45 : n - i; /* 45 bytes → 60 base64 characters */
        while (i + take < n && ((unsigned char)text[i + take] & 0xC0) == 0x80)
            take--; /* not inside a character */
        char *e = b64(text + i, take);
        puts_(buf, len, cap, first ? "=?UTF-8?B?" : "\r\n =?UTF-8?B?");
        puts_(buf, len, cap, e);
        puts_(buf, len, cap, "?=");
        free(e);
        i += take;
        first = 0;
    }
}

/* The whole message: headers, a blank line, the body in base64 lines of 76. New string. */
static char *mime(const struct rb_message_info *m, size_t *outlen)
{
    char *buf = NULL, line[400];
    size_t len = 0, cap = 0;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(line, sizeof(line), "Date: %a, %d %b %Y %H:%M:%S +0000\r\n", &tm);
    puts_(&buf, &len, &cap, line);
    puts_(&buf, &len, &cap, "From: ");
    if (conf.from_name) {
        put_encoded(&buf, &len, &cap, conf.from_name);
        puts_(&buf, &len, &cap, " ");
    }
    snprintf(line, sizeof(line), "<%s>\r\nTo: <%s>\r\nMessage-ID: <rabta.%lld.%ld%s>\r\n",
             conf.from, m->to, m->id, (long)now, strchr(conf.from, '@'));
    puts_(&buf, &len, &cap, line);
    puts_(&buf, &len, &cap, "Subject: ");
    put_encoded(&buf, &len, &cap, m->subject && m->subject[0] ? m->subject : conf.subject);
    puts_(&buf, &len, &cap, "\r\nMIME-Version: 1.0\r\n"
                            "Content-Type: text/plain; charset=UTF-8\r\n"
                            "Content-Transfer-Encoding: base64\r\n");
    if (m->language) {
        snprintf(line, sizeof(line), "Content-Language: %s\r\n", m->language);
        puts_(&buf, &len, &cap, line);
    }
    puts_(&buf, &len, &cap, "\r\n");
    char *body = b64(m->body, strlen(m->body));
    for (size_t i = 0, n = strlen(body); i < n; i += 76) {
        put(&buf, &len, &cap, body + i, n - i > 76 ? 76 : n - i);
        puts_(&buf, &len, &cap, "\r\n");
    }
    free(body);
    *outlen = len;
    return buf;
}

static size_t read_cb(char *out, size_t size, size_t nmemb, void *arg)
{
    struct mail *ml = arg;
    size_t n = size * nmemb, left = ml->len - ml->at;
    if (n > left)
        n = left;
    memcpy(out, ml->text + ml->at, n);
    ml->at += n;
    return n;
}

/* Takes ml off the list, its transfer off multi, and frees it. */
static void mail_free(struct mail *ml)
{
    if (ml->prev)
        ml->prev->next = ml->next;
    else if (flying == ml)
        flying = ml->next;
    if (ml->next)
        ml->next->prev = ml->prev;
    if (ml->easy) {
        curl_multi_remove_handle(multi, ml->easy);
        curl_easy_cleanup(ml->easy);
    }
    free(ml->text);
    curl_slist_free_all(ml->rcpt);
    free(ml);
}

/* ---- the multi interface on the loop ------------------------------------------------------ */

static void check_done(void)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        struct mail *ml = NULL;
        long code = 0;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&ml);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
        if (rc == CURLE_OK) {
            api->message_done(ml->send, RB_SEND_SENT, 0, NULL, NULL);
        } else {
            char why[CURL_ERROR_SIZE + 120];
            snprintf(why, sizeof(why), "SMTP relay %s:%lld: %s%s%s (code %ld)", conf.host,
                     conf.port, curl_easy_strerror(rc), ml->error[0] ? ": " : "", ml->error,
                     code);
            for (char *p = why; *p; p++)
                if (*p == '\r' || *p == '\n')
                    *p = ' ';
            int refused = code >= 500 && code < 600; /* the relay said no for good */
            api->log(plugin_ctx, RB_LOG_WARN, "e-mail message %lld: %s", ml->id, why);
            api->message_done(ml->send, refused ? RB_SEND_FAILED : RB_SEND_RETRY,
                              conf.retry_after > 0 ? conf.retry_after : -1, why, NULL);
        }
        mail_free(ml);
    }
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
    (void)arg;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(multi, fd, flags, &running);
    check_done();
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    int running;
    curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done();
}

/* curl: watch socket s for what (CURL_POLL_*); the socket's event is its socketp. */
static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)userp;
    struct event *ev = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ev)
            event_free(ev);
        curl_multi_assign(multi, s, NULL);
        return 0;
    }
    short kind = (short)(EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) |
                         (what & CURL_POLL_OUT ? EV_WRITE : 0));
    if (ev)
        event_free(ev);
    ev = event_new(loop, s, kind, on_socket, NULL);
    if (!ev)
        abort();
    event_add(ev, NULL);
    curl_multi_assign(multi, s, ev);
    return 0;
}

/* curl: call us back in timeout_ms (-1: never). */
static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    (void)userp;
    if (timeout_ms < 0) {
        evtimer_del(multi_timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(multi_timer, &tv);
    return 0;
}

/* ---- the sender --------------------------------------------------------------------------- */

static void email_send(struct rb_message_send *send, const struct rb_message_info *m, void *arg)
{
    (void)arg;
    if (!multi) {
        api->message_done(send, RB_SEND_RETRY, 1, "the e-mail plugin is not running", NULL);
        return;
    }
    if (!address_ok(m->to)) {
        api->message_done(send, RB_SEND_FAILED, 0, "not an e-mail address", NULL);
        return;
    }
    struct mail *ml = calloc(1, sizeof(*ml));
    CURL *easy = curl_easy_init();
    if (!ml || !easy)
        abort();
    ml->send = send;
    ml->id = m->id;
    ml->text = mime(m, &ml->len);
    char rcpt[300], url[400], from[300];
    snprintf(rcpt, sizeof(rcpt), "<%s>", m->to);
    snprintf(from, sizeof(from), "<%s>", conf.from);
    snprintf(url, sizeof(url), "smtp://%s:%lld", conf.host, conf.port);
    ml->rcpt = curl_slist_append(NULL, rcpt);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, ml->rcpt);
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(easy, CURLOPT_READDATA, ml);
    curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, ml);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, ml->error);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)(conf.timeout * 1000));
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(conf.timeout * 1000));
    if (conf.starttls)
        curl_easy_setopt(easy, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (conf.username) {
        const char *pw = conf.password_env ? getenv(conf.password_env) : NULL;
        curl_easy_setopt(easy, CURLOPT_USERNAME, conf.username);
        curl_easy_setopt(easy, CURLOPT_PASSWORD, pw ? pw : "");
    }
    if (curl_multi_add_handle(multi, easy) != CURLM_OK) {
        curl_easy_cleanup(easy);
        api->message_done(send, RB_SEND_RETRY, -1, "cannot start an SMTP transfer", NULL);
        mail_free(ml);
        return;
    }
    ml->easy = easy;
    ml->next = flying;
    if (flying)
        flying->prev = ml;
    flying = ml;
}

/* ---- the plugin ---------------------------------------------------------------------------- */

/* Checks of single values (reported by the core at the value's file:line:col). */
static const char *from_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    return address_ok(*(char *const *)v) ? NULL
                                          : "expected an e-mail address such as rabta@example.org";
}

static const char *password_env_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    return getenv(*(char *const *)v) ? NULL : "that environment variable is not set";
}

/* Listed after password_env, so the block's password_env is filled when this runs. */
static const char *username_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)v, (void)why, (void)n;
    return ((const struct email_conf *)block)->password_env
               ? NULL
               : "needs password_env: the name of the environment variable that holds the "
                 "password (never the password itself)";
}

static const char *timeout_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    double x = *(const double *)v;
    return x > 0 && x <= 600 ? NULL : "must be more than 0s and at most 10m";
}

static const char *retry_after_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    return *(const double *)v >= 0 ? NULL : "must be at least 0s (0: the queue's back-off)";
}

static const char *rate_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    double x = *(const double *)v;
    return x >= 0 && x <= 10000 ? NULL : "must be from 0 (unpaced) to 10000 a second";
}

#define F(key, type, member, flags, min, max, check)                                          \
    {key, type, offsetof(struct email_conf, member), flags, min, max, NULL, check}
static const struct rb_conf_field_v2 fields[] = {
    F("host", RB_CONF_STRING, host, 0, 0, 0, NULL),
    F("port", RB_CONF_INT, port, 0, 1, 65535, NULL),
    F("starttls", RB_CONF_BOOL, starttls, 0, 0, 0, NULL),
    F("password_env", RB_CONF_STRING, password_env, 0, 0, 0, password_env_ok),
    F("username", RB_CONF_STRING, username, 0, 0, 0, username_ok),
    F("from", RB_CONF_STRING, from, RB_CONF_REQUIRED, 0, 0, from_ok),
    F("from_name", RB_CONF_STRING, from_name, 0, 0, 0, NULL),
    F("subject", RB_CONF_STRING, subject, 0, 0, 0, NULL),
    F("timeout", RB_CONF_DURATION, timeout, 0, 0, 0, timeout_ok),
    F("retry_after", RB_CONF_DURATION, retry_after, 0, 0, 0, retry_after_ok),
    F("rate", RB_CONF_DOUBLE, rate, 0, 0, 0, rate_ok),
    F("burst", RB_CONF_INT, burst, 0, 1, 100000, NULL),
};
#undef F

static const struct email_conf defaults = {
    .port = 25, .timeout = 30, .burst = 10,
};

/* Parses and checks the block into out (defaults filled). RB_OK or RB_EINVAL (every error
 * reported at its file:line:col). */
static int parse(struct rb_plugin_ctx *ctx, struct email_conf *out)
{
    *out = defaults;
    if (RB_CONF_PARSE_V2(api, ctx, NULL, fields, out) != RB_OK) {
        RB_CONF_FREE_V2(api, fields, out);
        return RB_EINVAL;
    }
    if (!out->host)
        out->host = strdup("127.0.0.1");
    if (!out->subject)
        out->subject = strdup("Rabta / رابطہ");
    if (!out->host || !out->subject)
        abort();
    return RB_OK;
}

static int email_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    api = host;
    plugin_ctx = ctx;
    if (!RB_HOST_HAS(host, event_base)) {
        host->log(ctx, RB_LOG_ERROR, "this rabtad is too old for the email_smtp plugin (no "
                                     "message_sender or event_base in the host API)");
        return RB_ERR;
    }
    if (sodium_init() < 0 || parse(ctx, &conf) != RB_OK)
        return RB_EINVAL;
    if (host->message_sender(ctx, "email", email_send, ctx) != RB_OK ||
        (conf.rate > 0 && host->job_pace(ctx, SEND_KIND, conf.rate, (int)conf.burst) != RB_OK))
        return RB_ERR;
    return RB_OK;
}

static int email_start(struct rb_plugin_ctx *ctx)
{
    loop = api->event_base(ctx);
    if (!loop || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return RB_ERR;
    multi = curl_multi_init();
    multi_timer = evtimer_new(loop, on_timer, NULL);
    if (!multi || !multi_timer)
        return RB_ERR;
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    api->log(ctx, RB_LOG_DEBUG, "e-mail through %s:%lld%s", conf.host, conf.port,
             conf.starttls ? " (STARTTLS)" : "");
    return RB_OK;
}

static int email_reload(struct rb_plugin_ctx *ctx)
{
    struct email_conf next;
    if (parse(ctx, &next) != RB_OK)
        return RB_EINVAL;
    if (next.rate > 0 && api->job_pace(ctx, SEND_KIND, next.rate, (int)next.burst) != RB_OK) {
        RB_CONF_FREE_V2(api, fields, &next);
        return RB_EINVAL;
    }
    RB_CONF_FREE_V2(api, fields, &conf);
    conf = next;
    return RB_OK;
}

/* Transfers still running are dropped: their jobs' leases bring them back. */
static void email_stop(struct rb_plugin_ctx *ctx)
{
    (void)ctx;
    if (multi) {
        while (flying)
            mail_free(flying);
        curl_multi_cleanup(multi);
        multi = NULL;
        curl_global_cleanup();
    }
    if (multi_timer)
        event_free(multi_timer);
    multi_timer = NULL;
    RB_CONF_FREE_V2(api, fields, &conf);
}

static const struct rb_plugin email_smtp = {
    RB_PLUGIN_HEADER,
    .name = "email_smtp",
    .kind = RB_PLUGIN_CHANNEL,
    .version = "0.1.0",
    .description = "e-mail through an SMTP relay (channel \"email\")",
    .init = email_init,
    .start = email_start,
    .stop = email_stop,
    .reload = email_reload,
};

RB_PLUGIN_DEFINE(email_smtp)
