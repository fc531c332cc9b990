/* SLA reports under the staff API (docs/api.md "SLA reports"):
 *
 *   GET /api/v1/staff/reports/sla?from=YYYY-MM-DD&to=YYYY-MM-DD
 *       &by=department|service|officer|district[&department=ID][&format=json|csv]
 *
 * Per group, over the cases created in the period: cases, on-time acknowledgement and
 * resolution (%), median and 90th percentile time to resolve, the open backlog by age and the
 * breaches by escalation level. Officers and supervisors see their own department (and
 * districts); oversight and administrators see every department. One query per report. */
#ifndef RB_REPORTS_H
#define RB_REPORTS_H

#include <stdio.h>

struct rb_server;

/* Registers the routes (after rb_staff_api_init). RB_OK or RB_ERR (logged). */
int rb_reports_init(struct rb_server *srv);

/* The report period of req's query (from, to): real dates YYYY-MM-DD, from not after to, at
 * most 731 days. 0 with them copied into from and to, or -1 after answering 400
 * invalid_period. */
struct rb_http_req;
int rb_reports_period(struct rb_http_req *req, char from[11], char to[11]);

/* Writes s as one CSV field (RFC 4180: quoted when it holds a comma, a quote, CR or LF, with
 * quotes doubled). A field starting with = + - @, a tab or CR (other than a plain number such as
 * "-3") gets a leading single quote, so a spreadsheet shows it as text instead of running it.
 * NULL writes an empty field. */
void rb_reports_csv_field(FILE *out, const char *s);

/* 0 when s is a date YYYY-MM-DD that exists (years 1900-9999), and *days is its day number
 * (days since 1970-01-01); -1 otherwise. */
int rb_reports_parse_date(const char *s, long *days);

/* The English name of the group id of a report grouped by `by`: the department's, service's
 * or district's in cfg when by names that kind, else "" (an unknown id, another grouping).
 * Borrowed from cfg. */
struct rb_config;
const char *rb_reports_group_name(const struct rb_config *cfg, const char *by, const char *id);

#endif
