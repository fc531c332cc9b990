/* A well-formed test plugin: registers GET /test/good, GET /test/sleep?s=N (answers after a
 * database pg_sleep, to have a slow in-flight request), POST /test/jobs?kind=K&delay=S&dedup=D
 * (enqueues a job), POST /test/case (submits an anonymous web complaint through the host's
 * case_submit, the request body as its origin) and handlers for job kinds "test.record" (records the run in table
 * test_job_runs, which the test creates), "test.paced" (the same, paced at pace_rate a second
 * in bursts of pace_burst when pace_rate is set) and "test.fail" (fails every time), and
 * reads a config block. */
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <rabta/plugin.h>

struct good_conf {
    char *greeting;
    long long answer;
    int enqueue_only; /* register no job handlers: this process only queues jobs */
    double pace_rate;  /* test.paced: runs a second (0: not paced) */
    long long pace_burst;
};

static const struct rb_conf_field good_fields[] = {
    {"greeting", RB_CONF_STRING, offsetof(struct good_conf, greeting), 0, 0, 0},
    {"answer", RB_CONF_INT, offsetof(struct good_conf, answer), 0, 0, 100},
    {"enqueue_only", RB_CONF_BOOL, offsetof(struct good_conf, enqueue_only), 0, 0, 0},
    {"pace_rate", RB_CONF_DOUBLE, offsetof(struct good_conf, pace_rate), 0, 0, 0},
    {"pace_burst", RB_CONF_INT, offsetof(struct good_conf, pace_burst), 0, 1, 1000},
};

static const struct rb_host_api *api;
static struct good_conf conf;

static void on_good(struct rb_http_req *req, void *arg)
{
    (void)arg;
    char body[256];
    int n = snprintf(body, sizeof(body), "{\"plugin\":\"good\",\"greeting\":\"%s\",\"answer\":%lld}",
                     conf.greeting ? conf.greeting : "", conf.answer);
    api->reply(req, 200, NULL, body, (size_t)n);
}

static void slept(const struct rb_db_result *res, const char *err, void *arg)
{
    struct rb_http_req *req = arg;
    (void)res;
    if (err) {
        api->reply_error(req, 503, "database_unavailable", "%s", err);
        return;
    }
    api->reply(req, 200, NULL, "{\"slept\":true}", 14);
}

static void on_sleep(struct rb_http_req *req, void *arg)
{
    struct rb_plugin_ctx *ctx = arg;
    const char *s = api->req_query(req, "s");
    const char *params[1] = {s ? s : "1"};
    if (api->db_query(ctx, "SELECT pg_sleep($1::float8)", 1, params, slept, req) != RB_OK)
        api->reply_error(req, 503, "database_unavailable", "the database queue is full");
}

static void enqueued(const struct rb_db_result *res, const char *err, void *arg)
{
    struct rb_http_req *req = arg;
    if (err) {
        api->reply_error(req, 503, "database_unavailable", "%s", err);
        return;
    }
    char body[64];
    int n = api->db_ntuples(res) ? snprintf(body, sizeof(body), "{\"id\":%s}", api->db_value(res, 0, 0))
                                 : snprintf(body, sizeof(body), "{\"id\":null}");
    api->reply(req, 200, NULL, body, (size_t)n);
}

static void on_jobs(struct rb_http_req *req, void *arg)
{
    struct rb_plugin_ctx *ctx = arg;
    const char *kind = api->req_query(req, "kind");
    const char *delay = api->req_query(req, "delay");
    size_t len;
    const char *body = api->req_body(req, &len);
    char payload[256];
    snprintf(payload, sizeof(payload), "%.*s", len < sizeof(payload) ? (int)len : 0, body);
    if (api->job_enqueue(ctx, kind ? kind : "test.record", len ? payload : NULL,
                         delay ? atof(delay) : 0, api->req_query(req, "dedup"), enqueued,
                         req) != RB_OK)
        api->reply_error(req, 400, "bad_request", "job refused");
}

static void case_stored(const struct rb_case_result *r, int status, const char *err, void *arg)
{
    struct rb_http_req *req = arg;
    if (!r) {
        api->reply_error(req, status ? status : 503, "not_stored", "%s", err ? err : "");
        return;
    }
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"id\":%lld,\"tracking_no\":\"%s\"}", r->id,
                     r->tracking_no);
    api->reply(req, 201, NULL, body, (size_t)n);
}

