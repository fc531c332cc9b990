"""The staff_inbox plugin's duty-officer notice (plugins/staff_inbox/staff_inbox.c) with the real
binary and a real PostgreSQL:

- a new case for a staff_inbox department with a duty_phone queues exactly one SMS to that phone
  (E.164), rendered from template duty.new_case, urgent and not a notice, tied to the
  delivery's event, with no personal data of the complainant; running the case.deliver job
  again stores no second one; the citizen's own notice of the same event is still there;
- a department without duty_phone gets none; a case transferred to a department with one
  texts its duty officer (tied to the transfer event);
- with notify_duty_officer false there is none; a reload switches it on (and duty_language
  picks the Urdu text), and the duty phone is normalised from a local form;
- a duty_phone that is not a phone stops --check and start and is refused at reload, each
  naming the department's file."""
import os
import signal
import subprocess

import rbtest
from test_app_auth import SignIn
from test_webhook import departments as copy_departments  # the sample's files, copied

REVENUE_PHONE = "+924299000200"  # config/departments/revenue.yaml: "+92 42 99000200"
PASSWORD = "s3cret-pass-word"
CASE_TEXT = "Patwari Aslam asked me, Bilal Ahmed of house 12, for money to issue my fard"


def set_duty_phone(dirpath, department, phone):
    """Replaces (or adds, or with phone None removes) the duty_phone line of a department."""
    path = os.path.join(dirpath, department + ".yaml")
    with open(path) as f:
        lines = [ln for ln in f.read().splitlines() if not ln.startswith("duty_phone:")]
    if phone is not None:
        lines.append('duty_phone: "%s"' % phone)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def staff_inbox_plugins(rd, **conf):
    """The plugins with staff_inbox's config, and a sender of channel sms (a duty notice is an SMS,
    and a message for a channel nobody sends is refused)."""
    return [dict(p, config=conf) if p["name"] == "staff_inbox" else p
            for p in rd.config["plugins"] if p["name"] != "test_sender"] + [
        {"name": "test_sender", "path": os.path.join(rbtest.TEST_PLUGIN_DIR, "test_sender.so"),
         "config": {"channels": "sms"}}]


class DutyNotice(SignIn):
    """Mixin: submit a case as a signed-in citizen and wait for its delivery."""

    def submit(self, service, kind="complaint"):
        phone, token = self.sign_in()
        r = self.rd.post("/api/v1/cases", {"kind": kind, "service": service,
                                           "district": "lahore", "language": "en",
                                           "text": CASE_TEXT},
                         headers=self.auth(token))
        self.assertEqual(r.status, 201, r)
        tn = r.json["tracking_no"]
        case_id = self.pgs.scalar("SELECT id FROM cases WHERE tracking_no = '%s'" % tn)
        return tn, case_id, phone

    def wait_delivered(self, case_id):
        """Waits until case_id's case.deliver jobs are all done (done jobs are deleted)."""
        sql = ("SELECT count(*) FROM jobs WHERE kind = 'case.deliver' AND "
               "payload->>'case_id' = '%s'" % case_id)
        rbtest.wait_until(lambda: self.pgs.scalar(sql) == "0", 20.0,
                          what="case %s's case.deliver jobs to be done: %r"
                          % (case_id, self.pgs.query("SELECT state, attempts, last_error FROM "
                                                     "jobs WHERE kind = 'case.deliver'")))

    def duty_messages(self, case_id):
        return self.pgs.query(
            "SELECT to_address, body, language, urgent, notice, event_id, channel "
            "FROM messages WHERE template = 'duty.new_case' AND case_id = %s ORDER BY id"
            % case_id)


