"""Proactive feedback end to end with the real binary, a real PostgreSQL, a real Kannel with
its fake SMSC peer and the real IVR plugin (ivr_asterisk) against the scripted Asterisk
(asterisk_peer.py: AMI and FastAGI) (docs/feedback.md): transactions imported (CSV) or posted
(an office's API key) -> the citizen called at the right time -> keypad answers (and a voice
comment) through FastAGI, or answers by SMS -> a negative answer opens a case at the office's
supervisor, never at the official, the citizen's phone hidden; a call unanswered until its
attempts run out, or answered by a machine, falls back to SMS; the agent flow; the per-citizen cap, opt-out (STOP) and
quiet hours; duplicate transactions; and the evidence report's figures against hand-computed
ones (a Wilson interval, a flagged small cell, the league table by interval)."""
import datetime
import json
import math
import os
import re
import subprocess

import time

import asterisk_peer
import kannel
import rbtest
from test_ivr_calls import test_lua
from test_sms import KannelCase

PASSWORD = "s3cret-pass-word"
AMI_SECRET = "ami-secret"
OFFICES = (
    "id,name_en,name_ur,department,district,services,supervisor\n"
    "lhr-dlc,Lahore Licensing Centre,لائسنس مرکز لاہور,police,lahore,"
    "driving_licence_issue;driving_licence_renewal;learner_permit;character_certificate;"
    "fir_registration,"
    "sup.lhr\n"
    "ksr-dlc,Kasur Licensing Centre,,police,kasur,driving_licence_issue,sup.ksr\n")
OFFICIALS = (
    "id,name,designation,office,phone\n"
    "off-1,Asif Khan,Licensing Officer,lhr-dlc,\n"
    "off-2,Bilal Ahmed,Clerk,lhr-dlc,\n")
STAFF = {
    "sup.lhr": ("supervisor", "police", "Sup Lahore"),
    "asif": ("officer", "police", "Asif Khan"),  # the official, who also works cases
    "agent1": ("agent", None, "Agent One"),
    "agent2": ("agent", None, "Agent Two"),
    "adm": ("admin", None, "Admin"),
}


def quiet_now():
    """Quiet hours around the present moment in Pakistan (UTC+5): 'HH:MM-HH:MM'."""
    now = datetime.datetime.utcnow() + datetime.timedelta(hours=5)
    a, b = now - datetime.timedelta(hours=1), now + datetime.timedelta(hours=2)
    return "%02d:%02d-%02d:%02d" % (a.hour, a.minute, b.hour, b.minute)


def wilson(k, n, z=1.959963984540054):
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


