/* A citizen's comment on their own case, whichever door it comes through: the app's
 * POST /api/v1/cases/:tracking/comments, or an SMS answering an officer's question
 * (plugins/sms_kannel). On a case awaiting the citizen the comment is also their reply. */
#ifndef RB_CASE_COMMENT_H
#define RB_CASE_COMMENT_H

#include "base/common.h"
#include "db/db.h"

/* One statement: with the case locked, the idempotency key if one is given (a key already
 * stored: nothing is written), the 'comment' event (note: the text; data: {"channel"}); when
 * the case is awaiting the citizen, status in_progress and a 'citizen_reply' event
 * (awaiting_citizen → in_progress), which resumes the SLA clock (migration 0006's trigger
 * queues sla.resume); and the confirmation message with its message.send job when one is
 * given. Answers one row: status before, status after, the comment's time (ISO 8601 UTC; NULL
 * when replayed), case id, replayed (boolean); no row: not the citizen's case.
 *   $1 tracking  $2 citizen  $3 text  $4 channel  $5 idem scope  $6 idem key  $7 idem hash
 *   $8 reply body  $9 reply template  $10 reply language  $11 reply channel  $12 reply to */
extern const char rb_case_comment_sql[];

/* Runs rb_case_comment_sql for c (borrowed for the call). RB_EINVAL when tracking, text or a
 * citizen is missing, the idempotency fields are not all given or all NULL, or a reply body
 * comes without its channel and address (fn not called); otherwise as rb_db_query. */
int rb_case_comment(struct rb_db *db, const struct rb_case_comment *c, rb_db_fn fn, void *arg);

#endif
