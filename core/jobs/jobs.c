/* The durable jobs queue: enqueue, claim, run, finish, retry, recover. See jobs.h. */
#include "jobs/jobs.h"

#include <event2/event.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/metrics.h"
#include "base/pace.h"

#define JOBS_CHANNEL "rabta_jobs"

/* A statement-level trigger (migration 0002) NOTIFYs JOBS_CHANNEL with the earliest new
 * run_at, so enqueueing from any SQL wakes every process. In rabtad's own pool sessions it
 * raises a notice instead (migration 0018: NOTIFY serialises commits); core/db/db.c hands it to
 * on_local_jobs, which wakes this process and relays one coalesced NOTIFY to the others. */
#define RELAY_DELAY 0.02 /* seconds: at most ~50 relayed NOTIFYs a second */
#define PACE_AHEAD 1.0   /* seconds: paced runs are claimed at most this long before their turn */
#define STR_(x) #x
#define STR(x) STR_(x) /* a macro's value as a string literal: PACE_AHEAD in SQL */
const char rb_jobs_enqueue_sql[] =
    "INSERT INTO jobs (kind, payload, run_at, dedup_key) "
    "VALUES ($1, COALESCE($2::jsonb, '{}'::jsonb), "
    "now() + make_interval(secs => $3::float8), $4) "
    "ON CONFLICT (dedup_key) WHERE state IN ('queued', 'running') DO NOTHING "
    "RETURNING id";

/* Claims due rows, oldest first (and hands them out in that order): up to $3 in all and, of
 * each kind $2[i], up to $4[i]; of a paced kind ($5[i], at $6[i] a second with a burst's lead
 * of $7[i] seconds, locked by pace_lock_sql) no more than the turns of its shared schedule that
 * start within PACE_AHEAD seconds, which it takes: each row's last column is the seconds until
 * its turn (0 for other kinds). Kind by kind through index jobs_due_kind (kind, run_at, id), so
 * that a backlog of one kind (held to a rate, or handled by no process here) is never read
 * through by the claims of the others. The candidates are read without locks and locked after
 * (SKIP LOCKED): another process claiming at the same moment may take some of them, and this
 * claim then returns fewer; the next takes the rest. */
static const char claim_sql[] =
    "WITH room AS (SELECT p.kind, p.rate, p.tau, greatest(s.tat, extract(epoch from now())) AS t "
    "FROM unnest($5::text[], $6::float8[], $7::float8[]) AS p(kind, rate, tau) "
    "JOIN job_paces s ON s.kind = p.kind), "
    "cand AS (SELECT j.id, j.run_at FROM unnest($2::text[], $4::int[]) AS k(kind, lim) "
    "LEFT JOIN room r ON r.kind = k.kind "
    "CROSS JOIN LATERAL (SELECT id, run_at FROM jobs WHERE state = 'queued' AND kind = k.kind "
    "AND run_at <= now() ORDER BY run_at, id LIMIT CASE WHEN r.kind IS NULL THEN k.lim "
    "ELSE least(k.lim, greatest(floor((extract(epoch from now()) + " STR(PACE_AHEAD) " + r.tau - "
    "r.t) * r.rate) + 1, 0)::int) END) j ORDER BY j.run_at, j.id LIMIT $3), "
    "c AS (UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $1, "
    "locked_at = now(), updated_at = now() "
    "WHERE id IN (SELECT id FROM jobs WHERE id IN (SELECT id FROM cand) AND state = 'queued' "
    "FOR UPDATE SKIP LOCKED) "
    "RETURNING id, kind, payload::text AS payload, dedup_key, attempts, max_attempts, run_at), "
    "n AS (SELECT c.*, row_number() OVER (PARTITION BY c.kind ORDER BY c.run_at, c.id) - 1 "
    "AS turn FROM c), "
    "adv AS (UPDATE job_paces s SET tat = r.t + x.cnt / r.rate FROM (SELECT kind, count(*) AS cnt "
    "FROM c GROUP BY kind) x JOIN room r ON r.kind = x.kind WHERE s.kind = x.kind) "
    "SELECT n.id, n.kind, n.payload, n.dedup_key, n.attempts, n.max_attempts, "
    "extract(epoch from now() - n.run_at), CASE WHEN r.kind IS NULL THEN 0 ELSE "
    "greatest(r.t + n.turn / r.rate - r.tau - extract(epoch from now()), 0) END "
    "FROM n LEFT JOIN room r ON r.kind = n.kind ORDER BY n.run_at, n.id";

/* The schedules of the paced kinds $1 (migration 0027), locked until the claim commits: two
 * processes never take the same turns. A kind's row is added on its first claim. */
static const char pace_add_sql[] =
    "INSERT INTO job_paces (kind) SELECT unnest($1::text[]) ON CONFLICT (kind) DO NOTHING";
static const char pace_lock_sql[] =
    "SELECT kind FROM job_paces WHERE kind = ANY($1::text[]) ORDER BY kind FOR UPDATE";
/* After the claim: per paced kind, seconds from now until its schedule's next turn (tat). */
static const char pace_next_sql[] =
    "SELECT kind, tat - extract(epoch from now()) FROM job_paces WHERE kind = ANY($1::text[])";

/* Run before the claim, in its transaction: the claim must read jobs_due_kind in order and
 * stop after LIMIT rows. When many jobs become due at once (a burst of deadlines moved to the
 * same second, a holiday's backlog) the statistics still say few are due, and the planner's
 * bitmap scan fetched and sorted every due row on each claim: 100,000 due jobs cost ~100 ms a
 * claim, the main cost of a burst (tests/bench/bench_sla.sh). */
static const char claim_plan_sql[] = "SET LOCAL enable_bitmapscan = off";

/* Per kind $1[i]: seconds until its earliest queued job is due (negative: overdue); kinds
 * with none queued are left out. */