class FeedbackTest(KannelCase):
    PLUGIN = {"sender": "8080", "rate": 50, "burst": 50, "flood_max": 50,
              "flood_window": "1h"}

    @classmethod
    def config(cls):
        tmp = cls.class_tmp()
        path = os.path.join(tmp, "outreach.yaml")
        policy = {
            "timezone": "Asia/Karachi",
            # call_wait is a backstop far beyond the IVR's three dials: a call's end comes
            # back from the IVR (its result job), never from this wait
            "defaults": {"delay": "0s", "channels": ["call", "sms"], "call_wait": "10m",
                         "sms_wait": "1h", "attempts": 1, "agent_sample": 0,
                         "quiet_hours": "00:00-00:00", "per_citizen_days": 30,
                         "survey": "default"},
            "services": {
                "driving_licence_renewal": {"channels": ["sms"]},
                "learner_permit": {"agent_sample": 1, "agent_wait": "1h"},
                "character_certificate": {"channels": ["sms"], "quiet_hours": quiet_now()},
                "fir_registration": {"delay": "6h"},
                "driving_licence_issue": {"delay": "3s"},
            },
        }
        with open(path, "w") as f:
            json.dump(policy, f)
        # Calls go to the IVR plugin, which dials through the scripted Asterisk's AMI and
        # runs each answered call over FastAGI (spacing 1 s between dials: test_lua).
        cls.agi_port = rbtest.reserve_port()
        cls.ami = asterisk_peer.AmiServer(cls.agi_port, secret=AMI_SECRET).start()
        cls.recordings = os.path.join(tmp, "recordings")
        os.makedirs(cls.recordings, exist_ok=True)
        plugins = rbtest.default_config(0, tmp)["plugins"] + [
            {"name": "ivr_asterisk", "config": {
                "agi_listen": "127.0.0.1:%d" % cls.agi_port, "recordings_dir": cls.recordings,
                "ami_host": "127.0.0.1", "ami_port": cls.ami.port, "ami_username": "rabta",
                "ami_secret": AMI_SECRET, "key_timeout": "1s"}}]
        return {"outreach": path, "plugins": plugins, "lua_dir": test_lua(tmp)}

    @classmethod
    def tearDownClass(cls):
        ami = getattr(cls, "ami", None)
        if ami:
            ami.stop()
        super().tearDownClass()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        tmp = cls.class_tmp()
        for name, data in (("offices", OFFICES), ("officials", OFFICIALS)):
            p = os.path.join(tmp, name + ".csv")
            with open(p, "w") as f:
                f.write(data)
            r = cls.cli([name, "import", p])
            assert r.returncode == 0, r
        for user, (role, dept, name) in STAFF.items():
            args = ["staff", "add", user, "--role", role, "--name", name]
            if dept:
                args += ["--department", dept]
            r = cls.cli(args, PASSWORD + "\n")
            assert r.returncode == 0, r
        cls.tokens = {}
        cls.csv_n = 0
        cls.ami.wait(lambda: cls.ami.logins >= 1, 30, "rabtad's AMI login")

    @classmethod
    def cli(cls, args, stdin=""):
        return subprocess.run([rbtest.RABTAD, args[0], "-c", cls.r.config_path] + args[1:],
                              input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=120)

    # helpers ------------------------------------------------------------------------------
    def token(self, user):
        if user not in self.tokens:
            r = self.r.post("/api/v1/staff/login", {"username": user, "password": PASSWORD})
            self.assertEqual(r.status, 200, r)
            self.tokens[user] = r.json["token"]
        return {"Authorization": "Bearer " + self.tokens[user]}

    def import_tx(self, rows):
        """rows: (reference, service, official, phone); completed now. Returns the ids."""
        type(self).csv_n += 1
        path = os.path.join(self.tmp, "tx%d.csv" % self.csv_n)
        now = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%SZ")
        with open(path, "w") as f:
            f.write("reference,office,service,official,citizen_name,phone,completed_at,"
                    "language\n")
            for ref, service, official, phone in rows:
                f.write("%s,lhr-dlc,%s,%s,Citizen,%s,%s,en\n" % (ref, service, official,
                                                                  phone, now))
        r = self.cli(["transactions", "import", path])
        self.assertEqual(r.returncode, 0, r)
        return [self.tx(ref)["id"] for ref, _, _, _ in rows]

    def tx(self, ref):
        row = self.db.query("SELECT id, state, coalesce(disposition, ''), coalesce(skipped_why,"
                            " ''), coalesce(answered_by, ''), coalesce(case_id::text, ''),"
                            " answers::text FROM transactions WHERE reference = '%s'" % ref)[0]
        keys = ("id", "state", "disposition", "skipped", "answered_by", "case_id", "answers")
        return dict(zip(keys, row))

    def wait_state(self, ref, state, timeout=30.0):
        rbtest.wait_until(lambda: self.tx(ref)["state"] == state, timeout,
                          what="transaction %s to be %s" % (ref, state))
        return self.tx(ref)

    def sms_to(self, phone, pattern, what, n_before=0, timeout=30.0):
        """The first SMS to phone after the n_before ones that matches pattern."""
        rx = re.compile(pattern)
        found = []

        def arrived():
            found[:] = [m for m in self.k.smsc.messages_to(phone)[n_before:]
                        if rx.search(m[2])]
            return bool(found)
        rbtest.wait_until(arrived, timeout, what=what)
        return found[0][2]

    def answer(self, phone, text, expect, what):
        n = len(self.k.smsc.messages_to(phone))
        self.k.smsc.send_mo(phone, "8080", text)
        return self.sms_to(phone, expect, what, n)

    # the SMS survey and its consequence ---------------------------------------------------
    def test_sms_answers_negative_opens_case_at_supervisor_not_official(self):
        phone = "+923001230001"
        self.import_tx([("R-100", "driving_licence_renewal", "off-1", "03001230001")])
        q = self.sms_to(phone, r"Were you satisfied", "the first question by SMS")
        self.assertIn("Lahore Licensing Centre", q)
        self.assertIn("Driving licence", q)
        self.answer(phone, "2", r"bribe or extra money", "the bribe question")
        self.answer(phone, "1", r"delayed", "the delay question")
        self.answer(phone, "2", r"what happened", "the comment question")
        self.answer(phone, "The clerk asked for 2000 rupees", r"thank you", "the thanks")
        t = self.wait_state("R-100", "done")
        self.assertEqual((t["disposition"], t["answered_by"]), ("complete", "sms"))
        self.assertEqual(json.loads(t["answers"]), {
            "satisfied": "no", "bribe": "yes", "delayed": "no",
            "comment": "The clerk asked for 2000 rupees"})
        self.assertTrue(t["case_id"], "a negative answer opens a case")
        case = self.db.query(
            "SELECT c.tracking_no, c.department_id, c.category, c.priority, s.username,"
            " c.names_official, c.share_contact, c.channel FROM cases c"
            " LEFT JOIN staff s ON s.id = c.assigned_staff_id WHERE c.id = %s" % t["case_id"])[0]
        tn = case[0]
        self.assertEqual(case[1:], ["police", "bribe", "1", "sup.lhr", "Asif Khan", "f",
                                    "outreach"])
        # The supervisor sees it, without the citizen's phone; the official never does.
        r = self.r.get("/api/v1/staff/cases/" + tn, headers=self.token("sup.lhr"))
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("3001230001", r.text, "the citizen's phone is hidden from the office")
        self.assertIn("2000 rupees", r.json["case"]["text"] if "case" in r.json
                      else r.text)
        r = self.r.get("/api/v1/staff/cases/" + tn, headers=self.token("asif"))
        self.assertEqual(r.status, 404, "the official concerned cannot see it: %r" % r)
        inbox = self.r.get("/api/v1/staff/inbox", headers=self.token("asif"))
        self.assertNotIn(tn, inbox.text)
        # The roll-up counted it.
        row = self.db.query("SELECT sum(complete), sum(dissatisfied), sum(bribe), sum(cases),"
                            " sum(contacted_sms) FROM feedback_rollup WHERE official_id = 'off-1'"
                            " AND service_id = 'driving_licence_renewal'")[0]
        self.assertEqual(row, ["1", "1", "1", "1", "1"])
        # An action names a registered official; the official's page shows it and the figures.
        r = self.r.post("/api/v1/staff/cases/%s/actions" % tn,
                        {"official": "off-1", "action": "show_cause", "note": "SCN 4/2026"},
                        headers=self.token("sup.lhr"))
        self.assertEqual(r.status, 201, r)
        r = self.r.get("/api/v1/staff/officials/off-1", headers=self.token("sup.lhr"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["actions"][0]["action"], "show_cause")
        self.assertEqual(r.json["actions"][0]["case"], tn)
        self.assertGreaterEqual(r.json["figures"]["bribe"]["k"], 1)
        r = self.r.get("/api/v1/staff/officials/off-1", headers=self.token("asif"))
        self.assertEqual(r.status, 404, "an official does not see their own page")

    def test_positive_answers_count_as_appreciation_and_urdu_digits_work(self):
        phone = "+923001230002"
        self.import_tx([("R-101", "driving_licence_renewal", "off-2", "03001230002")])
        self.sms_to(phone, r"Were you satisfied", "the first question")
        self.answer(phone, "\u06f1", r"bribe", "the bribe question")  # Urdu 1
        self.answer(phone, "7", r"bribe", "the bribe question again after a wrong digit")
        self.answer(phone, "2", r"delayed", "the delay question")
        self.answer(phone, "2", r"thank you", "the thanks")
        t = self.wait_state("R-101", "done")
        self.assertEqual(t["disposition"], "complete")
        self.assertEqual(t["case_id"], "")
        self.assertEqual(self.db.scalar("SELECT sum(appreciation) FROM feedback_rollup WHERE"
                                        " official_id = 'off-2' AND service_id ="
                                        " 'driving_licence_renewal'"), "1")
        self.assertEqual(self.db.scalar("SELECT count(*) FROM sms_mo WHERE phone = '%s'"
                                        " AND command = 'survey'" % phone), "4")

    # calls (the IVR plugin and the scripted Asterisk) ---------------------------------------
    def dials(self, phone):
        with self.ami.lock:
            return [o for o in self.ami.originates if o[1] == phone]

    def call_data(self, tid):
        return [json.loads(d) for (d,) in self.db.query(
            "SELECT m.data::text FROM messages m JOIN outreach_attempts a ON a.message_id = m.id"
            " WHERE a.transaction_id = %s AND m.channel = 'call'" % tid)]

    def test_call_at_the_right_time_keypad_answers_and_voice_comment_open_a_case(self):
        phone = "+923001230010"
        self.ami.behave(phone, ["answer"], keys=["2", "1", "2", "#"])
        t0 = time.monotonic()
        (tid,) = self.import_tx([("R-210", "driving_licence_issue", "off-1", "03001230010")])
        t = self.wait_state("R-210", "done", timeout=60)
        dials = self.dials(phone)
        self.assertEqual(len(dials), 1, dials)
        self.assertGreaterEqual(dials[0][2] - t0, 2.0, "called before the policy's delay (3 s)")
        self.assertEqual(self.call_data(tid), [{
            "script": "survey:default", "reply_kind": "survey.call_result",
            "ref": {"transaction": int(tid), "step": 0}}])
        # the survey of lua/surveys.lua, asked with its prompts in the citizen's language
        call = [c for c in self.ami.calls if c.callerid == phone][0]
        self.assertEqual(call.played, ["rabta/en/cfmp-intro", "rabta/en/survey_satisfied",
                                       "rabta/en/survey_bribe", "rabta/en/survey_delayed",
                                       "rabta/en/survey_comment", "rabta/en/cfmp-thanks"])
        self.assertEqual(call.commands[-1], "HANGUP")
        self.assertEqual((t["disposition"], t["answered_by"]), ("complete", "call"))
        answers = json.loads(t["answers"])
        comment = answers.pop("comment", "")
        self.assertEqual(answers, {"satisfied": "no", "bribe": "yes", "delayed": "no"})
        self.assertRegex(comment, r"^recording:rabta-[0-9.]+-comment\.wav$")
        wav = os.path.join(self.recordings, comment[len("recording:"):])
        self.assertGreater(os.path.getsize(wav), 44, "the voice comment is kept")
        self.assertEqual(self.db.query(
            "SELECT channel, disposition FROM outreach_attempts WHERE transaction_id = %s"
            % tid), [["call", "complete"]])
        # a bribe: a priority-1 case at the office's supervisor, never at the official
        case = self.db.query(
            "SELECT c.tracking_no, c.category, c.priority, s.username, c.names_official,"
            " c.share_contact, c.text FROM cases c LEFT JOIN staff s"
            " ON s.id = c.assigned_staff_id WHERE c.id = %s" % t["case_id"])[0]
        self.assertEqual(case[1:6], ["bribe", "1", "sup.lhr", "Asif Khan", "f"])
        self.assertIn("voice comment", case[6])
        self.assertIn(comment[len("recording:"):], case[6])
        r = self.r.get("/api/v1/staff/cases/" + case[0], headers=self.token("sup.lhr"))
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("3001230010", r.text, "the citizen's phone is hidden from the office")
        r = self.r.get("/api/v1/staff/cases/" + case[0], headers=self.token("asif"))
        self.assertEqual(r.status, 404, "the official concerned cannot see it: %r" % r)
        row = self.db.query("SELECT sum(contacted_call), sum(bribe), sum(cases) FROM"
                            " feedback_rollup WHERE official_id = 'off-1' AND service_id ="
                            " 'driving_licence_issue'")[0]
        self.assertEqual(row, ["1", "1", "1"])

    def test_unanswered_call_falls_back_to_sms_and_the_sms_answer_is_recorded(self):
        phone = "+923001230003"
        self.ami.behave(phone, ["no_answer"])
        (tid,) = self.import_tx([("R-200", "driving_licence_issue", "off-1", "03001230003")])
        self.sms_to(phone, r"Were you satisfied", "the SMS after the unanswered call",
                    timeout=90)
        self.assertEqual(len(self.dials(phone)), 3, "the IVR policy's three dials")
        self.assertEqual(self.db.query(
            "SELECT c.state, c.outcome FROM ivr_calls c JOIN outreach_attempts a"
            " ON a.message_id = c.message_id WHERE a.transaction_id = %s" % tid),
            [["failed", "no_answer"]])
        self.answer(phone, "1", r"bribe", "the bribe question")
        self.answer(phone, "2", r"delayed", "the delay question")
        self.answer(phone, "2", r"thank you", "the thanks")
        t = self.wait_state("R-200", "done")
        self.assertEqual((t["disposition"], t["answered_by"]), ("complete", "sms"))
        self.assertEqual(self.db.query(
            "SELECT channel, disposition FROM outreach_attempts WHERE transaction_id = %s"
            " ORDER BY id" % tid), [["call", "non_contact"], ["sms", "complete"]])

    def test_busy_then_answering_machine_is_non_contact_and_sms_follows(self):
        phone = "+923001230011"
        self.ami.behave(phone, ["busy", "machine"])  # busy, then a machine twice
        (tid,) = self.import_tx([("R-220", "driving_licence_issue", "off-2", "03001230011")])
        self.sms_to(phone, r"Were you satisfied", "the SMS after the machine", timeout=90)
        self.assertEqual(self.db.query(
            "SELECT i.outcome, i.amd FROM ivr_attempts i JOIN ivr_calls c ON c.id = i.call_id"
            " JOIN outreach_attempts a ON a.message_id = c.message_id"
            " WHERE a.transaction_id = %s ORDER BY i.n" % tid),
            [["busy", ""], ["machine", "MACHINE"], ["machine", "MACHINE"]])
        self.assertEqual(self.db.query(
            "SELECT channel, coalesce(disposition, '') FROM outreach_attempts"
            " WHERE transaction_id = %s ORDER BY id" % tid), [["call", "non_contact"],
                                                             ["sms", ""]])
        self.assertEqual(self.tx("R-220")["state"], "sms")

    # agents ---------------------------------------------------------------------------------
    def test_agent_takes_the_next_citizen_of_the_sample_and_records_answers(self):
        self.import_tx([("R-300", "learner_permit", "off-2", "03001230004")])
        self.wait_state("R-300", "agent")
        r = self.r.get("/api/v1/staff/agent/next", headers=self.token("agent1"))
        self.assertEqual(r.status, 200, r)
        got = r.json
        self.assertEqual((got["reference"], got["phone"]), ("R-300", "+923001230004"))
        self.assertEqual(got["survey"]["first"], "satisfied")
        # held by agent1 only: agent2 gets nobody, agent1 gets the same one again
        self.assertIsNone(self.r.get("/api/v1/staff/agent/next",
                                     headers=self.token("agent2")).json["transaction"])
        self.assertEqual(self.r.get("/api/v1/staff/agent/next", headers=self.token("agent1"))
                         .json["transaction"], got["transaction"])
        path = "/api/v1/staff/agent/transactions/%d" % got["transaction"]
        r = self.r.post(path, {"answers": {"satisfied": "1", "bribe": "2", "delayed": "2"},
                               "outcome": "complete"}, headers=self.token("agent2"))
        self.assertEqual(r.status, 404, "another agent cannot answer for it: %r" % r)
        r = self.r.post(path, {"answers": {"satisfied": "5"}}, headers=self.token("agent1"))
        self.assertEqual(r.status, 400, r)
        r = self.r.post(path, {"answers": {"satisfied": "1", "bribe": "2", "delayed": "2"},
                               "outcome": "complete"}, headers=self.token("agent1"))
        self.assertEqual(r.status, 200, r)
        t = self.tx("R-300")
        self.assertEqual((t["state"], t["disposition"], t["answered_by"]),
                         ("done", "complete", "agent"))
        self.assertEqual(self.db.query(
            "SELECT a.channel, a.disposition, s.username FROM outreach_attempts a"
            " JOIN staff s ON s.id = a.staff_id WHERE a.transaction_id = %s" % t["id"]),
            [["agent", "complete", "agent1"]])
        r = self.r.get("/api/v1/staff/inbox", headers=self.token("agent1"))
        self.assertEqual(r.status, 403, "agents have no inbox")

    def test_sampled_transaction_left_by_agents_is_called_after_agent_wait(self):
        phone = "+923001230012"
        self.ami.behave(phone, ["answer"], keys=["1", "2", "2"])
        (tid,) = self.import_tx([("R-310", "learner_permit", "off-2", "03001230012")])
        self.wait_state("R-310", "agent")
        job = "kind = 'outreach.step' AND (payload->>'t')::bigint = %s" % tid
        left = self.db.scalar("SELECT extract(epoch FROM run_at - now())::int FROM jobs"
                              " WHERE " + job)
        self.assertGreater(int(left), 3000, "the agents have the policy's agent_wait (1 h)")
        # an agent holds it when the hour is over: it stays theirs, looked at again later
        r = self.r.get("/api/v1/staff/agent/next", headers=self.token("agent2"))
        self.assertEqual(r.json["transaction"], int(tid), r)
        self.db.psql("UPDATE jobs SET run_at = now() WHERE " + job)
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT run_at > now() + interval '50 minutes' FROM jobs WHERE " + job) == "t",
            30.0, what="the expiry to be put off while an agent holds the transaction")
        self.assertEqual(self.tx("R-310")["state"], "agent")
        self.assertEqual(self.dials(phone), [])
        # the agent's claim lapses (an hour old) and the agents' time is over: the call
        self.db.psql("UPDATE transactions SET agent_at = now() - interval '2 hours'"
                     " WHERE id = %s; UPDATE jobs SET run_at = now() WHERE %s" % (tid, job))
        t = self.wait_state("R-310", "done", timeout=60)
        self.assertEqual((t["disposition"], t["answered_by"]), ("complete", "call"))
        self.assertEqual(len(self.dials(phone)), 1)
        self.assertEqual(self.db.query(
            "SELECT channel, disposition FROM outreach_attempts WHERE transaction_id = %s"
            " ORDER BY id" % tid), [["agent", "non_contact"], ["call", "complete"]])
        self.assertIsNone(self.r.get("/api/v1/staff/agent/next", headers=self.token("agent2"))
                          .json["transaction"], "no longer in the sample")

    # who is not contacted ---------------------------------------------------------------------
    def test_opt_out_cap_and_quiet_hours_are_honoured(self):
        stop, capped, quiet = "+923001230005", "+923001230006", "+923001230007"
        self.k.smsc.send_mo(stop, "8080", "STOP")
        self.sms_to(stop, r"no more notices", "the STOP reply")
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT opted_out_at IS NOT NULL FROM citizens WHERE phone = '%s'" % stop) == "t",
            10.0, what="the opt-out stored")
        n_stop = len(self.k.smsc.messages_to(stop))
        self.import_tx([("R-400", "driving_licence_renewal", "off-2", "03001230005"),
                        ("R-401", "driving_licence_renewal", "off-2", "03001230006"),
                        ("R-403", "character_certificate", "off-1", "03001230007")])
        self.assertEqual(self.wait_state("R-400", "skipped")["skipped"],
                         "the citizen opted out (STOP)")
        self.sms_to(capped, r"Were you satisfied", "the first survey of this citizen")
        self.import_tx([("R-402", "driving_licence_renewal", "off-2", "03001230006")])
        self.assertEqual(self.wait_state("R-402", "skipped")["skipped"],
                         "surveyed in the last 30 days")
        # quiet hours: the step waits for their end as a job, nothing is sent
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT count(*) FROM jobs WHERE kind = 'outreach.step' AND (payload->>'t')::bigint"
            " = %s AND run_at > now() + interval '30 minutes'" % self.tx("R-403")["id"]) == "1",
            20.0, what="the quiet-hours step to be put off")
        self.assertEqual(self.tx("R-403")["state"], "waiting")
        self.k.barrier()
        self.assertEqual(len(self.k.smsc.messages_to(stop)), n_stop, "no SMS after STOP")
        self.assertEqual(self.k.smsc.messages_to(quiet), [], "no SMS in quiet hours")
        self.assertEqual(len([m for m in self.k.smsc.messages_to(capped)
                              if "satisfied" in m[2]]), 1, "one survey per citizen")

    # the API and duplicates ---------------------------------------------------------------------
    def test_office_key_posts_transactions_duplicates_are_one(self):
        r = self.cli(["offices", "key", "lhr-dlc"])
        self.assertEqual(r.returncode, 0, r)
        key = {"X-Api-Key": r.stdout.strip()}
        done = (datetime.datetime.utcnow() - datetime.timedelta(hours=1))
        base = {"office": "lhr-dlc", "service": "fir_registration", "official": "off-1",
                "citizen_name": "A", "phone": "03001239999",
                "completed_at": done.strftime("%Y-%m-%dT%H:%M:%SZ")}
        batch = [dict(base, reference="F-1"), dict(base, reference="F-2"),
                 dict(base, reference="F-1"), dict(base, reference="F-3", office="ksr-dlc"),
                 dict(base, reference="F-4", citizen_name="@cmd"),
                 dict(base, reference="F-5", phone="12"), {"reference": 5}]
        r = self.r.post("/api/v1/transactions", {"transactions": batch}, headers=key)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([x["outcome"] for x in r.json["results"]],
                         ["added", "added", "duplicate", "refused", "refused", "added",
                          "refused"], r.json)
        self.assertIn("lhr-dlc", r.json["results"][3]["reason"])
        self.assertIn("formula", r.json["results"][4]["reason"])
        self.assertEqual(r.json["invalid_phones"], 1)
        r = self.r.post("/api/v1/transactions", {"transactions": batch[:2]}, headers=key)
        self.assertEqual([x["outcome"] for x in r.json["results"]], ["duplicate", "duplicate"])
        self.assertEqual(self.db.scalar("SELECT count(*) FROM transactions WHERE reference"
                                        " LIKE 'F-%'"), "3")
        # the FIR policy waits 6 hours after completion
        self.assertEqual(self.db.scalar(
            "SELECT extract(epoch FROM next_at - completed_at)::int FROM transactions"
            " WHERE reference = 'F-2'"), "21600")
        r = self.r.post("/api/v1/transactions", {"transactions": batch[:1]},
                        headers={"X-Api-Key": "rbk_not-a-key"})
        self.assertEqual(r.status, 401, r)
        r = self.r.post("/api/v1/transactions", {"transactions": [base] * 1001}, headers=key)
        self.assertEqual(r.status, 400, r)

    # evidence -----------------------------------------------------------------------------------
    def test_report_figures_match_hand_computed_ones(self):
        # Two offices of a department of their own, with counts set in the roll-up.
        self.db.psql(
            "INSERT INTO offices (id, name_en, department_id, district_id, services) VALUES"
            " ('big', 'Big Office', 'revenue', 'multan', '{fard}'),"
            " ('small', 'Small Office', 'revenue', 'multan', '{fard}');"
            " INSERT INTO feedback_rollup (day, office_id, service_id, transactions,"
            "  invalid_phone, contacted_sms, complete, partial, refusal, non_contact, unknown,"
            "  satisfied_n, dissatisfied, bribe_n, bribe, cases) VALUES"
            " ('2026-02-10', 'big', 'fard', 300, 7, 250, 90, 10, 20, 60, 20, 100, 40, 90, 9, 45),"
            " ('2026-02-11', 'small', 'fard', 4, 0, 4, 3, 0, 0, 1, 0, 3, 2, 3, 0, 2),"
            " ('2026-03-11', 'small', 'fard', 50, 0, 50, 50, 0, 0, 0, 0, 50, 50, 50, 0, 0)")
        r = self.r.get("/api/v1/staff/reports/feedback?from=2026-02-01&to=2026-02-28&by=office"
                       "&department=revenue", headers=self.token("adm"))
        self.assertEqual(r.status, 200, r)
        g = {x["group"]: x for x in r.json["groups"]}
        big, small = g["big"], g["small"]
        self.assertEqual((big["transactions"], big["responded"]), (300, 100))
        self.assertEqual(big["data_quality"]["invalid_phone"], 7)
        # RR1 = I / (I+P+R+NC+U) = 90/200, RR2 = (I+P)/... = 100/200
        self.assertEqual(big["response_rate"]["rr1"]["share"], 0.45)
        self.assertEqual(big["response_rate"]["rr2"]["share"], 0.5)
        lo, hi = wilson(40, 100)
        self.assertEqual(big["dissatisfied"]["share"], 0.4)
        self.assertAlmostEqual(big["dissatisfied"]["low"], lo, places=4)
        self.assertAlmostEqual(big["dissatisfied"]["high"], hi, places=4)
        self.assertAlmostEqual(big["dissatisfied"]["low"], 0.3094, places=4)  # by hand
        self.assertAlmostEqual(big["bribe"]["low"], wilson(9, 90)[0], places=4)
        self.assertFalse(big["small_sample"])
        self.assertTrue(small["small_sample"], "3 answers is a small sample")
        self.assertTrue(small["dissatisfied"]["small_sample"])
        self.assertEqual(small["dissatisfied"]["share"], 0.6667)
        # League: the small office's raw share (2/3) is higher, its interval's lower bound
        # (0.2077) is not: the big office ranks first.
        r = self.r.get("/api/v1/staff/reports/feedback/league?from=2026-02-01&to=2026-02-28"
                       "&department=revenue", headers=self.token("adm"))
        self.assertEqual([x["group"] for x in r.json["league"]], ["big", "small"])
        self.assertAlmostEqual(r.json["league"][1]["dissatisfied"]["low"], wilson(2, 3)[0],
                               places=4)
        r = self.r.get("/api/v1/staff/reports/feedback?from=2026-02-01&to=2026-02-28"
                       "&by=district&department=revenue&format=csv", headers=self.token("adm"))
        self.assertEqual(r.status, 200, r)
        lines = r.text.strip().split("\r\n")
        head = lines[0].split(",")
        row = dict(zip(head, lines[1].split(",")))
        self.assertEqual((row["group"], row["transactions"], row["responded"], row["cases"]),
                         ("multan", "304", "103", "47"))
        self.assertEqual(row["dissatisfied"], "%.4f" % (42 / 103))
        # scope: a police supervisor sees no revenue figures
        r = self.r.get("/api/v1/staff/reports/feedback?from=2026-02-01&to=2026-02-28"
                       "&department=revenue", headers=self.token("sup.lhr"))
        self.assertEqual(r.status, 403, r)
        r = self.r.get("/api/v1/staff/reports/feedback?from=2026-02-01&to=2026-02-28",
                       headers=self.token("sup.lhr"))
        self.assertNotIn("big", [x["group"] for x in r.json["groups"]])


