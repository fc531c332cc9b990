/* A test channel plugin, test_sender: registers itself as the sender of each channel in
 * `channels` (comma-separated, e.g. "sms,fax") and reports every message it is handed as
 * sent; and routes POST /test/test_sender/message?channel=C&to=A[&template=T][&language=L]
 * [&urgent=0][&data=JSON], which queues a message through the host's message_queue (as any
 * plugin queues one: data is rb_message_out.data_json) and answers 201 {"id": N}, or 400 with
 * the sentence the host gave. test_sender2.c builds the same plugin under another name, for the
 * test of two plugins claiming one channel. */
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <rabta/plugin.h>

#ifndef TEST_SENDER_NAME
#define TEST_SENDER_NAME "test_sender"
#endif

struct sender_conf {
    char *channels; /* owned */
};

static const struct rb_conf_field fields[] = {
    {"channels", RB_CONF_STRING, offsetof(struct sender_conf, channels), RB_CONF_REQUIRED, 0, 0},
};

static const struct rb_host_api *api;
static struct sender_conf conf;

static void on_send(struct rb_message_send *send, const struct rb_message_info *m, void *arg)
{
    api->log(arg, RB_LOG_INFO, "sent message %lld (%s) to %s", m->id, m->channel, m->to);
    api->message_done(send, RB_SEND_SENT, 0, NULL, NULL);
}

static void stored(long long id, const char *err, void *arg)
{
    struct rb_http_req *req = arg;
    char body[64];
    if (err) {
        api->reply_error(req, 503, "database_unavailable", "%s", err);
        return;
    }
    int n = snprintf(body, sizeof(body), "{\"id\":%lld}", id);
    api->reply(req, 201, NULL, body, (size_t)n);
}

static void on_message(struct rb_http_req *req, void *arg)
{
    const char *channel = api->req_query(req, "channel"), *to = api->req_query(req, "to");
    const char *tmpl = api->req_query(req, "template"), *lang = api->req_query(req, "language");
    const char *urgent = api->req_query(req, "urgent");
    const struct rb_message_out m = {
        .size = sizeof(m), .template = tmpl ? tmpl : "sms.help", .language = lang ? lang : "en",
        .channel = channel, .to = to, .urgent = !urgent || strcmp(urgent, "0") != 0,
        .data_json = api->req_query(req, "data"),
    };
    char why[512];
    int rc = api->message_queue(arg, &m, stored, req, why, sizeof(why));
    if (rc == RB_EINVAL)
        api->reply_error(req, 400, "bad_request", "%s", why);
    else if (rc != RB_OK)
        api->reply_error(req, 503, "unavailable", "the database is unavailable");
}

static int sender_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    api = host;
    if (!RB_HOST_HAS(host, message_done))
        return RB_ERR;
    if (host->conf_parse(ctx, fields, 1, &conf) != RB_OK)
        return RB_EINVAL;
    char *list = strdup(conf.channels), *save = NULL;
    int rc = RB_OK;
    for (char *c = strtok_r(list, ", ", &save); c && rc == RB_OK; c = strtok_r(NULL, ", ", &save))
        rc = host->message_sender(ctx, c, on_send, ctx);
    free(list);
    if (rc != RB_OK)
        return rc;
    return host->http_route(ctx, RB_HTTP_POST, "/test/" TEST_SENDER_NAME "/message", on_message,
                            ctx);
}

static void sender_stop(struct rb_plugin_ctx *ctx)
{
    (void)ctx;
    api->conf_free(fields, 1, &conf);
}

static const struct rb_plugin test_sender = {
    RB_PLUGIN_HEADER,
    .name = TEST_SENDER_NAME,
    .kind = RB_PLUGIN_CHANNEL,
    .version = "1.0",
    .description = "test: a sender of the configured channels",
    .init = sender_init,
    .stop = sender_stop,
};

RB_PLUGIN_DEFINE(test_sender)
