/* core/feedback/: the HTTP side of proactive feedback (docs/feedback.md). Offices submit
 * transactions (feedback_api: POST /api/v1/transactions), administrators keep the registry of
 * offices and officials, agents call the random sample, and staff read the evidence
 * (feedback_reports). Calls: base, config, net, db, staff (its door and roles), outreach. */
/*   POST /api/v1/transactions                        up to 1,000; an office's API key
 *                                                    (X-Api-Key) or staff token
 *   GET  /api/v1/staff/offices                       the registry (scoped like cases)
 *   POST /api/v1/staff/offices                       admin: add or change one office
 *   GET  /api/v1/staff/officials                     ?office=ID
 *   POST /api/v1/staff/officials                     admin: add or change one official
 *   GET  /api/v1/staff/officials/:id                 an official's figures and actions
 *   GET  /api/v1/staff/agent/next                    agent: the next citizen to call
 *   POST /api/v1/staff/agent/transactions/:id        agent: the answers and the outcome */
#ifndef RB_FEEDBACK_API_H
#define RB_FEEDBACK_API_H

struct rb_server;

#define RB_FEEDBACK_BATCH_MAX 1000 /* transactions a request */

/* Registers the routes (after rb_staff_api_init). RB_OK or RB_ERR (logged). */
int rb_feedback_api_init(struct rb_server *srv);

#endif
