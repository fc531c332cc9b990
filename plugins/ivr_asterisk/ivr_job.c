/* What starts an outbound call. Today: the plugin's own job kind "ivr.call" (payload
 * {"script", "phone", "language", "trunk", "reply_kind", "ref"}), one run per attempt. When the
 * host offers senders by channel, this file becomes the sender of channel "call"
 * (jobs "message.send.call") and nothing else changes: rb_ivr_call_place does the work and
 * finishes the run with one job_finish. */
#include "ivr.h"

static void on_call_job(struct rb_job_run *run, const struct rb_job_info *job, void *arg)
{
    (void)arg;
    rb_ivr_call_place(run, job);
}

int rb_ivr_job_register(struct rb_plugin_ctx *ctx)
{
    return rb_ivr_api->job_register(ctx, "ivr.call", on_call_job, NULL);
}
