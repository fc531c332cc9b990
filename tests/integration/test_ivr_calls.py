"""Outbound IVR calls (plugin ivr_asterisk): jobs "ivr.call" originated through AMI to a
scripted Asterisk (asterisk_peer.py: an AMI server that dials, and a FastAGI client for each
answered call), with the real rabtad and PostgreSQL."""

import datetime
import json
import os
import shutil

import asterisk_peer
import rbtest

SECRET = "ami-secret"


def test_lua(tmp, max_calls=3, rate=50, spacing=1):
    """lua/ copied with a trunk and a policy fit for tests (seconds, not minutes)."""
    lua = os.path.join(tmp, "lua")
    if not os.path.isdir(lua):
        shutil.copytree(os.path.join(rbtest.SOURCE_DIR, "lua"), lua)
    path = os.path.join(lua, "ivr.lua")
    text = open(os.path.join(rbtest.SOURCE_DIR, "lua", "ivr.lua"), encoding="utf-8").read()
    text = text.replace("max_calls = 30, rate = 5", "max_calls = %d, rate = %d" % (max_calls, rate))
    text = text.replace("spacing = 600", "spacing = %d" % spacing)
    open(path, "w", encoding="utf-8").write(text)
    return lua


class CallsCase(rbtest.TestCase):
    EXTRA = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.class_pg()
        cls.agi_port = rbtest.free_port()
        cls.ami = asterisk_peer.AmiServer(cls.agi_port, secret=SECRET).start()
        port = rbtest.free_port()
        cfg = rbtest.default_config(port, cls.class_tmp() + "/state", cls.db.url())
        cfg["lua_dir"] = test_lua(cls.class_tmp())
        cfg.update(cls.EXTRA)
        cfg["plugins"].append({"name": "ivr_asterisk", "config": {
            "agi_listen": "127.0.0.1:%d" % cls.agi_port, "recordings_dir": cls.class_tmp(),
            "ami_host": "127.0.0.1", "ami_port": cls.ami.port, "ami_username": "rabta",
            "ami_secret": SECRET, "key_timeout": "1s"}})
        cls.r = cls.class_rabtad(pg=cls.db, port=port, config=cfg)
        cls.ami.wait(lambda: cls.ami.logins >= 1, 20, "rabtad's AMI login")

    @classmethod
    def tearDownClass(cls):
        cls.ami.stop()
        super().tearDownClass()

    def queue(self, phone, script="cfmp_survey", reply="test.ivr_done", ref=None, lang="ur"):
        payload = {"script": script, "phone": phone, "language": lang, "reply_kind": reply,
                   "ref": ref or {"phone": phone}}
        return self.db.scalar("INSERT INTO jobs (kind, payload) VALUES ('ivr.call', '%s')"
                              " RETURNING id" % json.dumps(payload))

    def call_row(self, job_id):
        return self.db.query("SELECT state, attempts, outcome, answers::text FROM ivr_calls"
                             " WHERE job_id = %s" % job_id)

    def wait_final(self, job_id, timeout=40):
        return rbtest.wait_until(
            lambda: [r for r in self.call_row(job_id) if r[0] != "queued"], timeout,
            what="the call of job %s to end" % job_id)[0]

    def attempts(self, job_id):
        return self.db.query("SELECT a.n, a.outcome, a.reason, a.cause, a.amd FROM ivr_attempts a"
                             " JOIN ivr_calls c ON c.id = a.call_id WHERE c.job_id = %s"
                             " ORDER BY a.n" % job_id)

    def dials(self, phone):
        with self.ami.lock:
            return [o for o in self.ami.originates if o[1] == phone]


