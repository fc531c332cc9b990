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

static const struct rb_conf_field conf_fields[] = {
    {"secret", RB_CONF_STRING, offsetof(struct rb_sms_conf, secret), RB_CONF_REQUIRED, 0, 0},
    {"sendsms_url", RB_CONF_STRING, offsetof(struct rb_sms_conf, sendsms_url), 0, 0, 0},
    {"username", RB_CONF_STRING, offsetof(struct rb_sms_conf, username), 0, 0, 0},
    {"password", RB_CONF_STRING, offsetof(struct rb_sms_conf, password), 0, 0, 0},
    {"sender", RB_CONF_STRING, offsetof(struct rb_sms_conf, sender), 0, 0, 0},
    {"dlr_base_url", RB_CONF_STRING, offsetof(struct rb_sms_conf, dlr_base), 0, 0, 0},
    {"rate", RB_CONF_DOUBLE, offsetof(struct rb_sms_conf, rate), 0, 0, 0},
    {"burst", RB_CONF_INT, offsetof(struct rb_sms_conf, burst), 0, 1, 10000},
    {"timeout", RB_CONF_DURATION, offsetof(struct rb_sms_conf, timeout), 0, 0, 0},
    {"max_text", RB_CONF_INT, offsetof(struct rb_sms_conf, max_text), 0, 160, 20000},
    {"flood_max", RB_CONF_INT, offsetof(struct rb_sms_conf, flood_max), 0, 0, 1000000},
    {"flood_window", RB_CONF_DURATION, offsetof(struct rb_sms_conf, flood_window), 0, 0, 0},
};
#define NFIELDS (sizeof(conf_fields) / sizeof(conf_fields[0]))

static int conf_check(struct rb_plugin_ctx *ctx, const struct rb_sms_conf *c)
{
    if (!c->secret || strlen(c->secret) < 8) {
        rb_sms_api->log(ctx, RB_LOG_ERROR, "plugin sms_kannel: secret must be at least 8 "
                                           "characters");
        return RB_EINVAL;
    }
    if (!(c->flood_window > 0 && c->flood_window <= 7 * 86400.0)) {
        rb_sms_api->log(ctx, RB_LOG_ERROR, "plugin sms_kannel: flood_window must be more than "
                                           "0s and at most 7d");
        return RB_EINVAL;
    }
    if (!(c->rate > 0 && c->rate <= 10000) || !(c->timeout > 0 && c->timeout <= 300)) {
        rb_sms_api->log(ctx, RB_LOG_ERROR, "plugin sms_kannel: rate must be more than 0 and "
                                           "at most 10000 a second, timeout more than 0s and "
                                           "at most 5m");
        return RB_EINVAL;
    }
    return RB_OK;
}

static int sms_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    rb_sms_api = host;
    if (!RB_HOST_HAS(host, message_done)) {
        host->log(ctx, RB_LOG_ERROR, "this rabtad is too old for the sms_kannel plugin (no "
                                     "message_sender in the host API)");
        return RB_ERR;
    }
    if (sodium_init() < 0)
        return RB_ERR;
    struct rb_sms_conf c = conf_defaults;
    if (host->conf_parse(ctx, conf_fields, NFIELDS, &c) != RB_OK) {
        host->conf_free(conf_fields, NFIELDS, &c);
        return RB_EINVAL;
    }
    if (conf_check(ctx, &c) != RB_OK) {
        host->conf_free(conf_fields, NFIELDS, &c);
        return RB_EINVAL;
    }
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
    rb_sms_api->conf_free(conf_fields, NFIELDS, &rb_sms_conf);
}

/* After SIGHUP: a bad block keeps the old settings. */
static int sms_reload(struct rb_plugin_ctx *ctx)
{
    struct rb_sms_conf c = conf_defaults;
    if (rb_sms_api->conf_parse(ctx, conf_fields, NFIELDS, &c) != RB_OK ||
        conf_check(ctx, &c) != RB_OK) {
        rb_sms_api->conf_free(conf_fields, NFIELDS, &c);
        return RB_EINVAL;
    }
    if (rb_sms_api->job_pace(ctx, RB_SMS_SEND_KIND, c.rate, (int)c.burst) != RB_OK) {
        rb_sms_api->conf_free(conf_fields, NFIELDS, &c);
        return RB_EINVAL;
    }
    rb_sms_api->conf_free(conf_fields, NFIELDS, &rb_sms_conf);
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
