/* Who is told of an escalation (docs/sla.md, "Who is told"). The SLA engine records each
 * escalation as a case event "sla.escalated" whose data names the level's notify actions
 * ([[target, via], ...]) and queues ONE job "sla.notify" per fired batch with those events'
 * ids. This file runs that job: it turns each target into people —
 *
 *   supervisor    the active supervisors of the case's department (staff accounts)
 *   oversight     every active oversight account
 *   head          the department's head (departments/<id>.yaml, head: {name, phone, email})
 *   duty_officer  the department's duty_phone (sms) and e-mail (email)
 *
 * — and reaches them by the action's way: "inbox" writes a staff notification
 * (GET /api/v1/staff/notifications), "sms" and "email" queue a message through
 * rb_message_queue_many. Every text is the template "sla.escalated" of lua/templates.lua in
 * the SLA file's notify_language (tracking number, department, service, how late, the level;
 * never the complainant's data). A target with nobody to reach is logged, counted in
 * rabta_escalation_unreachable_total and recorded as a case event "sla.unreachable".
 *
 * A retried job does nothing twice: notifications are unique per (event, person), messages
 * per (event, template, address), and an unreachable event is written once per (event,
 * target, via).
 *
 * Owns: resolving escalation targets to people. Calls: base, config, db, jobs, lua
 * (templates), sla (the SLA file's language), messages (message). */
#ifndef RB_ESCALATION_H
#define RB_ESCALATION_H

struct rb_server;

/* Registers the "sla.notify" batch handler on srv->jobs (before rb_jobs_start). srv is
 * borrowed. RB_OK or RB_ERR. */
int rb_escalation_register(struct rb_server *srv);

#endif