static void on_case(struct rb_http_req *req, void *arg)
{
    struct rb_plugin_ctx *ctx = arg;
    size_t len;
    const char *body = api->req_body(req, &len);
    char *origin = malloc(len + 1);
    if (!origin)
        abort();
    memcpy(origin, body ? body : "", len);
    origin[len] = '\0';
    static const char text[] = "A complaint submitted by the test plugin";
    struct rb_case_submission sub = {
        .size = sizeof(sub), .kind = "complaint", .text = text, .text_len = sizeof(text) - 1,
        .channel = "web", .language = "en", .anonymous = 1, .lat = __builtin_nan(""),
        .lon = __builtin_nan(""), .origin = len ? origin : NULL,
    };
    const char *shape = api->req_query(req, "shape");
    if (shape && strcmp(shape, "reply") == 0) {
        /* A channel that answers with the tracking number itself (as the SMS plugin does). */
        sub.phone = "+923001119001";
        sub.anonymous = 0;
        sub.reply_template = "sms.received";
        sub.reply_channel = "sms";
        sub.reply_to = sub.phone;
    } else if (shape && strcmp(shape, "first") == 0) {
        /* A plugin built against the struct's first release, which ended at idem_hash: what
         * follows is not its, so the core must not read it. Poison, which would crash or show
         * in the stored case if it did. */
        sub.size = offsetof(struct rb_case_submission, photo);
        sub.photo = (const void *)1;
        sub.photo_len = 99;
        sub.photo_type = (const char *)1;
        sub.citizen_id = 987654321;
        sub.reply_template = sub.reply_channel = sub.reply_to = (const char *)1;
        sub.unless_awaiting = 1;
        sub.origin = (const char *)1;
    }
    char why[256] = "";
    int rc = api->case_submit(ctx, &sub, case_stored, req, why, sizeof(why));
    free(origin);
    if (rc == RB_EINVAL)
        api->reply_error(req, 400, "bad_request", "%s", why);
    else if (rc != RB_OK)
        api->reply_error(req, 503, "unavailable", "case_submit: %d", rc);
}

static void recorded(const struct rb_db_result *res, const char *err, void *arg)
{
    (void)res;
    struct rb_job_run *run = arg;
    api->job_finish(run, err == NULL, err, -1, 0);
}

static void run_record(struct rb_job_run *run, const struct rb_job_info *job, void *arg)
{
    struct rb_plugin_ctx *ctx = arg;
    char id[24], attempt[16];
    snprintf(id, sizeof(id), "%lld", job->id);
    snprintf(attempt, sizeof(attempt), "%d", job->attempt);
    const char *params[4] = {id, attempt, job->payload, job->kind};
    if (api->db_query(ctx,
                      "INSERT INTO test_job_runs (job_id, attempt, payload, kind, worker, at, late) "
                      "VALUES ($1, $2, $3::jsonb, $4, pg_backend_pid(), clock_timestamp(), "
                      "clock_timestamp() - (SELECT run_at FROM jobs WHERE id = $1::bigint))",
                      4, params, recorded, run) != RB_OK)
        api->job_finish(run, 0, "queue full", 1, 0);
}

static void run_fail(struct rb_job_run *run, const struct rb_job_info *job, void *arg)
{
    (void)arg;
    char why[64];
    snprintf(why, sizeof(why), "failing on purpose (attempt %d)", job->attempt);
    api->job_finish(run, 0, why, 0.2, 0);
}

static int good_init(struct rb_plugin_ctx *ctx, const struct rb_host_api *host)
{
    api = host;
    if (api->conf_parse(ctx, good_fields, sizeof(good_fields) / sizeof(good_fields[0]), &conf) !=
        RB_OK)
        return RB_EINVAL;
    if (api->http_route(ctx, RB_HTTP_GET, "/test/good", on_good, ctx) != RB_OK)
        return RB_ERR;
    if (api->http_route(ctx, RB_HTTP_GET, "/test/sleep", on_sleep, ctx) != RB_OK)
        return RB_ERR;
    if (api->http_route(ctx, RB_HTTP_POST, "/test/jobs", on_jobs, ctx) != RB_OK)
        return RB_ERR;
    if (api->http_route(ctx, RB_HTTP_POST, "/test/case", on_case, ctx) != RB_OK)
        return RB_ERR;
    if (!conf.enqueue_only && (api->job_register(ctx, "test.record", run_record, ctx) != RB_OK ||
                               api->job_register(ctx, "test.paced", run_record, ctx) != RB_OK ||
                               api->job_register(ctx, "test.fail", run_fail, ctx) != RB_OK))
        return RB_ERR;
    if (!conf.enqueue_only && conf.pace_rate > 0 &&
        api->job_pace(ctx, "test.paced", conf.pace_rate,
                      conf.pace_burst ? (int)conf.pace_burst : 1) != RB_OK)
        return RB_EINVAL;
    api->log(ctx, RB_LOG_INFO, "good plugin ready");
    return RB_OK;
}

static void good_stop(struct rb_plugin_ctx *ctx)
{
    (void)ctx;
    api->conf_free(good_fields, sizeof(good_fields) / sizeof(good_fields[0]), &conf);
}

static const struct rb_plugin good = {
    RB_PLUGIN_HEADER,
    .name = "good",
    .kind = RB_PLUGIN_CHANNEL,
    .version = "1.0",
    .description = "test plugin",
    .init = good_init,
    .stop = good_stop,
};

RB_PLUGIN_DEFINE(good)
