/* A staff member's notifications and contact details under the staff API (docs/api.md,
 * "Notifications", "Staff accounts"):
 *
 *   GET   /api/v1/staff/notifications          ?unread=true  limit (1-200, 50)  before=ID
 *   POST  /api/v1/staff/notifications/:id/read
 *   PATCH /api/v1/staff/accounts/:username      {phone, email} (admins; null clears)
 *
 * Notifications are what escalations with `via: inbox` leave for a person
 * (core/messages/escalation.c), newest first; each names the case by tracking number and
 * carries the text of lua/templates.lua's sla.escalated. Everyone sees only their own. The
 * unread count is also in GET /api/v1/staff/me. */
#ifndef RB_STAFF_NOTIFY_H
#define RB_STAFF_NOTIFY_H

struct rb_server;

/* Registers the routes (after rb_staff_api_init). RB_OK or RB_ERR (logged). */
int rb_staff_notify_init(struct rb_server *srv);

#endif
