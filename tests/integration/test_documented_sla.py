"""docs/sla.md through the staff API and the citizen's app, with the real binary and a real
PostgreSQL (no case state written with SQL):

- a pause (the officer asks, the citizen answers in the app) stops the clock: no breach while
  paused, the deadline moves by the business time that was left, the breach fires at the moved
  deadline, the warning that fired before the pause is not repeated, and the staff API shows
  `paused` with `time_left` standing still;
- a transfer restarts the deadlines under the new department's policy (an override by
  department), and a pause after it moves those;
- the sample `config/sla.yaml`'s overrides end to end: a FIR is `urgent`, a health complaint
  is `urgent`, an information request `information`, anything else `default`, with deadlines
  in that order, and a transfer to health makes a complaint `urgent`.

The first two run on an always-open calendar with deadlines of seconds, so business time is
wall time and the test is quick."""
import os
import time

import rbtest
from test_app_auth import SignIn
from test_documented_api import StaffCalls, add_staff

SLA = """
calendar: always.yaml
policies:
  default: { acknowledge: 8s, resolve: 8s, warn_at: [0.5] }
  urgent:  { acknowledge: 20s, resolve: 20s, warn_at: [0.5] }
  information: { acknowledge: 8s, resolve: 8s }
  feedback: { acknowledge: 8s, resolve: 8s }
overrides:
  - { department: health, policy: urgent }
escalation:
  - after: 0s
    actions: [ { raise_priority: 1 } ]
"""

ALWAYS = """
timezone: UTC
hours:
  mon-sun: [00:00-24:00]
"""

STAFF = {
    "sla_off_pol": ("officer", "police", "SLA Officer Police", None),
    "sla_off_hlt": ("officer", "health", "SLA Officer Health", None),
}


class SlaCalls(SignIn, StaffCalls):
    @classmethod
    def start_with_sla(cls, sla_path):
        """A PostgreSQL and a rabtad whose rabta.yaml names sla_path, with STAFF added."""
        cls.pgs = cls.class_pg()
        cls.rd = cls.class_rabtad(pg=cls.pgs, start=False)
        cls.rd.config["sla"] = sla_path
        cls.rd.start()
        add_staff(cls.rd, STAFF)
        cls.tokens = {}

    def submit(self, token, **fields):
        body = dict({"kind": "complaint", "service": "character_certificate",
                     "district": "lahore", "language": "en",
                     "text": "The certificate is held up for weeks"}, **fields)
        r = self.rd.post("/api/v1/cases", body, headers=self.auth(token))
        self.assertEqual(r.status, 201, r)
        return r.json

    def deadline(self, tn):
        return float(self.pgs.scalar("SELECT extract(epoch from resolve_due_at) FROM cases"
                                     " WHERE tracking_no = '%s'" % tn))

    def events(self, tn, event):
        return int(self.pgs.scalar("SELECT count(*) FROM case_events e JOIN cases c ON"
                                   " c.id = e.case_id WHERE c.tracking_no = '%s' AND"
                                   " e.event = '%s'" % (tn, event)))

    def wait_event(self, tn, event, timeout=20.0, n=1):
        rbtest.wait_until(lambda: self.events(tn, event) >= n, timeout,
                          what="%s on %s" % (event, tn))

    def answer_in_app(self, tn, token, text):
        r = self.rd.post("/api/v1/cases/%s/comments" % tn, {"text": text},
                         headers=self.auth(token))
        self.assertIn(r.status, (200, 201), r)

    def ok(self, r):
        self.assertIn(r.status, (200, 201), r)
        return r.json


