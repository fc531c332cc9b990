/* The IVR channel on Asterisk (docs/ivr.md): a FastAGI server for the hotline and for the
 * scripts of outbound calls, an AMI client that originates those calls. See ivr.h for the
 * files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ivr.h"
#include "ivr_agi.h"
#include "ivr_ami.h"

const struct rb_host_api *rb_ivr_api;
struct rb_ivr rb_ivr;

static void agi_log(int level, const char *msg, void *arg)
{
    (void)arg;
    rb_ivr_api->log(rb_ivr.ctx, (enum rb_log_level)level, "%s", msg);
}

/* Every FastAGI call: agi_network_script (or agi_request's path) names what it is. */
static void on_session(struct rb_agi_conn *c, void *arg)
{
    (void)arg;
    const char *script = rb_agi_env(c, "agi_network_script");
    const char *req = rb_agi_env(c, "agi_request");
    if (!script && req && strncmp(req, "agi://", 6) == 0) {
        const char *slash = strchr(req + 6, '/');
        script = slash ? slash + 1 : "";
    }
    if (script && strncmp(script, "hotline", 7) == 0 && (!script[7] || script[7] == '?')) {
        rb_ivr_hotline_start(c);
    } else if (script && strncmp(script, "call", 4) == 0 && (!script[4] || script[4] == '?')) {
        rb_ivr_call_session(c);
    } else {
        rb_ivr_api->log(rb_ivr.ctx, RB_LOG_WARN, "FastAGI: unknown script \"%s\" (expected "
                                                 "agi://HOST:PORT/hotline or /call); hanging "
                                                 "up", script ? script : "");
        rb_agi_close(c);
    }
}

static int split_listen(const char *s, char *addr, size_t alen, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= alen)
        return RB_EINVAL;
    memcpy(addr, s, (size_t)(colon - s));
    addr[colon - s] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535)
        return RB_EINVAL;
    *port = (int)p;
    return RB_OK;
}

static int load_all(struct rb_plugin_ctx *ctx, struct rb_ivr_conf *c, struct rb_ivr_lua *l)
{
    if (rb_ivr_conf_parse(ctx, c) != RB_OK)
        return RB_EINVAL;
    if (rb_ivr_lua_load(ctx, l) != RB_OK) {
        rb_ivr_conf_free(c);
        return RB_EINVAL;
    }
    return RB_OK;
}

static int ivr_check(struct rb_plugin_ctx *ctx, const struct rb_host_api *api)
{
    rb_ivr_api = api;
    if (!RB_HOST_HAS(api, lua_data))
        return RB_ERR;
    struct rb_ivr_conf c;
    struct rb_ivr_lua l;
    if (load_all(ctx, &c, &l) != RB_OK)
        return RB_EINVAL;
    rb_ivr_conf_free(&c);
    rb_ivr_lua_free(&l);
    return RB_OK;
}

static int ivr_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *api)
{
    rb_ivr_api = api;
    if (!RB_HOST_HAS(api, message_done)) {
        api->log(ctx, RB_LOG_ERROR, "this rabtad is too old for the ivr_asterisk plugin (no "
                                    "event_base, lua_data or message_sender in the host API)");
        return RB_ERR;
    }
    memset(&rb_ivr, 0, sizeof(rb_ivr));
    rb_ivr.ctx = ctx;
    if (load_all(ctx, &rb_ivr.conf, &rb_ivr.lua) != RB_OK)
        return RB_EINVAL;
    rb_ivr.calls = rb_ivr_calls_new();
    return rb_ivr_call_register(ctx);
}

static void ami_msg(const struct rb_ami_msg *m, void *arg)
{
    (void)arg;
    rb_ivr_calls_ami_msg(m);
}

static void ami_state(int up, void *arg)
{
    (void)arg;
    rb_ivr_calls_ami_state(up);
}

static int ivr_start(struct rb_plugin_ctx *ctx)
{
    rb_ivr.base = rb_ivr_api->event_base(ctx);
    char addr[64], err[256];
    int port = 4573;
    const char *listen = rb_ivr.conf.agi_listen ? rb_ivr.conf.agi_listen : "127.0.0.1:4573";
    if (split_listen(listen, addr, sizeof(addr), &port) != RB_OK) {
        rb_ivr_api->log(ctx, RB_LOG_ERROR, "plugin ivr_asterisk: agi_listen \"%s\" is not "
                                           "ADDRESS:PORT", listen);
        return RB_EINVAL;
    }
    rb_ivr.agi = rb_agi_listen(rb_ivr.base, addr, port, on_session, agi_log, NULL, err,
                               sizeof(err));
    if (!rb_ivr.agi) {
        rb_ivr_api->log(ctx, RB_LOG_ERROR, "plugin ivr_asterisk: %s", err);
        return RB_ERR;
    }
    rb_ivr_api->log(ctx, RB_LOG_INFO, "FastAGI listening on %s:%d", addr,
                    rb_agi_port(rb_ivr.agi));
    if (rb_ivr.conf.ami_host) {
        struct rb_ami_opts o = {rb_ivr.conf.ami_host, (int)rb_ivr.conf.ami_port,
                                rb_ivr.conf.ami_username, rb_ivr.conf.ami_secret};
        rb_ivr.ami = rb_ami_new(rb_ivr.base, &o, ami_msg, ami_state, agi_log, NULL);
        if (!rb_ivr.ami) {
            rb_ivr_api->log(ctx, RB_LOG_ERROR, "plugin ivr_asterisk: ami_host \"%s\" is not an "
                                               "IPv4 address", rb_ivr.conf.ami_host);
            return RB_EINVAL;
        }
    }
    return RB_OK;
}

static void ivr_stop(struct rb_plugin_ctx *ctx)
{
    (void)ctx;
    rb_ivr_calls_free(rb_ivr.calls);
    rb_ivr.calls = NULL;
    rb_agi_free(rb_ivr.agi);
    rb_ivr.agi = NULL;
    rb_ami_free(rb_ivr.ami);
    rb_ivr.ami = NULL;
    rb_ivr_lua_free(&rb_ivr.lua);
    rb_ivr_conf_free(&rb_ivr.conf);
}

/* SIGHUP: new menus and scripts for the calls that start from now on (calls under way keep
 * theirs); the connection settings (agi_listen, ami_*) take effect at the next restart. */
static int ivr_reload(struct rb_plugin_ctx *ctx)
{
    struct rb_ivr_conf c;
    struct rb_ivr_lua l;
    if (load_all(ctx, &c, &l) != RB_OK)
        return RB_EINVAL;
    rb_ivr_lua_free(&rb_ivr.lua);
    rb_ivr.lua = l;
    struct rb_ivr_conf old = rb_ivr.conf;
    rb_ivr.conf = c;
    rb_ivr_conf_free(&old);
    return RB_OK;
}

static const struct rb_plugin ivr_asterisk = {
    RB_PLUGIN_HEADER,
    .name = "ivr_asterisk",
    .kind = RB_PLUGIN_CHANNEL,
    .version = "0.1.0",
    .description = "IVR on Asterisk: FastAGI hotline, outbound calls through AMI",
    .init = ivr_init,
    .start = ivr_start,
    .stop = ivr_stop,
    .reload = ivr_reload,
    .check = ivr_check,
};

RB_PLUGIN_DEFINE(ivr_asterisk)
