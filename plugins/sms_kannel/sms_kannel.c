/* The SMS channel through a Kannel gateway (docs/sms.md).
 *
 * Kannel's smsbox calls GET/POST /sms/kannel/mo for every SMS a citizen sends (its
 * sms-service get-url/post-url); free text becomes a complaint, STATUS/HELP/STOP/START are
 * commands. Every answer to the citizen is a message queued with its send job (core's SQL
 * rabta_message_queue), which
 * this plugin also runs: a sendsms request to smsbox, with our message id in the dlr-url so
 * Kannel's delivery report (GET /sms/kannel/dlr) can mark it delivered or failed.
 *
 * Nothing here needs Kannel at start: while it is down, jobs wait in the queue and retry. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <rabta/plugin.h>

#include "sms_kannel.h"

const struct rb_host_api *rb_sms_api;

/* Defaults; the plugin's config block may change them (docs/sms.md). Strings stay NULL here
 * (conf_parse frees what it replaces) and fall back where they are used. */
static const struct rb_sms_conf conf_defaults = {
    .rate = 10.0,
    .burst = 10,
    .timeout = 10.0,
    .max_text = 1600,
    .flood_max = 20,
    .flood_window = 3600.0,
};
struct rb_sms_conf rb_sms_conf;

/* Checks of single values (reported by the core at the value's file:line:col). */
static const char *secret_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    return strlen(*(char *const *)v) < 8 ? "the secret must be at least 8 characters" : NULL;
}

static const char *rate_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    double x = *(const double *)v;
    return x > 0 && x <= 10000 ? NULL : "must be more than 0 and at most 10000 a second";
}

static const char *timeout_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    double x = *(const double *)v;
    return x > 0 && x <= 300 ? NULL : "must be more than 0s and at most 5m";
}

static const char *flood_window_ok(const void *v, const void *block, char *why, size_t n)
{
    (void)block, (void)why, (void)n;
    double x = *(const double *)v;
    return x > 0 && x <= 7 * 86400.0 ? NULL : "must be more than 0s and at most 7d";
}

#define F(key, type, member, flags, min, max, check)                                          \
    {key, type, offsetof(struct rb_sms_conf, member), flags, min, max, NULL, check}
static const struct rb_conf_field_v2 conf_fields[] = {
    F("secret", RB_CONF_STRING, secret, RB_CONF_REQUIRED, 0, 0, secret_ok),
    F("sendsms_url", RB_CONF_STRING, sendsms_url, 0, 0, 0, NULL),
    F("username", RB_CONF_STRING, username, 0, 0, 0, NULL),
    F("password", RB_CONF_STRING, password, 0, 0, 0, NULL),
    F("sender", RB_CONF_STRING, sender, 0, 0, 0, NULL),
    F("dlr_base_url", RB_CONF_STRING, dlr_base, 0, 0, 0, NULL),
    F("rate", RB_CONF_DOUBLE, rate, 0, 0, 0, rate_ok),
    F("burst", RB_CONF_INT, burst, 0, 1, 10000, NULL),
    F("timeout", RB_CONF_DURATION, timeout, 0, 0, 0, timeout_ok),
    F("max_text", RB_CONF_INT, max_text, 0, 160, 20000, NULL),
    F("flood_max", RB_CONF_INT, flood_max, 0, 0, 1000000, NULL),
    F("flood_window", RB_CONF_DURATION, flood_window, 0, 0, 0, flood_window_ok),
};
#undef F

/* The block over the defaults into out; every error reported with its file:line:col. */
static int conf_load(struct rb_plugin_ctx *ctx, struct rb_sms_conf *out)
{
    *out = conf_defaults;
    if (RB_CONF_PARSE_V2(rb_sms_api, ctx, NULL, conf_fields, out) != RB_OK) {
        RB_CONF_FREE_V2(rb_sms_api, conf_fields, out);
        return RB_EINVAL;
    }
    return RB_OK;
}

static int sms_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    rb_sms_api = host;
    if (!RB_HOST_HAS(host, message_done)) {
        host->log(ctx, RB_LOG_ERROR, "this rabtad is too old for the sms_kannel plugin (no "
                                     "conf_parse_v2 or message_sender in the host API)");
        return RB_ERR;
    }
    if (sodium_init() < 0)
        return RB_ERR;
    struct rb_sms_conf c;
    if (conf_load(ctx, &c) != RB_OK)
        return RB_EINVAL;
    rb_sms_conf = c;
    if (host->http_route(ctx, RB_HTTP_GET | RB_HTTP_POST, "/sms/kannel/mo", rb_sms_on_mo,
                         ctx) != RB_OK ||
        host->http_route(ctx, RB_HTTP_GET | RB_HTTP_POST, "/sms/kannel/dlr", rb_sms_on_dlr,
                         ctx) != RB_OK ||
        host->message_sender(ctx, "sms", rb_sms_send, ctx) != RB_OK ||
        host->job_pace(ctx, RB_SMS_SEND_KIND, c.rate, (int)c.burst) != RB_OK)
        return RB_ERR;
    return RB_OK;
}

static void sms_stop(struct rb_plugin_ctx *ctx)
{
    (void)ctx;
    RB_CONF_FREE_V2(rb_sms_api, conf_fields, &rb_sms_conf);
}

/* After SIGHUP: a bad block keeps the old settings. */
static int sms_reload(struct rb_plugin_ctx *ctx)
{
    struct rb_sms_conf c;
    if (conf_load(ctx, &c) != RB_OK)
        return RB_EINVAL;
    if (rb_sms_api->job_pace(ctx, RB_SMS_SEND_KIND, c.rate, (int)c.burst) != RB_OK) {
        RB_CONF_FREE_V2(rb_sms_api, conf_fields, &c);
        return RB_EINVAL;
    }
    RB_CONF_FREE_V2(rb_sms_api, conf_fields, &rb_sms_conf);
    rb_sms_conf = c;
    return RB_OK;
}

static const struct rb_plugin sms_kannel = {
    RB_PLUGIN_HEADER,
    .name = "sms_kannel",
    .kind = RB_PLUGIN_CHANNEL,
    .version = "0.1.0",
    .description = "SMS through a Kannel gateway (MO, MT, delivery reports)",
    .init = sms_init,
    .stop = sms_stop,
    .reload = sms_reload,
};

RB_PLUGIN_DEFINE(sms_kannel)