class CallsTest(CallsCase):
    def test_survey_answered_on_the_keypad_stores_answers_and_tells_the_queuer(self):
        phone = "+923005550001"
        self.ami.behave(phone, ["answer"], keys=["1", "2"])
        job = self.queue(phone, ref={"transaction": 77})
        state, attempts, outcome, answers = self.wait_final(job)
        self.assertEqual((state, attempts, outcome), ("done", "1", "completed"))
        self.assertEqual(json.loads(answers), {"satisfied": "1", "bribe": "2"})
        call = [c for c in self.ami.calls if c.callerid == phone][0]
        self.assertEqual(call.commands[0], "GET VARIABLE AMDSTATUS")
        self.assertEqual(call.played, ["rabta/ur/cfmp-intro", "rabta/ur/cfmp-q-satisfied",
                                       "rabta/ur/cfmp-q-bribe", "rabta/ur/cfmp-thanks"])
        self.assertEqual(call.commands[-1], "HANGUP")
        reply = rbtest.wait_until(lambda: self.db.scalar(
            "SELECT payload::text FROM jobs WHERE kind = 'test.ivr_done' AND payload->'ref'"
            "->>'transaction' = '77'"), 10, what="the reply job")
        reply = json.loads(reply)
        self.assertEqual(reply["answers"], {"satisfied": "1", "bribe": "2"})
        self.assertEqual((reply["outcome"], reply["state"]), ("completed", "done"))
        self.assertEqual(self.db.scalar("SELECT count(*) FROM jobs WHERE id = %s AND state IN"
                                        " ('queued', 'running', 'dead')" % job), "0")

    def test_a_question_without_a_key_is_asked_again_then_the_script_moves_on(self):
        phone = "+923005550002"
        self.ami.behave(phone, ["answer"], keys=[None, "9", "1", None, None, None])
        job = self.queue(phone)
        state, _, outcome, answers = self.wait_final(job)
        self.assertEqual((state, outcome, json.loads(answers)), ("done", "completed",
                                                                 {"satisfied": "1"}))
        call = [c for c in self.ami.calls if c.callerid == phone][0]
        self.assertEqual(call.played.count("rabta/ur/cfmp-q-satisfied"), 3)
        self.assertEqual(call.played.count("rabta/ur/cfmp-q-bribe"), 3)  # 1 + repeat_question 2
        self.assertEqual(call.played[-1], "rabta/ur/cfmp-thanks")

    def test_busy_then_answered_on_retry(self):
        phone = "+923005550003"
        self.ami.behave(phone, ["busy", "answer"], keys=["2", "1"])
        job = self.queue(phone)
        state, attempts, outcome, answers = self.wait_final(job)
        self.assertEqual((state, attempts, outcome), ("done", "2", "completed"))
        # the Hangup event's cause arrives after the call's end
        rbtest.wait_until(lambda: self.attempts(job)[-1][3] == "16", 10,
                          what="the Hangup cause of the answered attempt")
        self.assertEqual(self.attempts(job), [["1", "busy", "5", "17", ""],
                                              ["2", "completed", "4", "16", "HUMAN"]])
        d = self.dials(phone)
        self.assertGreaterEqual(d[1][2] - d[0][2], 0.9, "the retry came before the spacing")

    def test_no_answer_until_the_attempts_run_out(self):
        phone = "+923005550004"
        self.ami.behave(phone, ["no_answer"])
        job = self.queue(phone)
        state, attempts, outcome, _ = self.wait_final(job, timeout=60)
        self.assertEqual((state, attempts, outcome), ("failed", "3", "no_answer"))
        self.assertEqual([a[1:4] for a in self.attempts(job)], [["no_answer", "3", "19"]] * 3)
        self.assertEqual(len(self.dials(phone)), 3)
        reply = json.loads(rbtest.wait_until(lambda: self.db.scalar(
            "SELECT payload::text FROM jobs WHERE kind = 'test.ivr_done' AND payload->'ref'"
            "->>'phone' = '%s'" % phone), 10, what="the reply job"))
        self.assertEqual((reply["state"], reply["outcome"], reply["answers"]),
                         ("failed", "no_answer", {}))

    def test_an_answering_machine_is_no_contact_and_is_called_again(self):
        phone = "+923005550005"
        self.ami.behave(phone, ["machine", "answer"], keys=["1", "1"])
        job = self.queue(phone)
        state, attempts, outcome, _ = self.wait_final(job)
        self.assertEqual((state, attempts, outcome), ("done", "2", "completed"))
        self.assertEqual([a[1] for a in self.attempts(job)], ["machine", "completed"])
        self.assertEqual(self.attempts(job)[0][4], "MACHINE")

    def test_congestion_and_a_bad_payload(self):
        phone = "+923005550006"
        self.ami.behave(phone, ["congestion", "answer"], keys=["1", "2"])
        job = self.queue(phone)
        self.assertEqual(self.wait_final(job)[0], "done")
        self.assertEqual(self.attempts(job)[0][1:4], ["congestion", "8", "34"])
        bad = self.queue("+923005550007", script="no_such_script")
        rbtest.wait_until(lambda: self.db.scalar("SELECT state FROM jobs WHERE id = %s" % bad)
                          == "dead", 15, what="the bad job to be refused")
        self.assertIn("no such call script", self.db.scalar(
            "SELECT last_error FROM jobs WHERE id = %s" % bad))

    def test_the_simultaneous_calls_limit_is_never_exceeded(self):
        phones = ["+92300555%04d" % (100 + i) for i in range(12)]
        for p in phones:
            self.ami.behave(p, ["answer"], keys=["1", "1"])
        with self.ami.lock:
            self.ami.max_active = self.ami.active
        self.ami.ring_delay = 0.5  # calls that last, so the lines fill up
        try:
            jobs = [self.queue(p) for p in phones]
            for j in jobs:
                self.assertEqual(self.wait_final(j, timeout=90)[0], "done")
        finally:
            self.ami.ring_delay = 0.05
        self.assertLessEqual(self.ami.max_active, 3)
        self.assertEqual(self.ami.max_active, 3, "the trunk's three lines were never all used")

    def test_ami_lost_mid_batch_no_call_lost_none_placed_twice(self):
        phones = ["+92300555%04d" % (200 + i) for i in range(8)]
        for p in phones:
            self.ami.behave(p, ["answer"], keys=["1", "2"])
        self.ami.ring_delay = 0.5
        try:
            before = len(self.ami.originates)
            logins = self.ami.logins
            jobs = [self.queue(p) for p in phones]
            self.ami.wait(lambda: len(self.ami.originates) >= before + 2, 20, "two dials")
            self.ami.drop()
            self.ami.wait(lambda: self.ami.logins > logins, 20, "rabtad's new login")
            finals = [self.wait_final(j, timeout=90) for j in jobs]
            self.assertEqual([f[0] for f in finals], ["done"] * 8)
            for p in phones:
                self.assertEqual(len(self.dials(p)), 1, "phone %s dialled %d times"
                                 % (p, len(self.dials(p))))
        finally:
            self.ami.ring_delay = 0.05


