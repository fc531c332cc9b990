/* A citizen's rating of their own case (case_rating.h). Moved here from the app plugin so
 * that the app and the SMS channel record ratings with the same statement. */
#include "cases/case_rating.h"

#include <stdio.h>

#include "base/common.h"

const char rb_case_rating_sql[] =
    "WITH c AS ("
    "  SELECT id, kind, status, coalesce($6::float8 IS NOT NULL"
    "    AND coalesce(resolved_at, closed_at) + make_interval(secs => $6::float8) < now(),"
    "    false) AS late, coalesce(resolved_at, closed_at) + make_interval(secs => $6::float8) AS ends"
    "  FROM cases WHERE tracking_no = $1 AND citizen_id = $2::bigint"
    "  FOR UPDATE),"
    " a AS ("
    "  SELECT id, status AS from_status, NOT ($4::boolean OR kind = 'feedback') AS reopen"
    "  FROM c WHERE NOT c.late AND CASE WHEN $4::boolean OR kind = 'feedback' THEN"
    "      (status = 'resolved' AND kind IN ('complaint', 'feedback'))"
    "      OR (status = 'answered' AND kind = 'information') OR status = 'closed'"
    "    ELSE"
    "      (status = 'resolved' AND kind = 'complaint')"
    "      OR (status = 'answered' AND kind = 'information')"
    "      OR (status = 'closed' AND kind IN ('complaint', 'information')) END),"
    " u AS ("
    "  UPDATE cases SET"
    "    status = CASE WHEN a.reopen THEN 'reopened' ELSE 'closed' END,"
    "    rating = $3::int,"
    "    closed_at = CASE WHEN a.reopen THEN NULL ELSE coalesce(cases.closed_at, now()) END,"
    "    escalation_level = cases.escalation_level + CASE WHEN a.reopen THEN 1 ELSE 0 END"
    "  FROM a WHERE cases.id = a.id AND cases.status = a.from_status"
    "  RETURNING cases.id, a.from_status, cases.status AS to_status, a.reopen,"
    "    cases.escalation_level),"
    " ev AS ("
    "  INSERT INTO case_events (case_id, actor_type, actor_id, event, from_status, to_status,"
    "    note, data)"
    "  SELECT id, 'citizen', $2::bigint::text, CASE WHEN reopen THEN 'reopened' ELSE 'rated' END,"
    "    from_status, to_status, $5,"
    "    jsonb_build_object('rating', $3::int, 'satisfied', $4::boolean) FROM u),"
    " esc AS ("
    "  INSERT INTO case_events (case_id, actor_type, actor_id, event, data)"
    "  SELECT id, 'citizen', $2::bigint::text, 'escalation.requested',"
    "    jsonb_build_object('level', escalation_level, 'reason', 'citizen_unsatisfied',"
    "      'rating', $3::int) FROM u WHERE reopen)"
    " SELECT c.kind, c.status, u.to_status, u.escalation_level,"
    "  CASE WHEN c.late THEN to_char(c.ends AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    "  END FROM c LEFT JOIN u ON true";

int rb_case_rate(struct rb_db *db, const char *tracking, long long citizen_id, int rating,
                 int satisfied, const char *comment, double reopen_window, rb_db_fn fn,
                 void *arg)
{
    char cit[24], rs[8], win[32];
    snprintf(cit, sizeof(cit), "%lld", citizen_id);
    snprintf(rs, sizeof(rs), "%d", rating);
    snprintf(win, sizeof(win), "%.0f", reopen_window);
    const char *params[6] = {tracking, cit, rs, satisfied ? "true" : "false", comment,
                             reopen_window > 0 ? win : NULL};
    return rb_db_query(db, rb_case_rating_sql, 6, params, fn, arg);
}
