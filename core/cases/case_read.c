/* Batched reads of cases by tracking number. See case_read.h. */
#include "cases/case_read.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "db/db.h"

#define BATCH_MAX 500
#define WAITING_MAX 50000

static const char status_sql[] =
    "SELECT c.id, coalesce(c.citizen_id, 0), c.tracking_no, c.kind, c.status, "
    "  coalesce(c.service_id, ''), coalesce(c.department_id, ''), "
    "  to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "  to_char(c.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "  coalesce(to_char(c.resolve_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), "
    "  coalesce(right(ci.phone, 4), ''), "
    "  rabta_sla_view(c.status, c.resolve_due_at, c.paused_at)::text "
    "FROM cases c LEFT JOIN citizens ci ON ci.id = c.citizen_id "
    "WHERE c.tracking_no = ANY($1::text[])";

struct want {
    struct want *next;
    char tracking[RB_TRACKING_LEN];
    rb_case_status_fn fn;
    void *arg;
};

struct rb_case_read {
    struct rb_db *db;       /* borrowed */
    struct event *flush_ev; /* owned */
    struct want *head;      /* waiting for the next query */
    size_t waiting, asking;
};

struct query {
    struct rb_case_read *r;
    struct want *head;
    size_t n;
};

static void flush(struct rb_case_read *r);

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush(arg);
}

struct rb_case_read *rb_case_read_new(struct event_base *base, struct rb_db *db)
{
    struct rb_case_read *r = rb_calloc(1, sizeof(*r));
    r->db = db;
    r->flush_ev = event_new(base, -1, 0, on_flush, r);
    if (!r->flush_ev)
        rb_fatal("out of memory");
    return r;
}

static void fail_all(struct want *w, const char *err)
{
    while (w) {
        struct want *next = w->next;
        w->fn(NULL, err, w->arg);
        free(w);
        w = next;
    }
}

void rb_case_read_free(struct rb_case_read *r)
{
    if (!r)
        return;
    fail_all(r->head, "shutting down");
    event_free(r->flush_ev);
    free(r);
}

size_t rb_case_read_pending(const struct rb_case_read *r)
{
    return r ? r->waiting + r->asking : 0;
}

int rb_case_status_get(struct rb_case_read *r, const char *tracking, rb_case_status_fn fn,
                       void *arg)
{
    if (r->waiting >= WAITING_MAX)
        return RB_EAGAIN;
    if (!tracking || strlen(tracking) != RB_TRACKING_LEN - 1)
        return RB_EINVAL;
    struct want *w = rb_malloc(sizeof(*w));
    memcpy(w->tracking, tracking, RB_TRACKING_LEN);
    w->fn = fn;
    w->arg = arg;
    w->next = r->head;
    r->head = w;
    if (r->waiting++ == 0)
        event_active(r->flush_ev, EV_TIMEOUT, 0); /* at the end of this turn of the loop */
    return RB_OK;
}

static void fill(PGresult *res, int row, struct rb_case_status *st)
{
    memset(st, 0, sizeof(*st));
    st->id = atoll(PQgetvalue(res, row, 0));
    st->citizen_id = atoll(PQgetvalue(res, row, 1));
    snprintf(st->tracking_no, sizeof(st->tracking_no), "%s", PQgetvalue(res, row, 2));
    snprintf(st->kind, sizeof(st->kind), "%s", PQgetvalue(res, row, 3));
    snprintf(st->status, sizeof(st->status), "%s", PQgetvalue(res, row, 4));
    snprintf(st->service, sizeof(st->service), "%s", PQgetvalue(res, row, 5));
    snprintf(st->department, sizeof(st->department), "%s", PQgetvalue(res, row, 6));
    snprintf(st->created_at, sizeof(st->created_at), "%s", PQgetvalue(res, row, 7));
    snprintf(st->updated_at, sizeof(st->updated_at), "%s", PQgetvalue(res, row, 8));
    snprintf(st->resolve_due_at, sizeof(st->resolve_due_at), "%s", PQgetvalue(res, row, 9));
    snprintf(st->phone_last4, sizeof(st->phone_last4), "%s", PQgetvalue(res, row, 10));
    snprintf(st->sla, sizeof(st->sla), "%s", PQgetvalue(res, row, 11));
}

static void answered(PGresult *res, const char *err, void *arg)
{
    struct query *q = arg;
    q->r->asking -= q->n;
    if (err) {
        fail_all(q->head, err);
    } else {
        int rows = PQntuples(res);
        for (struct want *w = q->head, *next; w; w = next) {
            next = w->next;
            int found = -1;
            for (int i = 0; i < rows && found < 0; i++)
                if (strcmp(PQgetvalue(res, i, 2), w->tracking) == 0)
                    found = i;
            if (found < 0) {
                w->fn(NULL, NULL, w->arg);
            } else {
                struct rb_case_status st;
                fill(res, found, &st);
                w->fn(&st, NULL, w->arg);
            }
            free(w);
        }
    }
    free(q);
}

static void flush(struct rb_case_read *r)
{
    while (r->head) {
        struct query *q = rb_calloc(1, sizeof(*q));
        q->r = r;
        /* Take up to BATCH_MAX; "{A,B,...}" (tracking numbers need no quoting). */
        char *arr = rb_malloc(BATCH_MAX * RB_TRACKING_LEN + 3);
        size_t pos = 0;
        arr[pos++] = '{';
        while (r->head && q->n < BATCH_MAX) {
            struct want *w = r->head;
            r->head = w->next;
            w->next = q->head;
            q->head = w;
            if (q->n++)
                arr[pos++] = ',';
            memcpy(arr + pos, w->tracking, RB_TRACKING_LEN - 1);
            pos += RB_TRACKING_LEN - 1;
        }
        arr[pos++] = '}';
        arr[pos] = '\0';
        r->waiting -= q->n;
        r->asking += q->n;
        const char *params[1] = {arr};
        if (rb_db_query_prepared(r->db, status_sql, 1, params, answered, q) != RB_OK) {
            r->asking -= q->n;
            fail_all(q->head, "the database is overloaded; try again shortly");
            free(q);
        }
        free(arr);
    }
}