class LoginRefusedTest(CallsCase):
    def test_refused_login_is_logged_and_retried(self):
        off = self.r.log_offset()
        logins = self.ami.logins
        self.ami.refuse_logins = True
        self.ami.drop()
        self.r.wait_for_log(r"AMI login refused for user .*rabta", since=off, timeout=20)
        phone = "+923005550301"
        self.ami.behave(phone, ["answer"], keys=["1", "1"])
        job = self.queue(phone)
        rbtest.wait_until(lambda: self.call_row(job), 15, what="the call to be stored")
        self.assertEqual(self.dials(phone), [], "dialled while the AMI login is refused")
        self.ami.refuse_logins = False
        self.ami.wait(lambda: self.ami.logins > logins, 40, "a login after the refusal")
        self.assertEqual(self.wait_final(job, timeout=60)[0], "done")


class QuietHoursTest(CallsCase):
    now = datetime.datetime.now(datetime.timezone.utc)
    start = (now - datetime.timedelta(minutes=30)).strftime("%H:%M")
    end = (now + datetime.timedelta(minutes=30)).strftime("%H:%M")
    EXTRA = {"messages": {"quiet_hours": "%s-%s" % (start, end), "timezone": "UTC"}}

    def test_no_call_in_quiet_hours(self):
        phone = "+923005550401"
        self.ami.behave(phone, ["answer"], keys=["1", "1"])
        job = self.queue(phone)
        run_at = rbtest.wait_until(lambda: self.db.scalar(
            "SELECT extract(epoch FROM run_at - now())::int FROM jobs WHERE id = %s AND"
            " last_error = 'quiet hours'" % job), 15, what="the call to wait for the quiet hours")
        self.assertGreater(int(run_at), 20 * 60)
        self.assertEqual(self.dials(phone), [])
        self.assertEqual(self.call_row(job), [])


if __name__ == "__main__":
    rbtest.main()
