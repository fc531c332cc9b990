/* A citizen's comment on their own case (case_comment.h). Moved here from the app plugin so
 * that the app and the SMS channel write a comment, and a reply to an officer's question,
 * with the same statement. */
#include "cases/case_comment.h"

#include <stdio.h>

const char rb_case_comment_sql[] =
    "WITH c AS ("
    "  SELECT id, status FROM cases WHERE tracking_no = $1 AND citizen_id = $2::bigint"
    "  FOR UPDATE),"
    /* The idempotency key: its insert waits for a concurrent one with the same key and then
     * does nothing, so two tries of one request never both write. */
    " k AS ("
    "  INSERT INTO idempotency_keys (scope, key, request_hash, case_id)"
    "  SELECT $5::text, $6::text, $7::text, id FROM c WHERE $6::text IS NOT NULL"
    "  ON CONFLICT (scope, key) DO NOTHING RETURNING case_id),"
    " g AS ("
    "  SELECT id, status FROM c WHERE $6::text IS NULL OR EXISTS (SELECT 1 FROM k)),"
    " r AS ("
    "  UPDATE cases SET status = 'in_progress' FROM g"
    "  WHERE cases.id = g.id AND cases.status = 'awaiting_citizen'"
    "    AND g.status = 'awaiting_citizen'"
    "  RETURNING cases.id),"
    " ev AS ("
    "  INSERT INTO case_events (case_id, actor_type, actor_id, event, note, data)"
    "  SELECT id, 'citizen', $2::bigint::text, 'comment', $3::text,"
    "    jsonb_build_object('channel', $4::text) FROM g RETURNING at),"
    " rep AS ("
    "  INSERT INTO case_events (case_id, actor_type, actor_id, event, from_status, to_status)"
    "  SELECT id, 'citizen', $2::bigint::text, 'citizen_reply', 'awaiting_citizen',"
    "    'in_progress' FROM r),"
    " mr AS (SELECT id FROM g WHERE $8::text IS NOT NULL),"
    " msg AS MATERIALIZED ("
    "  SELECT * FROM rabta_message_queue((SELECT array_agg($11::text) FROM mr),"
    "    (SELECT array_agg($12::text) FROM mr), (SELECT array_agg($8::text) FROM mr),"
    "    case_id => (SELECT array_agg(id) FROM mr),"
    "    citizen_id => (SELECT array_agg($2::bigint) FROM mr),"
    "    template => (SELECT array_agg($9::text) FROM mr),"
    "    language => (SELECT array_agg($10::text) FROM mr)))"
    " SELECT c.status, CASE WHEN EXISTS (SELECT 1 FROM r) THEN 'in_progress' ELSE c.status END,"
    "  (SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM ev),"
    "  c.id, NOT EXISTS (SELECT 1 FROM g)"
    " FROM c, (SELECT count(*) FROM msg) m";

int rb_case_comment(struct rb_db *db, const struct rb_case_comment *c, rb_db_fn fn, void *arg)
{
    int idem = (c->idem_scope != NULL) + (c->idem_key != NULL) + (c->idem_hash != NULL);
    if (!c->tracking || !c->text || c->citizen_id <= 0 || (idem != 0 && idem != 3) ||
        (c->reply_body && (!c->reply_channel || !c->reply_to)))
        return RB_EINVAL;
    char cit[24];
    snprintf(cit, sizeof(cit), "%lld", c->citizen_id);
    const char *params[12] = {c->tracking,       cit,
                              c->text,           c->channel,
                              c->idem_scope,     c->idem_key,
                              c->idem_hash,      c->reply_body,
                              c->reply_template, c->reply_language,
                              c->reply_channel,  c->reply_to};
    return rb_db_query(db, rb_case_comment_sql, 12, params, fn, arg);
}
