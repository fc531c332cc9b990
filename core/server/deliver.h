/* Handing cases to their department's plugin (DESIGN.md: "deliver ... hand a new case to its
 * department plugin").
 *
 * A new case ('routed' event) and a transfer ('transfer' event, data.to_department) each
 * queue a "case.deliver" job in the transaction that commits the event (case_event_jobs,
 * migration 0012). The handler loads the case as the department may see it (the complainant's
 * contact left out unless RB_SQL_CONTACT_VISIBLE), finds the department the event sends it to
 * and that department's plugin, and hands the run to the plugin's delivery function (host API
 * department_deliver), which finishes it: retries use the jobs queue's back-off. A department
 * whose plugin registered no delivery function (or that no longer exists) finishes at once.
 *
 * The queue allows a delivery 100 attempts (migration 0012); the plugin gives up sooner by
 * finishing a run as permanent (the webhook plugin's max_attempts). */
#ifndef RB_DELIVER_H
#define RB_DELIVER_H

struct rb_server;

/* Registers the "case.deliver" handler on srv->jobs. Needs srv->db; reads srv->cfg and
 * srv->plugins at each run. RB_OK or an error code. */
int rb_deliver_register(struct rb_server *srv);

#endif