static const char peek_sql[] =
    "SELECT k.kind, extract(epoch from j.run_at - now()) FROM unnest($1::text[]) AS k(kind) "
    "CROSS JOIN LATERAL (SELECT run_at FROM jobs WHERE state = 'queued' AND kind = k.kind "
    "ORDER BY run_at, id LIMIT 1) j";

/* Paced runs not started when the process stops: back to the queue as if never claimed. */
static const char release_sql[] =
    "UPDATE jobs SET state = 'queued', attempts = greatest(attempts - 1, 0), locked_by = NULL, "
    "locked_at = NULL, updated_at = now() WHERE id = ANY($1::bigint[]) AND state = 'running'";

/* Finishing touches only a row this worker still holds: a run whose lease ran out (its process
 * stalled) and that another process took again is that process's to end, not this one's. */
static const char done_sql[] =
    "DELETE FROM jobs WHERE id = ANY($1::bigint[]) AND state = 'running' AND locked_by = $2";

static const char fail_sql[] =
    "UPDATE jobs SET state = CASE WHEN $3::boolean OR attempts >= max_attempts THEN 'dead' "
    "ELSE 'queued' END, run_at = now() + make_interval(secs => $4::float8), last_error = $2, "
    "locked_by = NULL, locked_at = NULL, updated_at = now() "
    "WHERE id = $1 AND state = 'running' AND locked_by = $5 RETURNING state";

/* A run put off before it did anything (rb_job_postpone): back to the queue at its new time,
 * its attempt given back. */
static const char postpone_sql[] =
    "UPDATE jobs SET state = 'queued', attempts = greatest(attempts - 1, 0), "
    "run_at = now() + make_interval(secs => $3::float8), last_error = $2, locked_by = NULL, "
    "locked_at = NULL, updated_at = now() WHERE id = $1 AND state = 'running' AND locked_by = $4";

/* The held runs $1 of worker $2 are still running: their leases start again. */
static const char renew_sql[] =
    "UPDATE jobs SET locked_at = now() WHERE id = ANY($1::bigint[]) AND state = 'running' "
    "AND locked_by = $2";

/* Runs whose worker vanished: back to the queue (or dead when out of attempts). */
static const char lease_sql[] =
    "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END, "
    "run_at = now(), last_error = 'lease expired: worker ' || coalesce(locked_by, '?') || "
    "' did not finish the run', locked_by = NULL, locked_at = NULL, updated_at = now() "
    "WHERE state = 'running' AND locked_at < now() - make_interval(secs => $1::float8) "
    "RETURNING id";

static const char counts_sql[] =
    "SELECT (SELECT count(*) FROM jobs WHERE state = 'dead'), "
    "(SELECT count(*) FROM jobs WHERE state = 'queued' AND run_at <= now())";

struct handler {
    char *kind; /* owned */
    rb_job_fn fn;           /* one run at a time, or NULL for a batch handler */
    rb_job_batch_fn batch;  /* up to max runs at a time */
    size_t max;
    void *arg;
    struct rb_job_run **pending; /* owned array; runs being gathered for batch */
    size_t npending;

    /* Pacing (rb_jobs_pace): runs are claimed up to PACE_AHEAD seconds before their turn in
     * the kind's schedule, shared by all processes (table job_paces), and wait in `paced` (a
     * ring) for it. pace.rate 0: not paced. */
    struct rb_pace pace; /* rate and burst; and this process's own spacing of its runs */
    double pace_next;    /* monotonic: the shared schedule has no turn to claim before this */
    struct paced { struct rb_job_run *run; double at; } *paced; /* owned ring */
    size_t phead, pn, pcap;
    struct event *pace_timer;
    struct rb_jobs *jobs; /* borrowed: the runner it belongs to (for pace_timer) */
    int lim;            /* asked of this kind by the claim in flight (0: not asked) */
};

struct id_list {
    long long *v; /* owned */
    size_t n, cap;
};

struct rb_jobs {
    struct event_base *base; /* borrowed */
    struct rb_db *db;        /* borrowed */
    struct rb_metrics *m;    /* borrowed; may be NULL */
    struct rb_jobs_options opt;
    char *worker_id; /* owned */
    struct handler *handlers; /* owned */
    size_t nhandlers;

    struct event *timer;       /* the one timer: earliest due job */
    struct event *kick;        /* zero-delay: pump again from a clean stack */
    struct event *lease_timer; /* periodic lease recovery and counts */
    int busy;    /* a claim is in flight */
    int limit;   /* rows asked for by the claim in flight */
    int claim_paced; /* ... and whether it asked for paced kinds (its batch has their schedules) */
    double armed_wall; /* wall-clock time the timer fires; 0 when not armed */
    int want;    /* claim again when the current one completes */
    int started, stopped;
    size_t running;  /* claimed and not finished (paced runs waiting their turn included) */
    int releasing;   /* the release of paced runs at stop is in flight */

    struct id_list done, flushing; /* successes waiting to be deleted / being deleted */
    int flush_busy;

    double dead, due; /* last counts */

    struct rb_job_run *held; /* runs whose lease this process renews (rb_job_hold) */
    int renew_busy;          /* the renewal of their leases is in flight */

    struct event *relay;  /* sends relay_due to the other processes (one NOTIFY) */
    double relay_due;     /* earliest run_at to relay; 0: nothing */
    int relay_busy;       /* its query in flight */
};

struct rb_job_run {
    struct rb_jobs *jobs;
    struct rb_job job;
    char *kind, *payload, *dedup_key; /* owned */
    int finished;
    int held;                          /* rb_job_hold: its lease is renewed until finished */
    struct rb_job_run *hprev, *hnext;  /* jobs->held, while held */
};

static void pump(struct rb_jobs *jobs);

/* ---- enqueue ------------------------------------------------------------------------- */

static void enqueue_done(PGresult *res, const char *err, void *arg)
{
    (void)res;
    (void)arg;
    if (err)
        rb_warn("jobs", "could not store a job: %s", err);
}

