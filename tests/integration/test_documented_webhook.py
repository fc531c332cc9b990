"""docs/webhook.md "Answers" with the real binary and a department's system the test scripts
(scripted.py; answers per case: a status, or "slow" = none within the plugin's 1 s timeout):

- 408, 429 and a timeout are retried, and the case is delivered once after them, each attempt
  a `webhook.delivery` event (will_retry, then delivered);
- a delivery that keeps failing is dead after `max_attempts` (outcome gave_up), is listed by
  `rabtad jobs list --state dead`, and `rabtad jobs retry ID` delivers it once the
  department's system is fixed;
- a case transferred away (staff API) while its delivery was still being retried is not
  delivered to the old department; the new one gets it."""
import json
import os
import subprocess

import rbtest
import scripted
from test_documented_api import PASSWORD, add_staff
from test_webhook import departments, settings

MAX_ATTEMPTS = 4
SECRET = "docs-webhook-secret-0123456789"


def receiver():
    """A department's system (scripted.py), scripted per case (the body's tracking_no)."""
    def tracking_no(path, body):
        try:
            return json.loads(body.decode()).get("tracking_no")
        except ValueError:
            return None
    return scripted.ScriptedServer(tracking_no)


class DocumentedWebhookTest(rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.police, cls.revenue = receiver(), receiver()
        tmp = cls.class_tmp()
        deps = departments(os.path.join(tmp, "departments"),
                           police=settings(cls.police.port, SECRET),
                           revenue=settings(cls.revenue.port, SECRET))
        cls.pgs = cls.class_pg()
        cls.rd = cls.class_rabtad(pg=cls.pgs, start=False)
        cfg = cls.rd.config
        cfg["departments"] = deps
        cfg["jobs"] = {"backoff_base": "200ms", "backoff_max": "1s"}
        cfg["plugins"] = [{"name": "staff_inbox"}, {"name": "app"},
                          {"name": "webhook", "config": {"timeout": "1s",
                                                         "max_attempts": MAX_ATTEMPTS}}]
        cls.rd.start()
        add_staff(cls.rd, {"wh_sup_pol": ("supervisor", "police", "Webhook Supervisor", None)})

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.police.stop()
            cls.revenue.stop()

    def setUp(self):
        super().setUp()
        for rcv in (self.police, self.revenue):
            rcv.default, rcv.next_script = 200, None

    def submit(self):
        r = self.rd.post("/api/v1/cases", {"kind": "complaint", "anonymous": True,
                                           "service": "character_certificate",
                                           "district": "lahore", "language": "en",
                                           "text": "Asked for a bribe at the counter"})
        self.assertEqual(r.status, 201, r)
        return r.json["tracking_no"]

    def deliveries(self, tn):
        """The case's webhook.delivery events' (outcome, status) in order."""
        rows = self.pgs.query("SELECT e.data::text FROM case_events e JOIN cases c"
                              " ON c.id = e.case_id WHERE c.tracking_no = '%s'"
                              " AND e.event = 'webhook.delivery' ORDER BY e.id" % tn)
        return [(d["outcome"], d["status"]) for d in (json.loads(r[0]) for r in rows)]

    def job_of(self, tn):
        """(id, state) of the case's case.deliver job, or None once it is gone."""
        rows = self.pgs.query("SELECT id, state FROM jobs WHERE kind = 'case.deliver' AND"
                              " payload->>'case_id' = (SELECT id::text FROM cases WHERE"
                              " tracking_no = '%s') ORDER BY id DESC LIMIT 1" % tn)
        return tuple(rows[0]) if rows else None

    def jobs_cli(self, *args):
        r = subprocess.run([rbtest.RABTAD, "jobs", "-c", self.rd.config_path] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=60)
        self.assertEqual(r.returncode, 0, "jobs %s: %s" % (args, r.stderr))
        return r.stdout

    # ------------------------------------------------------------------------------------------
    def test_408_429_and_a_timeout_are_retried_then_delivered_once(self):
        self.police.next_script = [408, 429, "slow", 200]
        tn = self.submit()
        rbtest.wait_until(lambda: self.job_of(tn) is None, 30.0,
                          what="the delivery to end")
        self.assertEqual(self.police.answers(tn), [408, 429, "slow", 200])
        got = self.deliveries(tn)
        # the timeout came after the whole request was sent: its outcome is unknown (the
        # department may have the case), retried like the failures with the same delivery id
        self.assertEqual([o for o, _ in got], ["will_retry"] * 2 + ["unknown", "delivered"],
                         got)
        self.assertEqual([s for _, s in got], [408, 429, None, 200],
                         "a timeout has no HTTP status")

    def test_dead_after_max_attempts_then_jobs_retry_delivers_it(self):
        self.police.default = 503
        tn = self.submit()
        rbtest.wait_until(lambda: (self.job_of(tn) or ("", ""))[1] == "dead", 30.0,
                          what="the delivery to die after %d attempts" % MAX_ATTEMPTS)
        self.police.default = 200
        self.assertEqual(self.police.answers(tn), [503] * MAX_ATTEMPTS)
        got = self.deliveries(tn)
        self.assertEqual([o for o, _ in got], ["will_retry"] * (MAX_ATTEMPTS - 1) + ["gave_up"])
        job_id = self.job_of(tn)[0]
        self.assertIn(job_id, self.jobs_cli("list", "--state", "dead").split())
        self.assertEqual(self.police.answers(tn), [503] * MAX_ATTEMPTS, "nothing more by itself")
        self.jobs_cli("retry", job_id)
        rbtest.wait_until(lambda: 200 in self.police.answers(tn), 15.0,
                          what="the retried delivery to reach the department")
        rbtest.wait_until(lambda: self.job_of(tn) is None, 15.0, what="the job to be done")
        self.assertEqual(self.police.answers(tn), [503] * MAX_ATTEMPTS + [200])
        self.assertEqual(self.deliveries(tn)[-1], ("delivered", 200))

    def test_a_case_transferred_while_its_delivery_is_retried_goes_to_the_new_department(self):
        self.police.default = 503
        tn = self.submit()
        rbtest.wait_until(lambda: self.police.answers(tn), 15.0, what="a first failed attempt")
        login = self.rd.post("/api/v1/staff/login", {"username": "wh_sup_pol",
                                                     "password": PASSWORD})
        self.assertEqual(login.status, 200, login)
        r = self.rd.post("/api/v1/staff/cases/%s/transfer" % tn,
                         {"department": "revenue", "reason": "A land record"},
                         headers={"Authorization": "Bearer " + login.json["token"]})
        self.assertEqual(r.status, 200, r)
        self.police.default = 200  # police would accept it now: it must not get it
        rbtest.wait_until(lambda: 200 in self.revenue.answers(tn), 20.0,
                          what="the new department to get the case")
        rbtest.wait_until(lambda: self.pgs.scalar(
            "SELECT count(*) FROM jobs WHERE kind = 'case.deliver' AND state <> 'dead' AND"
            " payload->>'case_id' = (SELECT id::text FROM cases WHERE tracking_no = '%s')"
            % tn) == "0", 20.0, what="every delivery job of the case to end")
        self.assertNotIn(200, self.police.answers(tn),
                         "the old department never accepted the transferred case")
        self.assertEqual(self.revenue.answers(tn), [200])


if __name__ == "__main__":
    rbtest.main()
