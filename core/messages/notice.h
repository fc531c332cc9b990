/* Notices to citizens on case events: the 'notice' job (migrations/0014_notices.sql queues
 * one for routed, acknowledge, transfer, resolve and answer) renders the template
 * "notice.<event>" in the case's language and queues it as an SMS notice to the citizen's
 * phone (none without a phone, after STOP, or for 'routed' of a case that came by SMS, whose
 * reply already carried the tracking number). One message per event: a retried job finds
 * it stored (messages.event_id is unique). */
#ifndef RB_NOTICE_H
#define RB_NOTICE_H

struct rb_server;

#define RB_NOTICE_JOB "notice"

/* Registers the job handler on srv->jobs (before rb_jobs_start). srv is borrowed. */
int rb_notice_register(struct rb_server *srv);

#endif
