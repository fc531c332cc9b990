"""The SLA engine with the real binary and a real PostgreSQL, on a calendar that is always
open (business time = wall time) and durations of seconds, so the test runs fast:
acknowledgement and resolution deadlines fire at their time (never before), exactly once;
the escalation ladder climbs level by level; an acknowledged case stops its acknowledgement
timer; waiting for the citizen pauses the clock; a deadline missed while no process ran fires
at the next start; three processes fire every deadline once."""
import hashlib
import json
import os
import secrets

import rbtest

SLA = """
calendar: always.yaml
policies:
  default: { acknowledge: %(ack)s, resolve: %(resolve)s, warn_at: [0.5] }
  urgent:  { acknowledge: %(ack)s, resolve: %(resolve)s, warn_at: [0.5] }
  information: { acknowledge: %(ack)s, resolve: %(resolve)s }
  feedback: { acknowledge: %(ack)s, resolve: %(resolve)s }
escalation:
  - after: 0s
    actions: [ { notify: supervisor, via: inbox }, { raise_priority: 1 } ]
  - after: 2s
    actions: [ { reassign: supervisor }, { notify: supervisor, via: sms } ]
  - after: 4s
    actions: [ { flag: oversight } ]
"""

ALWAYS = """
timezone: UTC
hours:
  mon-sun: [00:00-24:00]
"""