class DocumentedSlaPauseTest(SlaCalls, rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = os.path.join(cls.class_tmp(), "sla")
        os.makedirs(d)
        with open(os.path.join(d, "always.yaml"), "w") as f:
            f.write(ALWAYS)
        with open(os.path.join(d, "sla.yaml"), "w") as f:
            f.write(SLA)
        cls.start_with_sla(os.path.join(d, "sla.yaml"))

    def test_a_pause_moves_the_deadline_and_the_warning_is_not_repeated(self):
        _, token = self.sign_in()
        tn = self.submit(token)["tracking_no"]
        due0 = self.deadline(tn)
        self.wait_event(tn, "sla.warning", timeout=15.0)
        self.ok(self.act(tn, "acknowledge", "sla_off_pol"))
        self.ok(self.act(tn, "ask", "sla_off_pol", {"question": "Which office was it?"}))
        paused_at = time.time()
        left = due0 - paused_at
        self.assertGreater(left, 0.5, "asked before the deadline (%.1f s left)" % left)
        v1 = self.sget("/cases/" + tn, "sla_off_pol").json["sla"]
        self.assertTrue(v1["paused"], v1)
        # past the old deadline while paused: nothing fires, and the time left stands still
        rbtest.wait_until(lambda: time.time() > due0 + 1.5, 15.0, what="the old deadline")
        self.assertEqual(self.events(tn, "sla.escalated"), 0, "no breach while paused")
        v2 = self.sget("/cases/" + tn, "sla_off_pol").json["sla"]
        self.assertEqual(v2["time_left"], v1["time_left"], "time left stands still: %r" % v2)
        self.answer_in_app(tn, token, "The office on Mall Road")
        self.wait_event(tn, "sla.resumed")
        resumed_at = time.time()
        due1 = self.deadline(tn)
        self.assertAlmostEqual(due1 - resumed_at, left, delta=1.5,
                               msg="the new deadline is the resume plus what was left")
        self.assertFalse(self.sget("/cases/" + tn, "sla_off_pol").json["sla"]["paused"])
        self.wait_event(tn, "sla.escalated", timeout=left + 15.0)
        self.assertGreaterEqual(time.time(), due1 - 0.5, "the breach at the moved deadline")
        self.assertEqual(self.events(tn, "sla.warning"), 1, "the warning is not repeated")

    def test_a_transfer_restarts_the_deadline_under_the_new_policy_and_a_pause_moves_it(self):
        _, token = self.sign_in()
        tn = self.submit(token)["tracking_no"]
        self.assertEqual(self.pgs.scalar("SELECT sla_policy FROM cases WHERE tracking_no = '%s'"
                                         % tn), "default")
        moved = time.time()
        self.ok(self.act(tn, "transfer", "sla_off_pol", {"department": "health",
                                                         "reason": "A hospital matter"}))
        self.wait_event(tn, "sla.recomputed")
        self.assertEqual(self.pgs.scalar("SELECT sla_policy FROM cases WHERE tracking_no = '%s'"
                                         % tn), "urgent", "health's override applies")
        due_t = self.deadline(tn)
        self.assertAlmostEqual(due_t - moved, 20.0, delta=2.0,
                               msg="urgent's 20 s from the moment of the transfer")
        self.ok(self.act(tn, "acknowledge", "sla_off_hlt"))
        self.ok(self.act(tn, "ask", "sla_off_hlt", {"question": "Which ward?"}))
        paused_at = time.time()
        rbtest.wait_until(lambda: time.time() > paused_at + 3.0, 10.0, what="a 3 s pause")
        self.answer_in_app(tn, token, "Ward 4")
        self.wait_event(tn, "sla.resumed")
        pause = time.time() - paused_at
        self.assertAlmostEqual(self.deadline(tn) - due_t, pause, delta=1.5,
                               msg="the transfer's deadline moved by the pause")
        view = self.sget("/cases/" + tn, "sla_off_hlt").json
        self.assertEqual(view["resolve_due_at"], view["sla"]["deadline"])


class DocumentedSampleOverridesTest(SlaCalls, rbtest.TestCase):
    """The sample config/sla.yaml (Punjab calendar, hours-long deadlines), end to end."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.start_with_sla(os.path.join(rbtest.SOURCE_DIR, "config", "sla.yaml"))

    def test_the_sample_overrides_choose_the_policy_and_the_deadlines(self):
        _, token = self.sign_in()
        fir = self.submit(token, service="fir_registration",
                          text="The SHO refuses to register my FIR")
        health = self.submit(token, service="treatment_dhq",
                             text="No doctor in the emergency ward at night")
        info = self.submit(token, kind="information", service="fard",
                           text="What documents does a fard need?")
        plain = self.submit(token, service="character_certificate",
                            text="The certificate is held up for weeks")
        got = {k: c["sla_policy"] for k, c in (("fir", fir), ("health", health),
                                                ("info", info), ("plain", plain))}
        self.assertEqual(got, {"fir": "urgent", "health": "urgent", "info": "information",
                               "plain": "default"})
        due = {k: self.deadline(c["tracking_no"]) for k, c in (("fir", fir), ("plain", plain),
                                                                ("info", info))}
        self.assertLess(due["fir"], due["plain"], "16 business hours end before 40")
        self.assertLess(due["plain"], due["info"], "40 business hours end before 80")
        self.assertEqual(self.pgs.scalar("SELECT sla_policy FROM cases WHERE tracking_no = '%s'"
                                         % plain["tracking_no"]), "default")
        # a complaint transferred to health is held to health's urgent policy
        tn = plain["tracking_no"]
        self.ok(self.act(tn, "transfer", "sla_off_pol", {"department": "health",
                                                         "reason": "A hospital matter"}))
        self.wait_event(tn, "sla.recomputed")
        self.assertEqual(self.pgs.scalar("SELECT sla_policy FROM cases WHERE tracking_no = '%s'"
                                         % tn), "urgent")
        self.assertLess(self.deadline(tn), due["plain"], "urgent now: an earlier deadline")
        view = self.sget("/cases/" + tn, "sla_off_hlt").json
        self.assertEqual(view["resolve_due_at"], view["sla"]["deadline"])


if __name__ == "__main__":
    rbtest.main()
