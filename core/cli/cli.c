/* Subcommands on the database: they start the embedded PostgreSQL if nothing runs it yet
 * (and stop it afterwards), apply migrations, then talk to the database directly. Blocking
 * libpq is right here: there is no event loop. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <math.h>

#include "base/log.h"
#include "lua/script.h"
#include "server/server.h"

PGconn *rb_cli_connect(struct rb_server *srv)
{
    char *err = NULL;
    if (rb_server_open_database(srv, &err) != RB_OK) {
        fprintf(stderr, "rabtad: %s\n", err ? err : "the database cannot be opened");
        free(err);
        return NULL;
    }
    PGconn *conn = NULL;
    if (rb_server_migrate(srv, &conn) != RB_OK)
        return NULL;
    return conn;
}

static int print_result(PGresult *res, const char *what)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "rabtad: %s failed: %s", what, PQresultErrorMessage(res));
        return 1;
    }
    int nf = PQnfields(res), nt = PQntuples(res);
    if (nf == 0)
        return 0;
    int *w = rb_calloc((size_t)nf, sizeof(int));
    for (int c = 0; c < nf; c++) {
        w[c] = (int)strlen(PQfname(res, c));
        for (int r = 0; r < nt; r++) {
            int l = PQgetlength(res, r, c);
            if (l > w[c])
                w[c] = l > 60 ? 60 : l;
        }
    }
    for (int c = 0; c < nf; c++)
        printf("%-*s%s", w[c], PQfname(res, c), c + 1 < nf ? "  " : "\n");
    for (int r = 0; r < nt; r++)
        for (int c = 0; c < nf; c++) {
            const char *v = PQgetisnull(res, r, c) ? "-" : PQgetvalue(res, r, c);
            printf("%-*.*s%s", w[c], 60, v, c + 1 < nf ? "  " : "\n");
        }
    free(w);
    return 0;
}

static const char *const job_states[] = {"queued", "running", "failed", "dead", "cancelled", NULL};

static int valid_state(const char *s)
{
    for (const char *const *p = job_states; *p; p++)
        if (strcmp(*p, s) == 0)
            return 1;
    return 0;
}

static int valid_id(const char *s)
{
    if (!s || !*s || strlen(s) > 18)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int jobs_list(PGconn *conn, const struct rb_cli_opts *o)
{
    char limit[24];
    snprintf(limit, sizeof(limit), "%ld", o->limit > 0 ? o->limit : 50);
    const char *params[2] = {o->state, limit};
    PGresult *res = PQexecParams(
        conn,
        "SELECT id, kind, state, attempts || '/' || max_attempts AS attempts, "
        "to_char(run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS run_at, "
        "coalesce(dedup_key, '-') AS dedup_key, coalesce(last_error, '') AS last_error "
        "FROM jobs WHERE ($1::text IS NULL OR state = $1) ORDER BY run_at, id LIMIT $2::int",
        2, NULL, params, NULL, NULL, 0);
    int rc = print_result(res, "listing jobs");
    PQclear(res);
    return rc;
}

/* retry: dead, failed or cancelled -> queued now with a fresh set of attempts.
 * cancel: queued, failed or dead -> cancelled. A running job cannot be cancelled. */
static int jobs_change(PGconn *conn, const char *verb, const char *id)
{
    static const char retry_sql[] =
        "UPDATE jobs SET state = 'queued', attempts = 0, run_at = now(), last_error = NULL, "
        "updated_at = now() WHERE id = $1::bigint AND state IN ('dead', 'failed', 'cancelled') "
        "RETURNING id";
    static const char cancel_sql[] =
        "UPDATE jobs SET state = 'cancelled', updated_at = now() "
        "WHERE id = $1::bigint AND state IN ('queued', 'failed', 'dead') RETURNING id";
    int retry = strcmp(verb, "retry") == 0;
    const char *params[1] = {id};
    PGresult *res = PQexecParams(conn, retry ? retry_sql : cancel_sql, 1, NULL, params, NULL,
                                 NULL, 0);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "rabtad: jobs %s %s failed: %s", verb, id, PQresultErrorMessage(res));
        rc = 1;
    } else if (PQntuples(res) == 0) {
        PGresult *st = PQexecParams(conn, "SELECT state FROM jobs WHERE id = $1::bigint", 1,
                                    NULL, params, NULL, NULL, 0);
        if (PQresultStatus(st) == PGRES_TUPLES_OK && PQntuples(st) == 1)
            fprintf(stderr, "rabtad: job %s is %s; only %s jobs can be %s\n", id,
                    PQgetvalue(st, 0, 0),
                    retry ? "dead, failed or cancelled" : "queued, failed or dead",
                    retry ? "retried" : "cancelled");
        else
            fprintf(stderr, "rabtad: there is no job %s\n", id);
        PQclear(st);
        rc = 1;
    } else {
        printf("job %s %s\n", id, retry ? "queued to run now" : "cancelled");
    }
    PQclear(res);
    return rc;
}