class InboxDutyNoticeTest(DutyNotice, rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.deps = os.path.join(cls.class_tmp(), "departments")
        glob = copy_departments(cls.deps)
        cls.pgs = cls.class_pg()
        cls.rd = cls.class_rabtad(pg=cls.pgs, start=False)
        cls.rd.config["departments"] = glob
        cls.rd.config["plugins"] = staff_inbox_plugins(cls.rd, notify_duty_officer=True)
        cls.rd.start()

    def test_new_case_texts_the_duty_officer_once_even_when_the_delivery_runs_again(self):
        tn, case_id, citizen_phone = self.submit("fard")
        self.assertEqual(self.pgs.scalar("SELECT department_id FROM cases WHERE id = %s"
                                         % case_id), "revenue")
        self.wait_delivered(case_id)
        routed = self.pgs.scalar("SELECT id FROM case_events WHERE case_id = %s AND "
                                 "event = 'routed'" % case_id)
        priority = self.pgs.scalar("SELECT priority FROM cases WHERE id = %s" % case_id)
        msgs = self.duty_messages(case_id)
        self.assertEqual(len(msgs), 1, "exactly one duty officer SMS: %r" % msgs)
        to, body, lang, urgent, notice, event_id, channel = msgs[0]
        self.assertEqual((to, lang, urgent, notice, event_id, channel),
                         (REVENUE_PHONE, "en", "t", "f", routed, "sms"))
        self.assertEqual(body, "Rabta: new complaint %s for Board of Revenue: Fard (record of "
                               "rights) issuance, lahore, priority %s." % (tn, priority))
        for private in (citizen_phone, citizen_phone[-7:], "Bilal", "Aslam", "fard"):
            self.assertNotIn(private, body, "the duty officer's SMS carries personal data")
        mid = self.pgs.scalar("SELECT id FROM messages WHERE template = 'duty.new_case' AND "
                              "case_id = %s" % case_id)
        rbtest.wait_until(lambda: self.pgs.scalar("SELECT status FROM messages WHERE id = %s"
                                                  % mid) == "sent", 15,
                          what="the SMS sent by its message.send.sms job (test_sender)")
        self.assertEqual(self.pgs.scalar("SELECT count(*) FROM messages WHERE event_id = %s"
                                         % routed), "2",
                         "the citizen's notice.routed and the duty officer's SMS share the event")

        # The delivery job runs again (a retry after a crash): no second SMS.
        self.pgs.psql("INSERT INTO jobs (kind, payload) VALUES ('case.deliver', "
                      "jsonb_build_object('case_id', %s, 'event_id', %s, 'event', 'routed'))"
                      % (case_id, routed))
        self.wait_delivered(case_id)
        self.assertEqual(len(self.duty_messages(case_id)), 1,
                         "a delivery that ran twice texted the duty officer twice")

    def test_a_case_transferred_to_the_department_texts_its_duty_officer(self):
        r = subprocess.run([rbtest.RABTAD, "staff", "-c", self.rd.config_path, "add", "off_hea",
                            "--role", "officer", "--department", "health", "--name", "Officer"],
                           input=PASSWORD + "\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        login = self.rd.post("/api/v1/staff/login", {"username": "off_hea",
                                                     "password": PASSWORD})
        self.assertEqual(login.status, 200, login)
        tn, case_id, _ = self.submit("treatment_dhq")
        self.wait_delivered(case_id)
        self.assertEqual(self.duty_messages(case_id), [], "health has no duty phone")
        r = self.rd.post("/api/v1/staff/cases/%s/transfer" % tn,
                         {"department": "revenue", "reason": "Land record matter"},
                         headers={"Authorization": "Bearer " + login.json["token"]})
        self.assertEqual(r.status, 200, r)
        self.wait_delivered(case_id)
        transfer = self.pgs.scalar("SELECT id FROM case_events WHERE case_id = %s AND "
                                   "event = 'transfer'" % case_id)
        msgs = self.duty_messages(case_id)
        self.assertEqual([(m[0], m[5]) for m in msgs], [(REVENUE_PHONE, transfer)], msgs)
        self.assertIn("for Board of Revenue: Patient treatment at a DHQ hospital, lahore",
                      msgs[0][1])

    def test_department_without_duty_phone_gets_no_sms(self):
        # Every job ever queued is recorded, so "no delivery job" is seen, not inferred.
        self.pgs.psql("CREATE TABLE IF NOT EXISTS seen_jobs (kind text, payload jsonb);"
                      "CREATE OR REPLACE FUNCTION seen_job() RETURNS trigger LANGUAGE plpgsql"
                      " AS $$ BEGIN INSERT INTO seen_jobs VALUES (NEW.kind, NEW.payload);"
                      " RETURN NULL; END $$;"
                      "DROP TRIGGER IF EXISTS seen_jobs ON jobs;"
                      "CREATE TRIGGER seen_jobs AFTER INSERT ON jobs FOR EACH ROW"
                      " EXECUTE FUNCTION seen_job()")
        _, case_id, _ = self.submit("treatment_dhq")
        self.assertEqual(self.pgs.scalar("SELECT department_id FROM cases WHERE id = %s"
                                         % case_id), "health")
        self.wait_delivered(case_id)
        self.assertEqual(self.duty_messages(case_id), [])
        # the staff_inbox plugin wants no delivery of it (no duty phone): intake queued none
        self.assertEqual(self.pgs.scalar(
            "SELECT count(*) FROM seen_jobs WHERE kind = 'case.deliver' AND"
            " payload->>'case_id' = '%s'" % case_id), "0")
        # while a department with a duty phone gets its job (and its SMS)
        _, other, _ = self.submit("fard")
        self.wait_delivered(other)
        self.assertEqual(self.pgs.scalar(
            "SELECT count(*) FROM seen_jobs WHERE kind = 'case.deliver' AND"
            " payload->>'case_id' = '%s'" % other), "1")
        self.pgs.psql("DROP TRIGGER seen_jobs ON jobs")


