/* Staff accounts managed by administrators through the staff API (docs/api.md "Staff
 * accounts"), the same rules and statements as `rabtad staff`:
 *
 *   GET  /api/v1/staff/accounts                      every account with its state
 *   POST /api/v1/staff/accounts                      {username, role, department?,
 *                                                     display_name?, districts?, phone?,
 *                                                     email?, office?, password?}
 *   POST /api/v1/staff/accounts/:username/disable    revokes its sessions
 *   POST /api/v1/staff/accounts/:username/password   {password?}; revokes its sessions
 *
 * Without a password, one is made and shown once in the answer (`password`). Contact details
 * are changed with PATCH /api/v1/staff/accounts/:username (staff_notify.h). */
#ifndef RB_STAFF_ADMIN_H
#define RB_STAFF_ADMIN_H

struct rb_server;

/* Registers the routes (after rb_staff_api_init). RB_OK or RB_ERR (logged). */
int rb_staff_admin_init(struct rb_server *srv);

#endif