int rb_jobs_enqueue(struct rb_db *db, const char *kind, const char *payload_json, double delay_s,
                    const char *dedup_key, rb_db_fn fn, void *arg)
{
    char delay[32];
    if (!kind || !*kind || !(delay_s >= 0) || delay_s > 1e9)
        return RB_EINVAL;
    snprintf(delay, sizeof(delay), "%.6f", delay_s);
    const char *params[4] = {kind, payload_json, delay, dedup_key};
    return rb_db_query(db, rb_jobs_enqueue_sql, 4, params, fn ? fn : enqueue_done, arg);
}

/* ---- set-up -------------------------------------------------------------------------- */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rb_jobs *jobs = arg;
    jobs->armed_wall = 0;
    jobs->want = 1;
    pump(jobs);
}

static void on_lease_timer(evutil_socket_t fd, short what, void *arg);
static void on_relay(evutil_socket_t fd, short what, void *arg);

struct rb_jobs *rb_jobs_new(struct event_base *base, struct rb_db *db, struct rb_metrics *m,
                            const struct rb_jobs_options *opt)
{
    struct rb_jobs *jobs = rb_calloc(1, sizeof(*jobs));
    jobs->base = base;
    jobs->db = db;
    jobs->m = m;
    if (opt)
        jobs->opt = *opt;
    if (jobs->opt.concurrency <= 0)
        jobs->opt.concurrency = 256;
    if (jobs->opt.batch <= 0)
        jobs->opt.batch = 256;
    if (jobs->opt.lease <= 0)
        jobs->opt.lease = 300;
    if (jobs->opt.backoff_base <= 0)
        jobs->opt.backoff_base = 10;
    if (jobs->opt.backoff_max <= 0)
        jobs->opt.backoff_max = 3600;
    if (jobs->opt.worker_id) {
        jobs->worker_id = rb_strdup(jobs->opt.worker_id);
    } else {
        char host[256] = "localhost";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        jobs->worker_id = rb_sprintf("%s:%d", host, (int)getpid());
    }
    jobs->opt.worker_id = NULL;
    jobs->timer = evtimer_new(base, on_timer, jobs);
    jobs->kick = evtimer_new(base, on_timer, jobs);
    jobs->lease_timer = event_new(base, -1, EV_PERSIST, on_lease_timer, jobs);
    jobs->relay = evtimer_new(base, on_relay, jobs);
    if (!jobs->timer || !jobs->kick || !jobs->lease_timer || !jobs->relay)
        rb_fatal("out of memory creating job timers");
    return jobs;
}

static int add_handler(struct rb_jobs *jobs, const char *kind, struct handler h)
{
    if (jobs->started || !kind || !*kind || strpbrk(kind, "{},\"\\ "))
        return RB_EINVAL;
    for (size_t i = 0; i < jobs->nhandlers; i++)
        if (strcmp(jobs->handlers[i].kind, kind) == 0)
            return RB_EEXIST;
    jobs->handlers = rb_realloc(jobs->handlers, (jobs->nhandlers + 1) * sizeof(*jobs->handlers));
    h.kind = rb_strdup(kind);
    h.jobs = jobs;
    if (h.batch)
        h.pending = rb_calloc(h.max, sizeof(*h.pending));
    jobs->handlers[jobs->nhandlers++] = h;
    return RB_OK;
}

int rb_jobs_register(struct rb_jobs *jobs, const char *kind, rb_job_fn fn, void *arg)
{
    if (!fn)
        return RB_EINVAL;
    return add_handler(jobs, kind, (struct handler){.fn = fn, .arg = arg});
}

int rb_jobs_register_batch(struct rb_jobs *jobs, const char *kind, rb_job_batch_fn fn,
                           size_t max, void *arg)
{
    if (!fn || max < 1 || max > 100000)
        return RB_EINVAL;
    return add_handler(jobs, kind, (struct handler){.batch = fn, .max = max, .arg = arg});
}

static struct handler *find_handler(const struct rb_jobs *jobs, const char *kind)
{
    for (size_t i = 0; i < jobs->nhandlers; i++)
        if (strcmp(jobs->handlers[i].kind, kind) == 0)
            return &jobs->handlers[i];
    return NULL;
}

static void on_pace_timer(evutil_socket_t fd, short what, void *arg);

int rb_jobs_pace(struct rb_jobs *jobs, const char *kind, double rate, int burst)
{
    struct handler *h = find_handler(jobs, kind);
    if (!h || !(rate >= 0.001 && rate <= 100000) || burst < 1 || burst > 100000)
        return RB_EINVAL;
    if (jobs->started && !h->pace_timer &&
        !(h->pace_timer = evtimer_new(jobs->base, on_pace_timer, h)))
        rb_fatal("out of memory creating job timers");
    rb_pace_set(&h->pace, rate, burst);
    /* The ring, for a second of turns and a burst; the runs waiting keep their order. */
    size_t cap = (size_t)(rate * PACE_AHEAD) + (size_t)burst + 1;
    if (cap < h->pn)
        cap = h->pn;
    struct paced *ring = rb_calloc(cap, sizeof(*ring));
    for (size_t i = 0; i < h->pn; i++)
        ring[i] = h->paced[(h->phead + i) % h->pcap];
    free(h->paced);
    h->paced = ring;
    h->pcap = cap;
    h->phead = 0;
    return RB_OK;
}

const struct rb_job *rb_job_run_info(const struct rb_job_run *run)
{
    return &run->job;
}

/* Notifications: something was enqueued (payload: epoch of its run_at) or, with a NULL
 * payload, the listening connection was re-established and we may have missed some. */
/* Jobs due at `due` (epoch seconds; 0: unknown) were queued by someone. */
static void wake(struct rb_jobs *jobs, double due)
{
    /* Due no sooner than our timer, which will find it then. Not while a claim is in flight:
     * its peek may have run before this job was visible and would arm the timer too late. */
    if (due > 0 && !jobs->busy && jobs->armed_wall > 0 && due >= jobs->armed_wall)
        return;
    jobs->want = 1;
    pump(jobs);
}

