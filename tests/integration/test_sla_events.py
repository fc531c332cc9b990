"""The SLA engine reacting to case events, with the real binary, a real PostgreSQL and the
staff and app APIs: a transfer recomputes the deadlines under the new department's policy
from the transfer's time and the old plan never fires; a citizen's "unsatisfied" rating climbs
the ladder one level, once, even when its job runs twice; every case view shows the deadline,
the time left and whether the clock is paused."""
import json
import os
import subprocess

import rbtest
from test_app_auth import SignIn
from test_sla import ALWAYS

PASSWORD = "s3cret-pass-word"

# Police cases run on "default" (seconds, so the old plan would fire during the test);
# revenue's on "long".
SLA = """
calendar: always.yaml
policies:
  default: { acknowledge: 4s, resolve: 8s, warn_at: [0.5] }
  long:    { acknowledge: 1h, resolve: 2h, warn_at: [0.75] }
overrides:
  - { department: revenue, policy: long }
escalation:
  - after: 0s
    actions: [ { notify: supervisor, via: inbox }, { raise_priority: 1 } ]
  - after: 1h
    actions: [ { reassign: supervisor }, { notify: supervisor, via: sms } ]
  - after: 2h
    actions: [ { flag: oversight } ]
"""


STAFF = {
    "off_pol": ("officer", "police"),
    "sup_pol": ("supervisor", "police"),
    "off_rev": ("officer", "revenue"),
    "sup_rev": ("supervisor", "revenue"),
    "ovs": ("oversight", None),
    "adm": ("admin", None),
}