class InboxDutyConfigTest(DutyNotice, rbtest.TestCase):
    """notify_duty_officer off, switched on by a reload; bad duty phones refused."""

    def test_off_then_on_by_reload_and_bad_duty_phone_refused(self):
        deps = os.path.join(self.tmp, "departments")
        glob = copy_departments(deps)
        set_duty_phone(deps, "health", "0300-111 2223")  # a local form: kept as E.164
        self.pgs = self.pg()
        self.rd = self.rabtad(pg=self.pgs)
        self.rd.config["departments"] = glob
        self.rd.config["plugins"] = staff_inbox_plugins(self.rd, notify_duty_officer=False)
        self.rd.start()

        _, case_id, _ = self.submit("treatment_dhq")
        self.wait_delivered(case_id)
        self.assertEqual(self.duty_messages(case_id), [], "notify_duty_officer: false")

        # Reload: on, in Urdu.
        self.rd.config["plugins"] = staff_inbox_plugins(self.rd, notify_duty_officer=True,
                                                  duty_language="ur")
        self.rd.write_config()
        since = self.rd.log_offset()
        self.rd.send_signal(signal.SIGHUP)
        self.rd.wait_for_log(r"reloaded", timeout=10.0, since=since)
        tn, case_id, _ = self.submit("treatment_dhq", kind="information")
        self.wait_delivered(case_id)
        msgs = self.duty_messages(case_id)
        self.assertEqual(len(msgs), 1, msgs)
        self.assertEqual(msgs[0][:3], ["+923001112223", msgs[0][1], "ur"])
        self.assertIn(tn, msgs[0][1])
        self.assertIn("معلومات کی درخواست", msgs[0][1], "the kind in Urdu words")
        self.assertIn("رابطہ", msgs[0][1])

        # A duty phone that is not a phone: the reload is refused naming the file, and the old
        # configuration keeps working.
        bad = set_duty_phone(deps, "health", "call the duty officer")
        since = self.rd.log_offset()
        self.rd.send_signal(signal.SIGHUP)
        line = self.rd.wait_for_log(r"refused", timeout=10.0, since=since)
        with open(self.rd.logfile, "rb") as f:
            f.seek(since)
            log = f.read().decode("utf-8", "replace")
        self.assertIn("health.yaml", log, "the refusal names the file: %r" % line)
        self.assertIn("duty_phone", log)
        self.assertTrue(self.rd.running())
        _, case_id, _ = self.submit("treatment_dhq")
        self.wait_delivered(case_id)
        self.assertEqual([m[0] for m in self.duty_messages(case_id)], ["+923001112223"],
                         "the old duty phone is still used after the refused reload")

        # ... and --check (as a start would) refuses it too, naming the file.
        r = rbtest.run_rabtad(["--check", "-c", self.rd.config_path])
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn(bad, r.stdout + r.stderr)
        self.assertIn('key "duty_phone": "call the duty officer" is not a phone number',
                      r.stdout + r.stderr)


if __name__ == "__main__":
    rbtest.main()