static void on_notify(const char *channel, const char *payload, void *arg)
{
    (void)channel;
    wake(arg, payload && *payload ? atof(payload) : 0);
}

static void relayed(PGresult *res, const char *err, void *arg)
{
    (void)res;
    struct rb_jobs *jobs = arg;
    jobs->relay_busy = 0;
    if (err && !jobs->stopped)
        rb_warn("jobs", "could not tell the other processes of new jobs: %s", err);
    if (jobs->relay_due > 0 && !jobs->stopped) {
        struct timeval tv = {0, (suseconds_t)(RELAY_DELAY * 1e6)};
        evtimer_add(jobs->relay, &tv);
    }
}

static void relay_send(struct rb_jobs *jobs)
{
    if (jobs->relay_busy || jobs->relay_due <= 0)
        return;
    char due[40];
    snprintf(due, sizeof(due), "%.6f", jobs->relay_due);
    const char *params[2] = {JOBS_CHANNEL, due};
    jobs->relay_due = 0;
    rb_db_background(jobs->db, 1);
    if (rb_db_query_prepared(jobs->db, "SELECT pg_notify($1, $2)", 2, params, relayed, jobs) ==
        RB_OK)
        jobs->relay_busy = 1;
    rb_db_background(jobs->db, 0);
}

static void on_relay(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    relay_send(arg);
}

/* Our own statements queued jobs of kind (NULL: unknown) due at `due` (db.c, after their
 * commit). The other processes hear of them all; this one looks only for kinds it may claim
 * now: not for a kind it does not handle, nor for a paced kind whose runs are already
 * waiting for their turn (pace_fire claims more as they go). */
static void on_local_jobs(const char *kind, double due, void *arg)
{
    struct rb_jobs *jobs = arg;
    if (jobs->relay_due <= 0 || due < jobs->relay_due)
        jobs->relay_due = due;
    if (!jobs->relay_busy && !evtimer_pending(jobs->relay, NULL)) {
        struct timeval tv = {0, (suseconds_t)(RELAY_DELAY * 1e6)};
        evtimer_add(jobs->relay, &tv);
    }
    if (!jobs->started || jobs->stopped)
        return;
    const struct handler *h = kind ? find_handler(jobs, kind) : NULL;
    if (kind && (!h || (h->pace.rate > 0 && h->pn > 0)))
        return;
    wake(jobs, due);
}

static double gauge_running(void *arg)
{
    return (double)((struct rb_jobs *)arg)->running;
}

static double gauge_dead(void *arg)
{
    return ((struct rb_jobs *)arg)->dead;
}

static double gauge_due(void *arg)
{
    return ((struct rb_jobs *)arg)->due;
}

/* Adds runs started and their lateness to the counters (the two go together). */
static void count_started(struct rb_metrics *m, double late, double runs)
{
    rb_metrics_count(m, "rabta_jobs_lateness_seconds_sum",
                     "Seconds between jobs' run_at and their start, summed.", NULL, late);
    rb_metrics_count(m, "rabta_jobs_started_total", "Job runs started.", NULL, runs);
}

int rb_jobs_start(struct rb_jobs *jobs)
{
    for (size_t i = 0; i < jobs->nhandlers; i++) { /* the handlers array is final now */
        struct handler *h = &jobs->handlers[i];
        if (h->pace.rate > 0 && !(h->pace_timer = evtimer_new(jobs->base, on_pace_timer, h)))
            rb_fatal("out of memory creating job timers");
    }
    jobs->started = 1;
    if (jobs->m) {
        rb_metrics_gauge(jobs->m, "rabta_jobs_running", "Jobs running in this process.",
                         gauge_running, jobs);
        rb_metrics_gauge(jobs->m, "rabta_jobs_dead",
                         "Jobs that ran out of attempts (see rabtad jobs list --state dead).",
                         gauge_dead, jobs);
        rb_metrics_gauge(jobs->m, "rabta_jobs_due", "Queued jobs whose time has come.",
                         gauge_due, jobs);
        count_started(jobs->m, 0, 0); /* on /metrics from the start, at 0 */
    }
    if (rb_db_listen(jobs->db, JOBS_CHANNEL, on_notify, jobs) != RB_OK)
        return RB_ERR;
    rb_db_on_jobs(jobs->db, on_local_jobs, jobs);
    double every = jobs->opt.lease / 4 < 5 ? jobs->opt.lease / 4 : 5;
    struct timeval tv = {(time_t)every, (suseconds_t)((every - floor(every)) * 1e6)};
    event_add(jobs->lease_timer, &tv);
    on_lease_timer(-1, 0, jobs);
    jobs->want = 1;
    pump(jobs);
    return RB_OK;
}

/* ---- claim and dispatch -------------------------------------------------------------- */

static void arm_timer(struct rb_jobs *jobs, double seconds)
{
    if (seconds < 0)
        seconds = 0;
    if (seconds > 3600)
        seconds = 3600; /* wake hourly anyway: cheap insurance against a lost notification */
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - floor(seconds)) * 1e6)};
    evtimer_add(jobs->timer, &tv);
    jobs->armed_wall = rb_now_wall() + seconds;
}

/* Hands a batch handler the runs gathered for it. */
static void flush_batch(struct handler *h)
{
    size_t n = h->npending;
    if (n == 0)
        return;
    h->npending = 0;
    struct rb_job_run **runs = rb_malloc(n * sizeof(*runs));
    memcpy(runs, h->pending, n * sizeof(*runs));
    h->batch(runs, n, h->arg);
    free(runs);
}

/* Hands one run to its handler. */
static void start_run(struct handler *h, struct rb_job_run *run)
{
    if (h->batch)
        h->batch(&run, 1, h->arg);
    else
        h->fn(run, &run->job, h->arg);
}

/* Runs of a paced kind to ask for now: as many as the ring holds (the claim takes no more
 * than the shared schedule's turns within PACE_AHEAD seconds). None while the schedule has no
 * turn to give, and while runs still wait, nothing under half a ring: no claim for one or
 * two. */