class SlaStaffBase(SignIn, rbtest.TestCase):
    """A server with the SLA file above and the STAFF accounts, shared by a class."""
    SLA_TEXT = SLA

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.set_up_servers()
        except BaseException:
            cls.tearDownClass()  # unittest does not when setUpClass fails: stop what started
            raise

    @classmethod
    def set_up_servers(cls):
        cls.pgs = cls.class_pg()
        cls.rd = cls.class_rabtad(pg=cls.pgs, start=False)
        d = os.path.join(cls.class_tmp(), "sla")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "always.yaml"), "w") as f:
            f.write(ALWAYS)
        with open(os.path.join(d, "sla.yaml"), "w") as f:
            f.write(cls.SLA_TEXT)
        cls.rd.config["sla"] = os.path.join(d, "sla.yaml")
        cls.rd.start()
        for user, (role, dept) in STAFF.items():
            args = ["add", user, "--role", role, "--name", user.replace("_", " ").title()]
            if dept:
                args += ["--department", dept]
            r = subprocess.run([rbtest.RABTAD, "staff", "-c", cls.rd.config_path] + args,
                               input=PASSWORD + "\n", stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
            assert r.returncode == 0, "staff add %s: %s" % (user, r.stderr)
        cls.tokens = {}

    def token(self, user):
        if user not in self.tokens:
            r = self.rd.post("/api/v1/staff/login", {"username": user, "password": PASSWORD})
            self.assertEqual(r.status, 200, r)
            self.tokens[user] = r.json["token"]
        return self.tokens[user]

    def staff_get(self, path, user):
        return self.rd.get("/api/v1/staff" + path,
                           headers={"Authorization": "Bearer " + self.token(user)})

    def act(self, tn, action, user, body=None):
        r = self.rd.post("/api/v1/staff/cases/%s/%s" % (tn, action), body or {},
                         headers={"Authorization": "Bearer " + self.token(user)})
        self.assertEqual(r.status, 200, "%s %s: %r" % (action, tn, r))
        return r

    def new_case(self, service, district="lahore"):
        """A signed-in citizen's complaint: (tracking number, citizen token)."""
        _, token = self.sign_in()
        r = self.rd.post("/api/v1/cases", {"kind": "complaint", "service": service,
                                           "district": district, "language": "en",
                                           "text": "Nobody has answered for weeks"},
                         headers=self.auth(token))
        self.assertEqual(r.status, 201, r)
        return r.json["tracking_no"], token

    def case_id(self, tn):
        return int(self.pgs.scalar("SELECT id FROM cases WHERE tracking_no = '%s'" % tn))

    def count(self, sql):
        return int(self.pgs.scalar(sql))


class SlaEventsTest(SlaStaffBase):
    def test_transfer_recomputes_deadlines_and_the_old_plan_never_fires(self):
        tn, _ = self.new_case("character_certificate")  # police: ack 4 s, resolve 8 s
        cid = self.case_id(tn)
        # A case on the same plan, submitted after: once its resolution deadline has fired,
        # the old plan's deadlines have come and gone.
        marker = self.case_id(self.new_case("character_certificate")[0])
        old = self.pgs.query("SELECT extract(epoch from ack_due_at),"
                             " extract(epoch from resolve_due_at) FROM cases WHERE id = %d" % cid)[0]
        self.act(tn, "transfer", "off_pol", {"department": "revenue", "reason": "Land record"})
        rbtest.wait_until(lambda: self.count(
            "SELECT count(*) FROM case_events WHERE case_id = %d AND event = 'sla.recomputed'"
            % cid) == 1, 10, what="the deadlines recomputed after the transfer")
        at, ack, res, policy = self.pgs.query(
            "SELECT extract(epoch from e.at), extract(epoch from c.ack_due_at),"
            " extract(epoch from c.resolve_due_at), c.sla_policy FROM cases c"
            " JOIN case_events e ON e.case_id = c.id AND e.event = 'transfer'"
            " WHERE c.id = %d" % cid)[0]
        self.assertEqual(policy, "long", "the new department's policy")
        # Business time = wall time on this calendar; whole seconds from the transfer.
        self.assertAlmostEqual(float(ack) - float(at), 3600, delta=1.0)
        self.assertAlmostEqual(float(res) - float(at), 7200, delta=1.0)
        self.assertNotEqual((ack, res), tuple(old))
        jobs = self.pgs.query("SELECT payload->>'check', (payload->>'deadline')::bigint, run_at"
                              " FROM jobs WHERE kind = 'sla.check' AND state = 'queued'"
                              " AND (payload->>'case_id')::bigint = %d" % cid)
        self.assertEqual(len(jobs), 1, "one pending job: the new plan's %r" % jobs)
        self.assertEqual((jobs[0][0], int(jobs[0][1])), ("ack", int(float(ack))))
        # Past the old acknowledgement, warning and resolution deadlines: nothing fires.
        rbtest.wait_until(lambda: self.count(
            "SELECT count(*) FROM sla_firings WHERE case_id = %d AND check_kind = 'resolve'"
            % marker) > 0, 60, interval=0.2, what="the marker case's resolution deadline")
        self.assertGreaterEqual(float(self.pgs.scalar(
            "SELECT extract(epoch from resolve_due_at) FROM cases WHERE id = %d" % marker)),
            float(old[1]))
        self.assertEqual(self.count("SELECT count(*) FROM sla_firings WHERE case_id = %d" % cid),
                         0, "the old plan fired after the transfer")
        self.assertEqual(self.count("SELECT count(*) FROM case_events WHERE case_id = %d AND"
                                    " event IN ('sla.ack_breached', 'sla.warning',"
                                    " 'sla.escalated')" % cid), 0)
        # The transfer's job run again (a retry, a lost lease) changes nothing.
        self.pgs.psql("INSERT INTO jobs (kind, payload) SELECT 'sla.transfer',"
                      " jsonb_build_object('case_id', case_id, 'event_id', id, 'event', event)"
                      " FROM case_events WHERE case_id = %d AND event = 'transfer'" % cid)
        rbtest.wait_until(lambda: self.count("SELECT count(*) FROM jobs WHERE kind ="
                                             " 'sla.transfer'") == 0, 10, what="the rerun")
        self.assertEqual(self.count("SELECT count(*) FROM case_events WHERE case_id = %d"
                                    " AND event = 'sla.recomputed'" % cid), 1)
        self.assertEqual(self.count("SELECT count(*) FROM jobs WHERE kind = 'sla.check' AND"
                                    " (payload->>'case_id')::bigint = %d" % cid), 1)
        self.assertEqual(self.pgs.query("SELECT extract(epoch from resolve_due_at) FROM cases"
                                        " WHERE id = %d" % cid)[0][0], res)

    def test_transfer_while_the_old_job_is_due_fires_nothing_of_the_old_plan(self):
        """The old job is claimed before the transfer's job runs: its deadline is stale."""
        tn, _ = self.new_case("character_certificate")
        cid = self.case_id(tn)
        # Hold the transfer's job back so the old plan's first event comes due first.
        self.pgs.psql("DELETE FROM case_event_jobs WHERE event = 'transfer'")
        try:
            self.act(tn, "transfer", "off_pol", {"department": "revenue", "reason": "x"})
            self.pgs.psql("UPDATE cases SET ack_due_at = now() + interval '1 hour',"
                          " resolve_due_at = now() + interval '2 hours' WHERE id = %d" % cid)
            # The old plan's first event (acknowledgement, 4 s) comes due, finds its deadline
            # moved and ends without firing or queueing anything.
            rbtest.wait_until(lambda: self.count(
                "SELECT count(*) FROM jobs WHERE kind = 'sla.check' AND"
                " (payload->>'case_id')::bigint = %d" % cid) == 0, 15,
                what="the old plan's job to end as stale")
        finally:
            self.pgs.psql("INSERT INTO case_event_jobs (event, kind) VALUES"
                          " ('transfer', 'sla.transfer') ON CONFLICT DO NOTHING")
        self.assertEqual(self.count("SELECT count(*) FROM sla_firings WHERE case_id = %d" % cid),
                         0, "a stale event of the old plan fired")

    def test_a_resume_that_runs_after_a_transfer_keeps_the_transfers_deadlines(self):
        tn, _ = self.new_case("character_certificate")
        cid = self.case_id(tn)
        self.act(tn, "acknowledge", "off_pol")
        self.act(tn, "ask", "off_pol", {"question": "Which police station?"})
        # A pause long enough that a wrong resume would show in the deadline.
        self.pgs.wait_clock_past(float(self.pgs.scalar(
            "SELECT extract(epoch from paused_at) FROM cases WHERE id = %d" % cid)) + 2.5)
        # The citizen answers (the status leaves awaiting_citizen: sla.resume is queued); its
        # job is held back so that the transfer's runs first.
        self.pgs.psql("UPDATE cases SET status = 'in_progress' WHERE id = %d;"
                      "UPDATE jobs SET run_at = now() + interval '3 seconds'"
                      " WHERE kind = 'sla.resume' AND (payload->>'case_id')::bigint = %d"
                      % (cid, cid))
        self.act(tn, "transfer", "off_pol", {"department": "revenue", "reason": "Land"})
        rbtest.wait_until(lambda: self.count(
            "SELECT count(*) FROM case_events WHERE case_id = %d AND event = 'sla.recomputed'"
            % cid) == 1, 10, what="the transfer's recompute")
        rbtest.wait_until(lambda: self.count("SELECT count(*) FROM jobs WHERE kind ="
                                             " 'sla.resume'") == 0, 10, what="the resume job")
        at, res = self.pgs.query("SELECT extract(epoch from e.at), extract(epoch from"
                                 " c.resolve_due_at) FROM cases c JOIN case_events e ON"
                                 " e.case_id = c.id AND e.event = 'transfer' WHERE c.id = %d"
                                 % cid)[0]
        self.assertAlmostEqual(float(res) - float(at), 7200, delta=1.0,
                               msg="the late resume moved the transfer's deadline")
        self.assertEqual(self.count("SELECT count(*) FROM case_events WHERE case_id = %d AND"
                                    " event = 'sla.resumed'" % cid), 0)
        self.assertEqual(self.count("SELECT count(*) FROM jobs WHERE kind = 'sla.check' AND"
                                    " (payload->>'case_id')::bigint = %d" % cid), 1)

    def rate(self, tn, token, satisfied, rating):
        r = self.rd.post("/api/v1/cases/%s/rating" % tn,
                         {"rating": rating, "satisfied": satisfied}, headers=self.auth(token))
        self.assertEqual(r.status, 200, r)
        return r.json

    def test_unsatisfied_rating_climbs_one_level_once(self):
        tn, token = self.new_case("fard")  # revenue: the long policy, nothing fires
        cid = self.case_id(tn)
        prio0 = int(self.pgs.scalar("SELECT priority FROM cases WHERE id = %d" % cid))
        self.act(tn, "acknowledge", "off_rev")
        self.act(tn, "resolve", "off_rev", {"note": "Record corrected"})
        out = self.rate(tn, token, False, 1)
        self.assertTrue(out["escalated"], out)
        rbtest.wait_until(lambda: self.count("SELECT count(*) FROM sla_firings WHERE case_id"
                                             " = %d AND check_kind = 'citizen'" % cid) == 1,
                          10, what="the citizen's escalation")
        ev = self.pgs.query("SELECT data->>'check', data->>'level', data->>'raised_by'"
                            " FROM case_events WHERE case_id = %d AND event = 'sla.escalated'"
                            % cid)
        self.assertEqual(ev, [["citizen", "1", "1"]])
        row = self.pgs.query("SELECT escalation_level, priority FROM cases WHERE id = %d"
                             % cid)[0]
        self.assertEqual(row, ["1", str(max(1, prio0 - 1))], "level 1's raise_priority")
        # level 1 tells revenue's supervisor in their staff inbox
        rbtest.wait_until(lambda: self.notes(cid), 10, what="the supervisor's notification")
        self.assertEqual(self.notes(cid), [["sup_rev", "1"]])
        # The same request's job again (a retry after a lost answer): nothing twice.
        self.pgs.psql("INSERT INTO jobs (kind, payload) SELECT 'sla.citizen',"
                      " jsonb_build_object('case_id', case_id, 'event_id', id, 'event', event)"
                      " FROM case_events WHERE case_id = %d AND event = 'escalation.requested'"
                      % cid)
        rbtest.wait_until(lambda: self.count("SELECT count(*) FROM jobs WHERE kind ="
                                             " 'sla.citizen'") == 0, 10, what="the rerun")
        self.assertEqual(self.count("SELECT count(*) FROM sla_firings WHERE case_id = %d" % cid), 1)
        self.assertEqual(self.count("SELECT count(*) FROM case_events WHERE case_id = %d AND"
                                    " event = 'sla.escalated'" % cid), 1)
        rbtest.wait_until(lambda: self.count("SELECT count(*) FROM jobs WHERE kind ="
                                             " 'sla.notify'") == 0, 10, what="the notify job")
        self.assertEqual(self.notes(cid), [["sup_rev", "1"]])
        # Unsatisfied again after the next resolution: one more level, with its own actions.
        self.act(tn, "acknowledge", "off_rev")
        self.act(tn, "resolve", "off_rev", {"note": "Record corrected again"})
        self.rate(tn, token, False, 2)
        rbtest.wait_until(lambda: self.count("SELECT count(*) FROM sla_firings WHERE case_id"
                                             " = %d AND check_kind = 'citizen'" % cid) == 2,
                          10, what="the second escalation")
        self.assertEqual([r[0] for r in self.pgs.query(
            "SELECT level FROM sla_firings WHERE case_id = %d ORDER BY level" % cid)], ["0", "1"])
        # level 2: reassigned to the supervisor, whose SMS finds no phone (recorded)
        rbtest.wait_until(lambda: self.unreachable(cid), 10, what="level 2's people")
        self.assertEqual(self.unreachable(cid), [["notify", "supervisor", "sms", "2"]])
        self.assertEqual(self.pgs.query("SELECT data->>'assigned_to' FROM case_events WHERE"
                                        " case_id = %d AND event = 'assigned'" % cid),
                         [["sup_rev"]])
        self.assertEqual(self.pgs.scalar("SELECT data->>'reassigned_to' FROM case_events WHERE"
                                         " case_id = %d AND event = 'sla.escalated' AND"
                                         " data->>'level' = '2'" % cid), "supervisor")

    def notes(self, cid):
        return self.pgs.query("SELECT s.username, n.level FROM staff_notifications n JOIN staff"
                              " s ON s.id = n.staff_id WHERE n.case_id = %d ORDER BY n.event_id" % cid)

    def unreachable(self, cid):
        return self.pgs.query("SELECT data->>'action', data->>'target', coalesce(data->>'via',"
                              " ''), data->>'level' FROM case_events WHERE case_id = %d AND"
                              " event = 'sla.unreachable' ORDER BY id" % cid)

    def test_escalation_request_past_the_top_of_the_ladder_fires_nothing(self):
        tn, _ = self.new_case("fard")
        cid = self.case_id(tn)
        self.pgs.psql("INSERT INTO case_events (case_id, actor_type, event, data) VALUES"
                      " (%d, 'citizen', 'escalation.requested', '{\"level\": 9}'),"
                      " (%d, 'citizen', 'escalation.requested', '{\"level\": \"x\"}')"
                      % (cid, cid))
        rbtest.wait_until(lambda: self.count("SELECT count(*) FROM jobs WHERE kind ="
                                             " 'sla.citizen'") == 0, 10, what="the requests")
        self.assertEqual(self.count("SELECT count(*) FROM sla_firings WHERE case_id = %d" % cid), 0)
        self.assertEqual(self.count("SELECT count(*) FROM jobs WHERE state = 'dead'"), 0)

    def test_malformed_event_job_payloads_die_without_effect(self):
        self.pgs.psql("INSERT INTO jobs (kind, payload, max_attempts) VALUES"
                      " ('sla.citizen', '{\"case_id\": \"x\"}', 1),"
                      " ('sla.transfer', '[1, 2]', 1),"
                      " ('sla.transfer', '{\"case_id\": 1, \"event_id\": -5}', 1)")
        rbtest.wait_until(lambda: self.count("SELECT count(*) FROM jobs WHERE kind IN"
                                             " ('sla.citizen', 'sla.transfer') AND state ="
                                             " 'dead'") == 3, 10, what="three dead jobs")
        errors = [r[0] for r in self.pgs.query("SELECT last_error FROM jobs WHERE state = 'dead'"
                                              " AND kind LIKE 'sla.%'")]
        self.assertEqual(errors, ["malformed case event job payload"] * 3)
        self.pgs.psql("DELETE FROM jobs WHERE state = 'dead'")

    def sla_views(self, tn, token):
        """The "sla" object of every view of the case: staff case, staff inbox row, app
        timeline, app list row, public status."""
        out = {}
        r = self.staff_get("/cases/%s" % tn, "off_rev")
        self.assertEqual(r.status, 200, r)
        out["staff case"] = r.json["sla"]
        r = self.staff_get("/inbox?limit=200&status=%s" % r.json["status"], "off_rev")
        self.assertEqual(r.status, 200, r)
        rows = [c for c in r.json["cases"] if c["tracking_no"] == tn]
        self.assertEqual(len(rows), 1, "the case in the inbox")
        out["inbox row"] = rows[0]["sla"]
        r = self.rd.get("/api/v1/cases/%s/timeline" % tn, headers=self.auth(token))
        self.assertEqual(r.status, 200, r)
        out["app timeline"] = r.json["case"]["sla"]
        r = self.rd.get("/api/v1/me/cases?limit=100", headers=self.auth(token))
        self.assertEqual(r.status, 200, r)
        out["app list"] = [c for c in r.json["cases"] if c["tracking_no"] == tn][0]["sla"]
        r = self.rd.get("/api/v1/cases/%s" % tn, headers=self.auth(token))
        self.assertEqual(r.status, 200, r)
        out["public status"] = r.json["sla"]
        return out

    def test_deadline_and_time_left_in_every_case_view(self):
        tn, token = self.new_case("fard")
        cid = self.case_id(tn)
        due = self.pgs.scalar("SELECT to_char(resolve_due_at AT TIME ZONE 'UTC',"
                              " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM cases WHERE id = %d" % cid)
        for where, s in self.sla_views(tn, token).items():
            self.assertEqual(set(s), {"deadline", "time_left", "paused"}, where)
            self.assertEqual(s["deadline"], due, where)
            self.assertFalse(s["paused"], where)
            self.assertTrue(7100 <= s["time_left"] <= 7200, "%s: %r" % (where, s))
        # Waiting for the citizen: paused, and the time left stands still.
        self.act(tn, "acknowledge", "off_rev")
        self.act(tn, "ask", "off_rev", {"question": "Which khasra number?"})
        first = self.sla_views(tn, token)
        self.pgs.wait_clock_past(self.pgs.clock() + 1.5)  # time passes; time left does not
        for where, s in self.sla_views(tn, token).items():
            self.assertTrue(s["paused"], where)
            self.assertEqual(s["time_left"], first[where]["time_left"], where)
        # Overdue: negative.
        self.pgs.psql("UPDATE cases SET status = 'in_progress' WHERE id = %d" % cid)
        rbtest.wait_until(lambda: self.count("SELECT count(*) FROM case_events WHERE case_id ="
                                             " %d AND event = 'sla.resumed'" % cid) == 1, 10,
                          what="the resume")
        self.pgs.psql("UPDATE cases SET resolve_due_at = now() - interval '90 seconds'"
                      " WHERE id = %d" % cid)
        for where, s in self.sla_views(tn, token).items():
            self.assertFalse(s["paused"], where)
            self.assertTrue(-200 < s["time_left"] <= -90, "%s: %r" % (where, s))
        # Closed: no time left, the deadline still shown.
        self.act(tn, "resolve", "off_rev", {"note": "done"})
        r = self.staff_get("/cases/%s" % tn, "off_rev")
        self.assertIsNone(r.json["sla"]["time_left"])
        self.assertIsNotNone(r.json["sla"]["deadline"])
        r = self.rd.get("/api/v1/cases/%s" % tn, headers=self.auth(token))
        self.assertIsNone(r.json["sla"]["time_left"])
        self.assertFalse(r.json["sla"]["paused"])


if __name__ == "__main__":
    rbtest.main()