class CapAcrossProcessesTest(rbtest.TestCase):
    """The per-citizen cap with two rabtad processes on one database, each running steps one
    at a time (jobs batch 1): two transactions of one citizen, due together, never both
    contact them."""
    PHONES = 25

    def test_two_processes_contact_each_citizen_once(self):
        pg = self.pg()
        policy = os.path.join(self.tmp, "outreach.yaml")
        with open(policy, "w") as f:
            json.dump({"defaults": {"delay": "0s", "channels": ["sms"], "sms_wait": "1h",
                                    "agent_sample": 0, "quiet_hours": "00:00-00:00",
                                    "per_citizen_days": 30}}, f)
        servers = []
        for name in ("one", "two"):
            cfg = rbtest.default_config(0, os.path.join(self.tmp, name, "state"), pg.url())
            cfg["outreach"] = policy
            cfg["jobs"] = {"batch": 1, "concurrency": 2}
            cfg["plugins"].append({"name": "test_sender", "config": {"channels": "sms"},
                                   "path": os.path.join(rbtest.TEST_PLUGIN_DIR,
                                                        "test_sender.so")})
            servers.append(self.rabtad(pg=pg, name=name, config=cfg, start=True))
        for name, data in (("offices", OFFICES), ("officials", OFFICIALS)):
            path = os.path.join(self.tmp, name + ".csv")
            with open(path, "w") as f:
                f.write(data)
            r = subprocess.run([rbtest.RABTAD, name, "-c", servers[0].config_path, "import",
                                path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True, timeout=120)
            self.assertEqual(r.returncode, 0, r)
        path = os.path.join(self.tmp, "tx.csv")
        now = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%SZ")
        with open(path, "w") as f:
            f.write("reference,office,service,official,citizen_name,phone,completed_at\n")
            for i in range(self.PHONES):
                for k in range(2):
                    f.write("C-%d-%d,lhr-dlc,driving_licence_renewal,off-1,C,0300456%04d,%s\n"
                            % (i, k, i, now))
        r = subprocess.run([rbtest.RABTAD, "transactions", "-c", servers[1].config_path,
                            "import", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=120)
        self.assertEqual(r.returncode, 0, r)
        rbtest.wait_until(lambda: pg.scalar(
            "SELECT count(*) FROM transactions WHERE state = 'waiting'") == "0", 60.0,
            what="every transaction's first step")
        rbtest.wait_until(lambda: pg.scalar(
            "SELECT count(*) FROM messages WHERE status <> 'sent'") == "0", 30.0,
            what="the questions to be sent")
        per_phone = pg.query(
            "SELECT t.phone, count(*) FILTER (WHERE t.state = 'sms'),"
            " count(*) FILTER (WHERE t.skipped_why = 'surveyed in the last 30 days'),"
            " (SELECT count(*) FROM messages m WHERE m.to_address = t.phone)"
            " FROM transactions t GROUP BY t.phone ORDER BY t.phone")
        self.assertEqual(len(per_phone), self.PHONES)
        for phone, asked, skipped, sms in per_phone:
            self.assertEqual((asked, skipped, sms), ("1", "1", "1"),
                             "citizen %s: surveyed %s times, skipped %s, %s SMS"
                             % (phone, asked, skipped, sms))
        for srv in servers:
            self.assertRegex(srv.log_text(), r"sent message \d+ \(sms\)",
                             "both processes ran steps (%s did not)" % srv.name)

if __name__ == "__main__":
    rbtest.main()