static int pace_room(const struct handler *h, double now)
{
    size_t room = h->pcap - h->pn;
    if (now < h->pace_next || (h->pn > 0 && room * 2 < h->pcap))
        room = 0;
    return (int)room;
}

/* Starts the paced runs whose turn has come; arms the timer for the next. */
static void pace_fire(struct handler *h)
{
    struct rb_jobs *jobs = h->jobs;
    double now = rb_now_mono();
    int started = 0;
    while (h->pn > 0 && h->paced[h->phead].at <= now + 0.0005) {
        struct rb_job_run *run = h->paced[h->phead].run;
        h->phead = (h->phead + 1) % h->pcap;
        h->pn--;
        started = 1;
        start_run(h, run);
    }
    if (h->pn > 0) {
        double d = h->paced[h->phead].at - now;
        struct timeval tv = {(time_t)d, (suseconds_t)((d - floor(d)) * 1e6)};
        evtimer_add(h->pace_timer, &tv);
    }
    /* Refill before the ring runs dry (pace_room decides whether a claim is worth it). */
    if (started && h->pn * 2 < h->pcap && !jobs->stopped) {
        jobs->want = 1;
        event_active(jobs->kick, EV_TIMEOUT, 0);
    }
}

static void on_pace_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct handler *h = arg;
    rb_db_background(h->jobs->db, 1);
    pace_fire(h);
    rb_db_background(h->jobs->db, 0);
}

/* A claimed run of a paced kind waits in the ring for its turn in the shared schedule,
 * `wait` seconds from now, or later: this process also spaces its own runs by the pace. The
 * wait is counted from the claim transaction's start; when its answer comes late (a slow
 * commit), the turns it took start late, and without the local spacing they would crowd
 * into the turns of the next claim. */
static void pace_add(struct handler *h, struct rb_job_run *run, double wait)
{
    rb_assert(h->pn < h->pcap);
    h->paced[(h->phead + h->pn) % h->pcap] =
        (struct paced){run, rb_pace_take(&h->pace, rb_now_mono() + wait)};
    h->pn++;
}

static void dispatch(struct rb_jobs *jobs, PGresult *res)
{
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        struct rb_job_run *run = rb_calloc(1, sizeof(*run));
        run->jobs = jobs;
        run->kind = rb_strdup(PQgetvalue(res, i, 1));
        run->payload = rb_strdup(PQgetvalue(res, i, 2));
        run->dedup_key = PQgetisnull(res, i, 3) ? NULL : rb_strdup(PQgetvalue(res, i, 3));
        run->job.id = atoll(PQgetvalue(res, i, 0));
        run->job.kind = run->kind;
        run->job.payload = run->payload;
        run->job.dedup_key = run->dedup_key;
        run->job.attempt = atoi(PQgetvalue(res, i, 4));
        run->job.max_attempts = atoi(PQgetvalue(res, i, 5));
        run->job.size = sizeof(run->job);
        double late = atof(PQgetvalue(res, i, 6));
        jobs->running++;
        if (jobs->m) {
            count_started(jobs->m, late > 0 ? late : 0, 1);
        }
        struct handler *h = find_handler(jobs, run->kind);
        if (h && h->pace.rate > 0) {
            pace_add(h, run, atof(PQgetvalue(res, i, 7)));
        } else if (h && h->batch) {
            h->pending[h->npending++] = run;
            if (h->npending == h->max)
                flush_batch(h);
        } else if (h) {
            h->fn(run, &run->job, h->arg);
        } else { /* cannot happen: we claim only kinds we handle */
            rb_job_finish(run, 0, "no handler for this kind of job", -1, 0);
        }
    }
    for (size_t i = 0; i < jobs->nhandlers; i++) {
        struct handler *h = &jobs->handlers[i];
        if (h->pace.rate > 0) {
            if (h->pn > 0 && !evtimer_pending(h->pace_timer, NULL))
                pace_fire(h);
        } else {
            flush_batch(h);
        }
    }
}

static void claimed(PGresult **results, int n, const char *err, void *arg)
{
    struct rb_jobs *jobs = arg;
    jobs->busy = 0;
    /* The batch (pump_bg): [plan, (pace_add, pace_lock,) claim, peek(, pace_next)]. */
    int p = jobs->claim_paced ? 2 : 0; /* the claim's place after the plan: 1 + p */
    if (err || n != (p ? 6 : 3)) {
        rb_warn("jobs", "could not claim jobs: %s; retrying in 1 s", err ? err : "?");
        if (!jobs->stopped)
            arm_timer(jobs, 1);
        return;
    }
    PGresult *claim = results[1 + p], *peek = results[2 + p];
    /* Where each paced kind's schedule stands now that this claim took its turns. */
    double now = rb_now_mono();
    for (int i = 0; p && i < PQntuples(results[5]); i++) {
        struct handler *h = find_handler(jobs, PQgetvalue(results[5], i, 0));
        if (h && h->pace.rate > 0)
            h->pace_next = now + atof(PQgetvalue(results[5], i, 1)) - h->pace.tau - PACE_AHEAD;
    }
    int got = PQntuples(claim);
    if (!jobs->stopped)
        dispatch(jobs, claim);
    if (got >= jobs->limit) {
        jobs->want = 1; /* probably more due now */
    } else {
        /* The earliest due of the kinds asked for. A paced kind that was not asked for (its
         * ring is full) is left out: pace_fire claims again as the ring empties. */
        double next = INFINITY;
        for (int i = 0; i < PQntuples(peek); i++) {
            const struct handler *h = find_handler(jobs, PQgetvalue(peek, i, 0));
            double due = atof(PQgetvalue(peek, i, 1));
            if (!h || h->lim <= 0)
                continue;
            /* A paced kind due now whose schedule had no turn left: when it will. */
            if (h->pace.rate > 0 && h->pn == 0 && due < h->pace_next - now)
                due = h->pace_next - now;
            if (due < next)
                next = due;
        }
        /* A paced kind left out of this claim while its schedule has no turn to give (the
         * other processes took them): the one timer must still wake for its next turn. */
        for (size_t i = 0; i < jobs->nhandlers; i++) {
            const struct handler *h = &jobs->handlers[i];
            if (h->pace.rate > 0 && h->lim <= 0 && h->pn == 0 && h->pace_next > now &&
                h->pace_next - now < next)
                next = h->pace_next - now;
        }
        if (next < INFINITY)
            arm_timer(jobs, next);
    }
    if (jobs->want && !jobs->stopped)
        event_active(jobs->kick, EV_TIMEOUT, 0);
}