int rb_cli_jobs(struct rb_server *srv, int nargs, char **args, const struct rb_cli_opts *o)
{
    const char *verb = nargs > 0 ? args[0] : "list";
    int rc;
    if (strcmp(verb, "list") == 0) {
        if (nargs > 1) {
            fprintf(stderr, "rabtad: jobs list takes no argument (use --state STATE)\n");
            return 2;
        }
        if (o->state && !valid_state(o->state)) {
            fprintf(stderr, "rabtad: --state %s: expected queued, running, failed, dead or "
                            "cancelled\n", o->state);
            return 2;
        }
    } else if (strcmp(verb, "retry") == 0 || strcmp(verb, "cancel") == 0) {
        if (nargs != 2 || !valid_id(args[1])) {
            fprintf(stderr, "rabtad: usage: rabtad jobs -c FILE %s ID (ID is a job number, "
                            "as shown by jobs list)\n", verb);
            return 2;
        }
    } else {
        fprintf(stderr, "rabtad: unknown jobs command \"%s\": use list, retry ID or cancel ID\n",
                verb);
        return 2;
    }
    PGconn *conn = rb_cli_connect(srv);
    if (!conn) {
        rb_server_cleanup(srv);
        return 1;
    }
    if (strcmp(verb, "list") == 0)
        rc = jobs_list(conn, o);
    else
        rc = jobs_change(conn, verb, args[1]);
    /* The runners of any server on this database learn of re-queued jobs. */
    if (rc == 0 && strcmp(verb, "retry") == 0)
        PQclear(PQexec(conn, "NOTIFY rabta_jobs"));
    PQfinish(conn);
    rb_server_cleanup(srv);
    return rc;
}

int rb_cli_route(struct rb_server *srv, const struct rb_cli_opts *o)
{
    if (!o->dry_run) {
        fprintf(stderr, "rabtad: usage: rabtad route -c FILE --dry-run '{\"service\": ..., "
                        "\"kind\": ..., \"text\": ...}'\n");
        return 2;
    }
    json_error_t je;
    json_t *in = json_loads(o->dry_run, JSON_REJECT_DUPLICATES, &je);
    if (!in || !json_is_object(in)) {
        fprintf(stderr, "rabtad: --dry-run: %s (expected a JSON object, column %d)\n",
                in ? "not an object" : je.text, je.column);
        json_decref(in);
        return 2;
    }
    static const char *const str_keys[] = {"service", "kind", "text", "district", "channel",
                                           "language", "official"};
    const char *v[RB_ARRAY_LEN(str_keys)] = {0};
    const char *key;
    json_t *val;
    json_object_foreach(in, key, val) {
        size_t i = 0;
        while (i < RB_ARRAY_LEN(str_keys) && strcmp(str_keys[i], key) != 0)
            i++;
        if (i < RB_ARRAY_LEN(str_keys) && json_is_string(val)) {
            v[i] = json_string_value(val);
        } else if ((strcmp(key, "lat") == 0 || strcmp(key, "long") == 0) && json_is_number(val)) {
            continue;
        } else {
            fprintf(stderr, "rabtad: --dry-run: field \"%s\" is unknown or of the wrong type "
                            "(strings: service, kind, text, district, channel, language, "
                            "official; numbers: lat, long)\n", key);
            json_decref(in);
            return 2;
        }
    }
    json_t *lat = json_object_get(in, "lat"), *lon = json_object_get(in, "long");
    struct rb_route_in ri = {
        .service = v[0], .kind = v[1] ? v[1] : "complaint", .text = v[2], .district = v[3],
        .channel = v[4] ? v[4] : "app", .language = v[5] ? v[5] : "ur", .official = v[6],
        .lat = lat ? json_number_value(lat) : NAN, .lon = lon ? json_number_value(lon) : NAN,
    };
    struct rb_errors errs;
    rb_errors_init(&errs);
    struct rb_script *rules = rb_script_load(srv->cfg->lua_dir, srv->cfg, &errs);
    if (!rules) {
        rb_server_print_errors(&errs);
        rb_errors_free(&errs);
        json_decref(in);
        return 2;
    }
    rb_errors_free(&errs);
    struct rb_route_out out;
    char err[512] = "";
    int rc = rb_script_route(rules, &ri, &out, err, sizeof(err));
    json_t *flags = json_array();
    for (unsigned bit = 1; bit; bit <<= 1)
        if ((out.flags & bit) && rb_route_flag_name(bit))
            json_array_append_new(flags, json_string(rb_route_flag_name(bit)));
    json_t *res = json_pack("{s:s, s:s, s:i, s:s, s:o, s:b}", "department", out.department,
                            "category", out.category, "priority", out.priority, "sla_policy",
                            out.sla_policy, "flags", flags, "triage", out.triage);
    if (rc != RB_OK)
        json_object_set_new(res, "error", json_string(err));
    char *text = json_dumps(res, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", text);
    free(text);
    json_decref(res);
    json_decref(in);
    rb_script_free(rules);
    return 0;
}