class SlaTest(rbtest.TestCase):
    def setUp(self):
        super().setUp()
        self.pgs = self.pg()

    def server(self, name="rabtad", ack="2s", resolve="4s", start=True):
        rd = self.rabtad(pg=self.pgs, name=name)
        d = os.path.join(self.tmp, "sla-" + name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "always.yaml"), "w") as f:
            f.write(ALWAYS)
        with open(os.path.join(d, "sla.yaml"), "w") as f:
            f.write(SLA % {"ack": ack, "resolve": resolve})
        rd.config["sla"] = os.path.join(d, "sla.yaml")
        if start:
            rd.start()
        return rd

    def submit(self, rd, n=1):
        out = []
        for _ in range(n):
            r = rd.post("/api/v1/cases", {"kind": "complaint", "anonymous": True,
                                          "service": "domicile_certificate",
                                          "text": "pending for weeks"})
            self.assertEqual(r.status, 201, r)
            out.append(r.json["tracking_no"])
        return out

    def case_id(self, tn):
        return int(self.pgs.scalar("SELECT id FROM cases WHERE tracking_no = '%s'" % tn))

    def sla_jobs(self, cid):
        return int(self.pgs.scalar("SELECT count(*) FROM jobs WHERE kind = 'sla.check' AND "
                                   "(payload->>'case_id')::bigint = %d" % cid))

    def wait_plan_ended(self, cid, what, timeout=60):
        """Until the case has no sla.check job left: nothing of its plan can fire after."""
        rbtest.wait_until(lambda: self.sla_jobs(cid) == 0, timeout, interval=0.2, what=what)

    def firings(self, cid, where="true"):
        return self.pgs.query("SELECT check_kind, level, breached, "
                              "extract(epoch from fired_at - due) FROM sla_firings "
                              "WHERE case_id = %d AND %s ORDER BY due, check_kind, level"
                              % (cid, where))

    def test_deadlines_are_stored_and_breaches_fire_at_their_time(self):
        rd = self.server()
        cid = self.case_id(self.submit(rd)[0])
        row = self.pgs.query("SELECT extract(epoch from ack_due_at - created_at), "
                             "extract(epoch from resolve_due_at - created_at) FROM cases "
                             "WHERE id = %d" % cid)[0]
        self.assertAlmostEqual(float(row[0]), 2, delta=1.0)
        self.assertAlmostEqual(float(row[1]), 4, delta=1.0)
        rbtest.wait_until(lambda: self.firings(cid, "check_kind = 'resolve'"), 10,
                          what="the resolution breach")
        # How late is tests/bench/bench_sla.sh's business; here: never before the deadline.
        for check, level, breached, late in self.firings(cid):
            self.assertEqual(breached, "t", (check, level))
            rbtest.log("%s level %s fired %.3f s after its deadline" % (check, level, float(late)))
            self.assertGreaterEqual(float(late), 0, "%s level %s fired early" % (check, level))

    def test_ladder_climbs_level_by_level_with_its_actions(self):
        rd = self.server()
        cid = self.case_id(self.submit(rd)[0])
        rbtest.wait_until(lambda: len(self.firings(cid, "check_kind = 'resolve'")) == 3, 15,
                          what="three escalation levels")
        levels = [int(f[1]) for f in self.firings(cid, "check_kind = 'resolve'")]
        self.assertEqual(levels, [0, 1, 2])
        events = self.pgs.query("SELECT event, data->>'level' FROM case_events WHERE case_id = %d "
                                "AND event LIKE 'sla.%%' AND event <> 'sla.unreachable' ORDER BY id" % cid)
        self.assertEqual([e[0] for e in events],
                         ["sla.ack_breached", "sla.warning", "sla.escalated", "sla.escalated",
                          "sla.escalated"])
        self.assertEqual([e[1] for e in events if e[0] == "sla.escalated"], ["1", "2", "3"])
        row = self.pgs.query("SELECT escalation_level, priority, flagged_oversight_at IS NOT NULL "
                             "FROM cases WHERE id = %d" % cid)[0]
        self.assertEqual(row[0], "3")
        self.assertEqual(row[2], "t")
        # No staff here: every person the ladder names is recorded as unreachable
        # (tests/integration/test_escalation.py has the people).
        lost = "SELECT data->>'action', data->>'via', data->>'level' FROM case_events WHERE " \
               "case_id = %d AND event = 'sla.unreachable' ORDER BY 1, 2" % cid
        rbtest.wait_until(lambda: len(self.pgs.query(lost)) == 3, 10, what="three unreachable")
        self.assertEqual(self.pgs.query(lost), [["notify", "inbox", "1"], ["notify", "sms", "2"],
                                                ["reassign", "", "2"]])
        # No plugin here sends SMS: that is the reason given, once, and the job that told is
        # not retried for it.
        why = self.pgs.scalar("SELECT data->>'reason' FROM case_events WHERE case_id = %d AND "
                              "event = 'sla.unreachable' AND data->>'via' = 'sms'" % cid)
        self.assertIn('no loaded plugin sends messages of channel "sms"', why)
        rbtest.wait_until(lambda: self.pgs.scalar("SELECT count(*) FROM jobs WHERE kind = "
                                                  "'sla.notify'") == "0", 20,
                          what="the sla.notify jobs to end, not to wait for a retry")
        self.wait_plan_ended(cid, "the ladder's last job to end")
        self.assertEqual(len(self.firings(cid, "check_kind = 'resolve'")), 3,
                         "the ladder fired past its last level")

    def test_acknowledged_case_stops_its_acknowledgement_timer(self):
        rd = self.server(ack="2s", resolve="30s")
        cid = self.case_id(self.submit(rd)[0])
        self.pgs.psql("UPDATE cases SET status = 'acknowledged' WHERE id = %d" % cid)
        rbtest.wait_until(lambda: self.firings(cid, "check_kind = 'ack'"), 6,
                          what="the acknowledgement check")
        self.assertEqual(self.firings(cid, "check_kind = 'ack'")[0][2], "f")
        self.assertEqual(self.pgs.scalar("SELECT count(*) FROM case_events WHERE case_id = %d "
                                         "AND event = 'sla.ack_breached'" % cid), "0")

    def test_closed_case_fires_nothing_more(self):
        # Its first job comes due (the check finds the case closed and queues nothing more),
        # and only then is "nothing fired" looked at.
        rd = self.server(ack="4s", resolve="8s")
        cid = self.case_id(self.submit(rd)[0])
        self.assertEqual(self.sla_jobs(cid), 1, "the case's first SLA job")
        self.pgs.psql("UPDATE cases SET status = 'resolved' WHERE id = %d" % cid)
        self.wait_plan_ended(cid, "the closed case's SLA job to end")
        self.assertEqual(self.pgs.scalar("SELECT count(*) FROM case_events WHERE case_id = %d "
                                         "AND event LIKE 'sla.%%'" % cid), "0")

    def test_waiting_for_the_citizen_pauses_the_clock(self):
        rd = self.server(ack="4s", resolve="8s")
        cid = self.case_id(self.submit(rd)[0])
        due0 = float(self.pgs.scalar("SELECT extract(epoch from resolve_due_at) FROM cases "
                                     "WHERE id = %d" % cid))
        self.pgs.psql("UPDATE cases SET status = 'acknowledged' WHERE id = %d;"
                      "UPDATE cases SET status = 'awaiting_citizen' WHERE id = %d" % (cid, cid))
        # The plan's next job comes due, finds the case paused and ends: nothing is left that
        # could fire while the citizen is asked. Then the database clock passes the original
        # deadline, still with nothing fired.
        self.wait_plan_ended(cid, "the paused case's SLA job to end")
        self.pgs.wait_clock_past(due0 + 1, what="the original deadline to pass")
        self.assertEqual(self.pgs.scalar("SELECT count(*) FROM case_events WHERE case_id = %d "
                                         "AND event LIKE 'sla.%%'" % cid), "0")
        self.pgs.psql("UPDATE cases SET status = 'in_progress' WHERE id = %d" % cid)
        rbtest.wait_until(lambda: self.pgs.scalar(
            "SELECT count(*) FROM case_events WHERE case_id = %d AND event = 'sla.resumed'" % cid)
            == "1", 30, what="the resume")
        due1, paused = map(float, self.pgs.query(
            "SELECT extract(epoch from c.resolve_due_at), e.data->>'paused_seconds' FROM cases c "
            "JOIN case_events e ON e.case_id = c.id AND e.event = 'sla.resumed' "
            "WHERE c.id = %d" % cid)[0])
        self.assertGreater(paused, 1, "the pause as recorded")
        self.assertAlmostEqual(due1, due0 + paused, delta=1.0,
                               msg="the deadline did not move by the pause")
        rbtest.wait_until(lambda: self.firings(cid, "check_kind = 'resolve' AND breached"), 10,
                          what="the breach after the resume")

    def test_deadline_missed_while_down_fires_at_next_start(self):
        rd = self.server(ack="3s", resolve="4s")
        cid = self.case_id(self.submit(rd)[0])
        self.assertEqual(rd.stop(), 0)
        due = float(self.pgs.scalar("SELECT extract(epoch from resolve_due_at) FROM cases "
                                    "WHERE id = %d" % cid))
        self.pgs.wait_clock_past(due + 1.5, what="the deadline to pass while no process runs")
        self.assertEqual(self.firings(cid, "check_kind = 'resolve'"), [],
                         "a breach fired while no process was running")
        self.server(name="again", ack="3s", resolve="4s")
        rbtest.wait_until(lambda: self.firings(cid, "check_kind = 'resolve'"), 10,
                          what="the missed breach")
        # Oldest first: the missed events fired in the order of their deadlines (one snapshot:
        # later levels keep firing while the test looks).
        rows = self.pgs.query("SELECT check_kind, level, extract(epoch from fired_at), "
                              "extract(epoch from due) FROM sla_firings WHERE case_id = %d" % cid)
        by_fired = [r[:2] for r in sorted(rows, key=lambda r: (float(r[2]), float(r[3])))]
        by_due = [r[:2] for r in sorted(rows, key=lambda r: (float(r[3]), float(r[2])))]
        self.assertEqual(by_fired, by_due)
        self.assertEqual([f[0] for f in by_due][:3], ["warn", "ack", "resolve"])

    def test_three_processes_fire_each_deadline_once(self):
        servers = [self.server(name="p%d" % i, ack="2s", resolve="3s") for i in range(3)]
        tns = []
        for i in range(60):
            tns += self.submit(servers[i % 3])
        ids = [self.case_id(t) for t in tns]
        # every case: ack, warn, resolve levels 0..2 = 5 events
        rbtest.wait_until(lambda: int(self.pgs.scalar(
            "SELECT count(*) FROM sla_firings")) >= 5 * len(ids), 60, interval=0.3,
            what="every event of every case")
        rbtest.wait_until(lambda: self.pgs.scalar("SELECT count(*) FROM jobs WHERE kind = "
                                                  "'sla.check'") == "0", 60, interval=0.3,
                          what="every case's plan to end")
        extra = self.pgs.query("SELECT case_id, check_kind, level, extract(epoch from due), "
                               "(SELECT extract(epoch from created_at) FROM cases c WHERE c.id = f.case_id) "
                               "FROM sla_firings f WHERE (case_id, check_kind, level) IN "
                               "(SELECT case_id, check_kind, level FROM sla_firings GROUP BY 1, 2, 3 "
                               "HAVING count(*) > 1) ORDER BY 1, 2, 3 LIMIT 12")
        self.assertEqual(int(self.pgs.scalar("SELECT count(*) FROM sla_firings")), 5 * len(ids),
                         extra)
        dup = self.pgs.scalar("SELECT count(*) FROM (SELECT case_id, event, data->>'level' "
                              "FROM case_events WHERE event LIKE 'sla.%' AND event <> 'sla.unreachable' "
                              "GROUP BY 1, 2, 3 HAVING count(*) > 1) d")
        self.assertEqual(dup, "0", "an SLA event fired twice")
        late = self.pgs.query("SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY "
                              "extract(epoch from lateness)), min(extract(epoch from lateness)) "
                              "FROM sla_firings")[0]
        rbtest.log("p99 lateness %.3f s" % float(late[0]))
        self.assertGreaterEqual(float(late[1]), 0, "a deadline fired before its time")
        for s in servers:
            self.assertEqual(s.stop(), 0)


if __name__ == "__main__":
    rbtest.main()