static void pump_bg(struct rb_jobs *jobs)
{
    if (!jobs->started || jobs->stopped || jobs->busy || !jobs->want || jobs->nhandlers == 0)
        return;
    int limit = jobs->opt.concurrency - (int)jobs->running;
    if (limit > jobs->opt.batch)
        limit = jobs->opt.batch;
    if (limit <= 0)
        return; /* rb_job_finish pumps again when a slot frees up */
    jobs->want = 0;
    /* The kinds to claim, each with its limit: "{a,b}" and "{256,12}"; the paced ones among
     * them with their rate and burst lead. */
    struct rb_sbuf kinds = {0}, lims = {0}, paced = {0}, rates = {0}, taus = {0};
    struct rb_sbuf *lists[] = {&kinds, &lims, &paced, &rates, &taus};
    for (size_t i = 0; i < RB_ARRAY_LEN(lists); i++)
        rb_sbuf_puts(lists[i], "{");
    double now = rb_now_mono();
    int asked = 0, asked_paced = 0;
    for (size_t i = 0; i < jobs->nhandlers; i++) {
        struct handler *h = &jobs->handlers[i];
        h->lim = h->pace.rate > 0 ? pace_room(h, now) : limit;
        if (h->lim > limit)
            h->lim = limit;
        if (h->lim <= 0)
            continue;
        char n[16];
        snprintf(n, sizeof(n), "%d", h->lim);
        rb_sbuf_elem(&kinds, h->kind);
        rb_sbuf_elem(&lims, n);
        if (h->pace.rate > 0) {
            char rate[32], tau[32];
            snprintf(rate, sizeof(rate), "%.17g", h->pace.rate);
            snprintf(tau, sizeof(tau), "%.17g", h->pace.tau);
            rb_sbuf_elem(&paced, h->kind);
            rb_sbuf_elem(&rates, rate);
            rb_sbuf_elem(&taus, tau);
            asked_paced = 1;
        }
        asked = 1;
    }
    for (size_t i = 0; i < RB_ARRAY_LEN(lists); i++)
        rb_sbuf_puts(lists[i], "}");
    if (asked) {
        jobs->limit = limit;
        char lim[16];
        snprintf(lim, sizeof(lim), "%d", limit);
        const char *claim_params[7] = {jobs->worker_id, kinds.p, lim, lims.p,
                                       paced.p, rates.p, taus.p};
        const char *peek_params[1] = {kinds.p};
        const char *pace_params[1] = {paced.p};
        /* The paced kinds' schedules are locked, and read after, only when some are asked. */
        const struct rb_db_stmt paced_stmts[6] = {
            {claim_plan_sql, 0, NULL, 0},
            {pace_add_sql, 1, pace_params, 1},
            {pace_lock_sql, 1, pace_params, 1},
            {claim_sql, 7, claim_params, 1},
            {peek_sql, 1, peek_params, 1},
            {pace_next_sql, 1, pace_params, 1},
        };
        const struct rb_db_stmt stmts[3] = {
            {claim_plan_sql, 0, NULL, 0},
            {claim_sql, 7, claim_params, 1},
            {peek_sql, 1, peek_params, 1},
        };
        jobs->claim_paced = asked_paced;
        if (rb_db_batch(jobs->db, asked_paced ? paced_stmts : stmts, asked_paced ? 6 : 3, 1,
                        claimed, jobs) == RB_OK)
            jobs->busy = 1;
        else
            arm_timer(jobs, 0.1); /* the pool's queue is full: back off briefly */
    }
    for (size_t i = 0; i < RB_ARRAY_LEN(lists); i++)
        free(lists[i]->p);
}

/* Everything the runner asks of the database, and what handlers ask from it, is background
 * work (rb_db_background): users' requests go first. */
static void pump(struct rb_jobs *jobs)
{
    rb_db_background(jobs->db, 1);
    pump_bg(jobs);
    rb_db_background(jobs->db, 0);
}

/* ---- finishing ------------------------------------------------------------------------- */

static void flush_done(struct rb_jobs *jobs);

static void flushed(PGresult *res, const char *err, void *arg)
{
    struct rb_jobs *jobs = arg;
    (void)res;
    jobs->flush_busy = 0;
    if (err) /* the rows stay "running"; lease recovery re-queues them: at least once */
        rb_warn("jobs", "could not record %zu finished job%s: %s", jobs->flushing.n,
                jobs->flushing.n == 1 ? "" : "s", err);
    jobs->flushing.n = 0;
    if (jobs->done.n)
        flush_done(jobs);
}

static void flush_done_bg(struct rb_jobs *jobs)
{
    if (jobs->flush_busy || jobs->done.n == 0)
        return;
    struct id_list t = jobs->flushing;
    jobs->flushing = jobs->done;
    jobs->done = t;
    jobs->done.n = 0;
    /* "{1,2,3}" */
    size_t cap = jobs->flushing.n * 21 + 3, pos = 0;
    char *arr = rb_malloc(cap);
    arr[pos++] = '{';
    for (size_t i = 0; i < jobs->flushing.n; i++)
        pos += (size_t)snprintf(arr + pos, cap - pos, "%s%lld", i ? "," : "",
                                jobs->flushing.v[i]);
    arr[pos++] = '}';
    arr[pos] = '\0';
    const char *params[2] = {arr, jobs->worker_id};
    if (rb_db_query_prepared(jobs->db, done_sql, 2, params, flushed, jobs) == RB_OK) {
        jobs->flush_busy = 1;
    } else {
        rb_warn("jobs", "database queue full: %zu finished jobs will be retried by lease",
                jobs->flushing.n);
        jobs->flushing.n = 0;
    }
    free(arr);
}

static void flush_done(struct rb_jobs *jobs)
{
    rb_db_background(jobs->db, 1);
    flush_done_bg(jobs);
    rb_db_background(jobs->db, 0);
}

static void failed_done(PGresult *res, const char *err, void *arg)
{
    char *what = arg;
    if (err)
        rb_warn("jobs", "could not record the failure of %s: %s", what, err);
    else if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "dead") == 0)
        rb_warn("jobs", "%s is dead after its last attempt; `rabtad jobs retry` re-queues it",
                what);
    free(what);
}

static double backoff(const struct rb_jobs *jobs, int attempt)
{
    double d = jobs->opt.backoff_base * pow(2, attempt > 1 ? attempt - 1 : 0);
    if (d > jobs->opt.backoff_max)
        d = jobs->opt.backoff_max;
    /* +-10% jitter so that a burst of failures does not come back as a burst */
    return d * (0.9 + 0.2 * ((double)rand() / RAND_MAX));
}

static void finish(struct rb_job_run *run, int ok, const char *error, double retry_after,
                   int permanent, int deleted);

static void run_free(struct rb_job_run *run)
{
    free(run->kind);
    free(run->payload);
    free(run->dedup_key);
    free(run);
}

void rb_job_finish(struct rb_job_run *run, int ok, const char *error, double retry_after,
                   int permanent)
{
    finish(run, ok, error, retry_after, permanent, 0);
}

void rb_job_finish_deleted(struct rb_job_run *run)
{
    finish(run, 1, NULL, 0, 0, 1);
}

/* The run is over in this process (its row written or being written): counted, its slot
 * freed, and freed. */
static void run_end(struct rb_job_run *run, const char *outcome)
{
    struct rb_jobs *jobs = run->jobs;
    if (jobs->m) {
        char labels[160];
        snprintf(labels, sizeof(labels), "kind=\"%s\",outcome=\"%s\"", run->kind, outcome);
        rb_metrics_count(jobs->m, "rabta_jobs_processed_total", "Job runs by kind and outcome.",
                         labels, 1);
    }
    if (run->held) {
        if (run->hprev)
            run->hprev->hnext = run->hnext;
        else
            jobs->held = run->hnext;
        if (run->hnext)
            run->hnext->hprev = run->hprev;
    }
    jobs->running--;
    run_free(run);
    if (jobs->running + 1 == (size_t)jobs->opt.concurrency || jobs->want) {
        /* A slot freed up after we stopped claiming for lack of one. Claim from the next loop
         * turn, so that a batch finishing together frees all its slots first. */
        jobs->want = 1;
        if (!jobs->stopped)
            event_active(jobs->kick, EV_TIMEOUT, 0);
    }
}

void rb_job_hold(struct rb_job_run *run)
{
    if (run->held || run->finished)
        return;
    struct rb_jobs *jobs = run->jobs;
    run->held = 1;
    run->hprev = NULL;
    run->hnext = jobs->held;
    if (jobs->held)
        jobs->held->hprev = run;
    jobs->held = run;
}

static void postponed(PGresult *res, const char *err, void *arg)
{
    (void)res;
    char *what = arg;
    if (err) /* the row stays "running" and lease recovery re-queues it (an attempt spent) */
        rb_warn("jobs", "could not put off %s: %s", what, err);
    free(what);
}

void rb_job_postpone(struct rb_job_run *run, double delay, const char *why)
{
    struct rb_jobs *jobs = run->jobs;
    rb_assert(!run->finished);
    run->finished = 1;
    char id[24], secs[32];
    snprintf(id, sizeof(id), "%lld", run->job.id);
    snprintf(secs, sizeof(secs), "%.3f", delay > 0 ? delay : 0);
    const char *params[4] = {id, why ? why : "postponed", secs, jobs->worker_id};
    char *what = rb_sprintf("job %lld (%s)", run->job.id, run->kind);
    rb_db_background(jobs->db, 1);
    if (rb_db_query_prepared(jobs->db, postpone_sql, 4, params, postponed, what) != RB_OK) {
        rb_warn("jobs", "database queue full; %s will be re-queued by lease", what);
        free(what);
    }
    run_end(run, "postponed");
    rb_db_background(jobs->db, 0);
}

static void finish_bg(struct rb_job_run *run, int ok, const char *error, double retry_after,
                   int permanent, int deleted)
{
    struct rb_jobs *jobs = run->jobs;
    rb_assert(!run->finished);
    run->finished = 1;
    if (ok && deleted) {
        /* the handler's own transaction deleted the row with its work */
    } else if (ok) {
        struct id_list *l = &jobs->done;
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 64;
            l->v = rb_realloc(l->v, l->cap * sizeof(*l->v));
        }
        l->v[l->n++] = run->job.id;
        flush_done(jobs);
    } else {
        char id[24], delay[32];
        snprintf(id, sizeof(id), "%lld", run->job.id);
        snprintf(delay, sizeof(delay), "%.3f",
                 retry_after >= 0 ? retry_after : backoff(jobs, run->job.attempt));
        const char *params[5] = {id, error ? error : "failed", permanent ? "true" : "false",
                                 delay, jobs->worker_id};
        char *what = rb_sprintf("job %lld (%s, attempt %d of %d)", run->job.id, run->kind,
                                run->job.attempt, run->job.max_attempts);
        rb_info("jobs", "%s failed: %s", what, error ? error : "failed");
        if (rb_db_query_prepared(jobs->db, fail_sql, 5, params, failed_done, what) != RB_OK) {
            rb_warn("jobs", "database queue full; %s will be retried by lease", what);
            free(what);
        }
    }
    run_end(run, ok ? "ok" : "failed");
}

static void finish(struct rb_job_run *run, int ok, const char *error, double retry_after,
                   int permanent, int deleted)
{
    struct rb_db *db = run->jobs->db;
    rb_db_background(db, 1);
    finish_bg(run, ok, error, retry_after, permanent, deleted);
    rb_db_background(db, 0);
}

/* ---- lease recovery and counts ---------------------------------------------------------- */

static void leases_done(PGresult *res, const char *err, void *arg)
{
    struct rb_jobs *jobs = arg;
    if (err) {
        rb_debug("jobs", "lease recovery failed: %s", err);
        return;
    }
    int n = PQntuples(res);
    if (n > 0) {
        rb_warn("jobs", "%d job%s re-queued: their worker did not finish within the lease", n,
                n == 1 ? "" : "s");
        jobs->want = 1;
        pump(jobs);
    }
}

static void counts_done(PGresult *res, const char *err, void *arg)
{
    struct rb_jobs *jobs = arg;
    if (err || PQntuples(res) != 1)
        return;
    jobs->dead = atof(PQgetvalue(res, 0, 0));
    jobs->due = atof(PQgetvalue(res, 0, 1));
}

static void renewed(PGresult *res, const char *err, void *arg)
{
    (void)res;
    struct rb_jobs *jobs = arg;
    jobs->renew_busy = 0;
    if (err)
        rb_warn("jobs", "could not renew the leases of held runs: %s", err);
}

/* The leases of the held runs start again (every lease / 4 at most, with lease recovery), so
 * another process never takes a run this one is still doing: a call that lasts longer than
 * the lease is placed once. */
static void renew_held(struct rb_jobs *jobs)
{
    if (!jobs->held || jobs->renew_busy)
        return;
    struct rb_sbuf ids = {0};
    rb_sbuf_puts(&ids, "{");
    for (struct rb_job_run *r = jobs->held; r; r = r->hnext) {
        char id[24];
        snprintf(id, sizeof(id), "%lld", r->job.id);
        rb_sbuf_elem(&ids, id);
    }
    rb_sbuf_puts(&ids, "}");
    const char *params[2] = {ids.p, jobs->worker_id};
    if (rb_db_query_prepared(jobs->db, renew_sql, 2, params, renewed, jobs) == RB_OK)
        jobs->renew_busy = 1;
    free(ids.p);
}

static void on_lease_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rb_jobs *jobs = arg;
    if (jobs->stopped)
        return;
    char lease[32];
    snprintf(lease, sizeof(lease), "%.3f", jobs->opt.lease);
    const char *params[1] = {lease};
    rb_db_background(jobs->db, 1);
    renew_held(jobs);
    rb_db_query(jobs->db, lease_sql, 1, params, leases_done, jobs);
    rb_db_query(jobs->db, counts_sql, 0, NULL, counts_done, jobs);
    rb_db_background(jobs->db, 0);
}

/* ---- stop ----------------------------------------------------------------------------- */

static void released(PGresult *res, const char *err, void *arg)
{
    (void)res;
    struct rb_jobs *jobs = arg;
    jobs->releasing = 0;
    if (err) /* they stay "running" until lease recovery re-queues them */
        rb_warn("jobs", "could not put back the paced jobs not started: %s", err);
}

/* Paced runs still waiting for their turn go back to the queue (no attempt spent). */
static void release_paced(struct rb_jobs *jobs)
{
    struct rb_sbuf ids = {0};
    rb_sbuf_puts(&ids, "{");
    size_t n = 0;
    for (size_t i = 0; i < jobs->nhandlers; i++) {
        struct handler *h = &jobs->handlers[i];
        if (h->pace_timer)
            evtimer_del(h->pace_timer);
        for (; h->pn > 0; h->pn--, h->phead = (h->phead + 1) % h->pcap) {
            struct rb_job_run *run = h->paced[h->phead].run;
            char id[24];
            snprintf(id, sizeof(id), "%lld", run->job.id);
            rb_sbuf_elem(&ids, id);
            run_free(run);
            jobs->running--;
            n++;
        }
    }
    rb_sbuf_puts(&ids, "}");
    const char *params[1] = {ids.p};
    rb_db_background(jobs->db, 1);
    if (n > 0 && rb_db_query(jobs->db, release_sql, 1, params, released, jobs) == RB_OK)
        jobs->releasing = 1;
    rb_db_background(jobs->db, 0);
    free(ids.p);
}

void rb_jobs_stop(struct rb_jobs *jobs)
{
    jobs->stopped = 1;
    evtimer_del(jobs->timer);
    event_del(jobs->kick);
    event_del(jobs->lease_timer);
    evtimer_del(jobs->relay);
    release_paced(jobs);
    relay_send(jobs); /* the other processes still hear of what we queued last */
}

size_t rb_jobs_pending(const struct rb_jobs *jobs)
{
    return jobs ? jobs->running + (size_t)jobs->busy + (size_t)jobs->flush_busy +
                      (size_t)jobs->renew_busy +
                      (size_t)jobs->relay_busy + (size_t)jobs->releasing
                : 0;
}

void rb_jobs_free(struct rb_jobs *jobs)
{
    if (!jobs)
        return;
    event_free(jobs->timer);
    event_free(jobs->kick);
    event_free(jobs->lease_timer);
    event_free(jobs->relay); /* (the pool, freed first, calls no hook when it fails requests) */
    for (size_t i = 0; i < jobs->nhandlers; i++) {
        struct handler *h = &jobs->handlers[i];
        for (; h->pn > 0; h->pn--, h->phead = (h->phead + 1) % h->pcap)
            run_free(h->paced[h->phead].run); /* only when freed without rb_jobs_stop */
        if (h->pace_timer)
            event_free(h->pace_timer);
        free(h->kind);
        free(h->pending);
        free(h->paced);
    }
    free(jobs->handlers);
    free(jobs->worker_id);
    free(jobs->done.v);
    free(jobs->flushing.v);
    free(jobs);
}
