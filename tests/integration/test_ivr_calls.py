"""Outbound IVR calls (plugin ivr_asterisk, the sender of channel "call"): call messages queued
as any plugin queues a message (host API message_queue, through the test_sender plugin's route,
with the call's data), or with SQL rabta_message_queue, originated through AMI to a scripted
Asterisk (asterisk_peer.py: an AMI server that dials, and a FastAGI client for each answered
call), with the real rabtad and PostgreSQL."""

import datetime
import json
import os
import shutil
import threading
import time
import urllib.parse

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
    def extra(cls):
        """rabta.yaml's keys of the class, read just before rabtad starts."""
        return cls.EXTRA

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.class_pg()
        cls.amis = []
        cls.ami, cls.r = cls.start_rabtad("rabtad", cls.class_tmp() + "/state")

    @classmethod
    def start_rabtad(cls, name, state_dir):
        """A rabtad on the class's database with an Asterisk peer of its own: (ami, rabtad)."""
        agi_port = rbtest.free_port()
        ami = asterisk_peer.AmiServer(agi_port, secret=SECRET).start()
        cls.amis.append(ami)
        port = rbtest.free_port()
        cfg = rbtest.default_config(port, state_dir, cls.db.url())
        cfg["lua_dir"] = test_lua(cls.class_tmp())
        cfg.update(cls.extra())
        cfg["plugins"].append({"name": "ivr_asterisk", "config": {
            "agi_listen": "127.0.0.1:%d" % agi_port, "recordings_dir": cls.class_tmp(),
            "ami_host": "127.0.0.1", "ami_port": ami.port, "ami_username": "rabta",
            "ami_secret": SECRET, "key_timeout": "1s"}})
        cfg["plugins"].append({"name": "test_sender", "config": {"channels": "fax"},
                               "path": os.path.join(rbtest.TEST_PLUGIN_DIR, "test_sender.so")})
        r = cls.class_rabtad(pg=cls.db, port=port, config=cfg, name=name)
        ami.wait(lambda: ami.logins >= 1, 20, "rabtad's AMI login")
        return ami, r

    @classmethod
    def tearDownClass(cls):
        for ami in cls.amis:
            ami.stop()
        super().tearDownClass()

    def queue(self, phone, script="cfmp_survey", reply="test.ivr_done", ref=None, lang="ur"):
        """A call message through the host API message_queue (not urgent: quiet hours apply);
        returns its message id."""
        data = {"script": script, "reply_kind": reply, "ref": ref or {"phone": phone}}
        q = urllib.parse.urlencode({"channel": "call", "to": phone, "language": lang,
                                    "template": "call.cfmp_survey", "urgent": "0",
                                    "data": json.dumps(data)})
        r = self.r.post("/test/test_sender/message?" + q, {})
        self.assertEqual(r.status, 201, r)
        return r.json["id"]

    def message(self, msg_id):
        """The call message's row: status, attempts, last_error, gateway_ref."""
        return self.db.query("SELECT status, attempts, last_error, gateway_ref FROM messages"
                             " WHERE id = %s" % msg_id)[0]

    def call_row(self, msg_id):
        return self.db.query("SELECT state, attempts, outcome, answers::text FROM ivr_calls"
                             " WHERE message_id = %s" % msg_id)

    def wait_final(self, msg_id, timeout=40):
        """The call's final row, once the message is final too (its send reported)."""
        rbtest.wait_until(lambda: self.message(msg_id)[0] != "queued", timeout,
                          what="the call message %s to be sent or failed" % msg_id)
        return rbtest.wait_until(
            lambda: [r for r in self.call_row(msg_id) if r[0] != "queued"], 10,
            what="the call of message %s to end" % msg_id)[0]

    def attempts(self, msg_id):
        return self.db.query("SELECT a.n, a.outcome, a.reason, a.cause, a.amd FROM ivr_attempts a"
                             " JOIN ivr_calls c ON c.id = a.call_id WHERE c.message_id = %s"
                             " ORDER BY a.n" % msg_id)

    def dials(self, phone):
        """The Originate actions for phone at every Asterisk peer of the class."""
        out = []
        for ami in self.amis:
            with ami.lock:
                out += [o for o in ami.originates if o[1] == phone]
        return out

    def send_job(self, msg_id):
        """The call message's send job: [id, state, attempts, locked_by, last_error]."""
        return self.db.query("SELECT id, state, attempts, coalesce(locked_by, ''),"
                             " coalesce(last_error, '') FROM jobs WHERE kind ="
                             " 'message.send.call' AND (payload->>'message_id')::bigint = %s"
                             % msg_id)


class CallsTest(CallsCase):
    def test_survey_answered_on_the_keypad_stores_answers_and_tells_the_queuer(self):
        phone = "+923005550001"
        self.ami.behave(phone, ["answer"], keys=["1", "2"])
        msg = self.queue(phone, ref={"transaction": 77})
        state, attempts, outcome, answers = self.wait_final(msg)
        self.assertEqual((state, attempts, outcome), ("done", "1", "completed"))
        call = [c for c in self.ami.calls if c.callerid == phone][0]
        self.assertEqual(self.message(msg), ["sent", "1", "", call.uniqueid],
                         "the message is sent, with the answered call's Asterisk uniqueid")
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
        self.assertEqual((reply["outcome"], reply["state"], reply["message_id"]),
                         ("completed", "done", msg))
        self.assertEqual(self.db.scalar(
            "SELECT count(*) FROM jobs WHERE kind = 'message.send.call' AND"
            " (payload->>'message_id')::bigint = %s" % msg), "0", "the send job is over")

    def test_a_question_without_a_key_is_asked_again_then_the_script_moves_on(self):
        phone = "+923005550002"
        self.ami.behave(phone, ["answer"], keys=[None, "9", "1", None, None, None])
        msg = self.queue(phone)
        state, _, outcome, answers = self.wait_final(msg)
        self.assertEqual((state, outcome, json.loads(answers)), ("done", "completed",
                                                                 {"satisfied": "1"}))
        call = [c for c in self.ami.calls if c.callerid == phone][0]
        self.assertEqual(call.played.count("rabta/ur/cfmp-q-satisfied"), 3)
        self.assertEqual(call.played.count("rabta/ur/cfmp-q-bribe"), 3)  # 1 + repeat_question 2
        self.assertEqual(call.played[-1], "rabta/ur/cfmp-thanks")

    def test_busy_then_answered_on_retry(self):
        phone = "+923005550003"
        self.ami.behave(phone, ["busy", "answer"], keys=["2", "1"])
        msg = self.queue(phone)
        state, attempts, outcome, answers = self.wait_final(msg)
        self.assertEqual((state, attempts, outcome), ("done", "2", "completed"))
        self.assertEqual(self.message(msg)[:3], ["sent", "2", ""])
        # the Hangup event's cause arrives after the call's end
        rbtest.wait_until(lambda: self.attempts(msg)[-1][3] == "16", 10,
                          what="the Hangup cause of the answered attempt")
        self.assertEqual(self.attempts(msg), [["1", "busy", "5", "17", ""],
                                              ["2", "completed", "4", "16", "HUMAN"]])
        d = self.dials(phone)
        self.assertGreaterEqual(d[1][2] - d[0][2], 0.9, "the retry came before the spacing")

    def test_no_answer_until_the_attempts_run_out(self):
        phone = "+923005550004"
        self.ami.behave(phone, ["no_answer"])
        msg = self.queue(phone)
        state, attempts, outcome, _ = self.wait_final(msg, timeout=60)
        self.assertEqual((state, attempts, outcome), ("failed", "3", "no_answer"))
        self.assertEqual(self.message(msg)[:3], ["failed", "3", "no_answer after 3 attempts"
                                                 " (reason 3, cause 19)"])
        self.assertEqual([a[1:4] for a in self.attempts(msg)], [["no_answer", "3", "19"]] * 3)
        self.assertEqual(len(self.dials(phone)), 3)
        reply = json.loads(rbtest.wait_until(lambda: self.db.scalar(
            "SELECT payload::text FROM jobs WHERE kind = 'test.ivr_done' AND payload->'ref'"
            "->>'phone' = '%s'" % phone), 10, what="the reply job"))
        self.assertEqual((reply["state"], reply["outcome"], reply["answers"], reply["message_id"]),
                         ("failed", "no_answer", {}, msg))

    def test_an_answering_machine_is_no_contact_and_is_called_again(self):
        phone = "+923005550005"
        self.ami.behave(phone, ["machine", "answer"], keys=["1", "1"])
        msg = self.queue(phone)
        state, attempts, outcome, _ = self.wait_final(msg)
        self.assertEqual((state, attempts, outcome), ("done", "2", "completed"))
        self.assertEqual([a[1] for a in self.attempts(msg)], ["machine", "completed"])
        self.assertEqual(self.attempts(msg)[0][4], "MACHINE")
        self.assertEqual(self.message(msg)[:2], ["sent", "2"])

    def test_congestion(self):
        phone = "+923005550006"
        self.ami.behave(phone, ["congestion", "answer"], keys=["1", "2"])
        msg = self.queue(phone)
        self.assertEqual(self.wait_final(msg)[0], "done")
        self.assertEqual(self.attempts(msg)[0][1:4], ["congestion", "8", "34"])

    def test_a_call_message_for_a_script_that_does_not_exist_fails_at_once(self):
        phone = "+923005550007"
        self.ami.behave(phone, ["answer"], keys=["1", "1"])
        # queued by SQL, the schema contract other plugins use (rabta_message_queue's data)
        msg = self.db.scalar(
            "SELECT message_id FROM rabta_message_queue(ARRAY['call'], ARRAY['%s'],"
            " ARRAY['a survey'], data => ARRAY['{\"script\": \"no_such_script\","
            " \"reply_kind\": \"test.ivr_done\"}'::jsonb])" % phone)
        rbtest.wait_until(lambda: self.message(msg)[0] == "failed", 15,
                          what="the call message to fail")
        status, attempts, error, _ = self.message(msg)
        self.assertEqual(attempts, "1", "tried once, not retried")
        self.assertIn('no call script "no_such_script" in lua/ivr.lua (its scripts: ', error)
        self.assertIn("cfmp_survey", error)
        self.assertEqual(self.db.scalar(
            "SELECT state FROM jobs WHERE kind = 'message.send.call' AND"
            " (payload->>'message_id')::bigint = %s" % msg), "dead")
        self.assertEqual(self.dials(phone), [])
        self.assertEqual(self.call_row(msg), [])
        # a call message without data is refused the same way
        msg2 = self.db.scalar("SELECT message_id FROM rabta_message_queue(ARRAY['call'],"
                              " ARRAY['%s'], ARRAY['a survey'])" % phone)
        rbtest.wait_until(lambda: self.message(msg2)[0] == "failed", 15,
                          what="the call message without data to fail")
        self.assertIn('needs data {"script": NAME}', self.message(msg2)[2])
        # and bad data never reaches the queue through the host API
        q = urllib.parse.urlencode({"channel": "call", "to": phone, "template": "call.notice",
                                    "data": "[1, 2]"})
        r = self.r.post("/test/test_sender/message?" + q, {})
        self.assertEqual(r.status, 400, r)
        self.assertIn("data must be a JSON object", r.body.decode())

    def test_the_simultaneous_calls_limit_is_never_exceeded(self):
        phones = ["+92300555%04d" % (100 + i) for i in range(12)]
        for p in phones:
            self.ami.behave(p, ["answer"], keys=["1", "1"])
        with self.ami.lock:
            self.ami.max_active = self.ami.active
        self.ami.ring_delay = 0.5  # calls that last, so the lines fill up
        try:
            msgs = [self.queue(p) for p in phones]
            for m in msgs:
                self.assertEqual(self.wait_final(m, timeout=90)[0], "done")
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
            msgs = [self.queue(p) for p in phones]
            self.ami.wait(lambda: len(self.ami.originates) >= before + 2, 20, "two dials")
            self.ami.drop()
            self.ami.wait(lambda: self.ami.logins > logins, 20, "rabtad's new login")
            finals = [self.wait_final(m, timeout=90) for m in msgs]
            self.assertEqual([f[0] for f in finals], ["done"] * 8)
            self.assertEqual([self.message(m)[0] for m in msgs], ["sent"] * 8)
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
        msg = self.queue(phone)
        rbtest.wait_until(lambda: self.call_row(msg), 15, what="the call to be stored")
        self.assertEqual(self.dials(phone), [], "dialled while the AMI login is refused")
        self.ami.refuse_logins = False
        self.ami.wait(lambda: self.ami.logins > logins, 40, "a login after the refusal")
        self.assertEqual(self.wait_final(msg, timeout=60)[0], "done")


class QuietHoursTest(CallsCase):
    now = datetime.datetime.now(datetime.timezone.utc)
    start = (now - datetime.timedelta(minutes=30)).strftime("%H:%M")
    end = (now + datetime.timedelta(minutes=30)).strftime("%H:%M")
    EXTRA = {"messages": {"quiet_hours": "%s-%s" % (start, end), "timezone": "UTC"}}

    def test_no_call_in_quiet_hours(self):
        phone = "+923005550401"
        self.ami.behave(phone, ["answer"], keys=["1", "1"])
        msg = self.queue(phone)
        run_at = self.db.scalar(
            "SELECT extract(epoch FROM run_at - now())::int FROM jobs WHERE kind ="
            " 'message.send.call' AND (payload->>'message_id')::bigint = %s" % msg)
        self.assertGreater(int(run_at), 20 * 60, "the call waits for the end of the quiet hours")
        # a call due now (a retry scheduled before the quiet hours began) waits too
        self.db.psql("UPDATE jobs SET run_at = now() WHERE kind = 'message.send.call' AND"
                        " (payload->>'message_id')::bigint = %s" % msg)
        run_at = rbtest.wait_until(lambda: self.db.scalar(
            "SELECT extract(epoch FROM run_at - now())::int FROM jobs WHERE kind ="
            " 'message.send.call' AND (payload->>'message_id')::bigint = %s AND"
            " last_error = 'quiet hours'" % msg), 15, what="the call to wait for the quiet hours")
        self.assertGreater(int(run_at), 20 * 60)
        self.assertEqual(self.dials(phone), [])
        self.assertEqual(self.call_row(msg), [])
        self.assertEqual(self.message(msg)[:2], ["queued", "0"])
        self.assertEqual(self.send_job(msg)[0][2], "0", "the wait spent one of the send's attempts")


class QuietHoursEndTest(CallsCase):
    """Quiet hours that began an hour ago and end seconds after rabtad starts."""
    WINDOW_LEFT = 40  # seconds of quiet hours left when rabtad starts

    @classmethod
    def extra(cls):
        now = datetime.datetime.now(datetime.timezone.utc)
        end = now + datetime.timedelta(seconds=cls.WINDOW_LEFT)
        cls.quiet_end_mono = time.monotonic() + cls.WINDOW_LEFT
        return {"messages": {"quiet_hours": "%s-%s" % (
            (now - datetime.timedelta(hours=1)).strftime("%H:%M:%S"), end.strftime("%H:%M:%S")),
            "timezone": "UTC"}}

    def test_a_call_due_in_quiet_hours_waits_for_their_end_without_spending_attempts(self):
        phone = "+923005550402"
        self.ami.behave(phone, ["answer"], keys=["1", "2"])
        msg = self.queue(phone)
        # two runs and the send job is dead (a claim counts an attempt): waits must not count
        self.db.psql("UPDATE jobs SET max_attempts = 2 WHERE kind = 'message.send.call' AND"
                     " (payload->>'message_id')::bigint = %s" % msg)
        for i in range(3):  # due now, as a retry scheduled before the quiet hours began
            self.db.psql("UPDATE jobs SET run_at = now(), last_error = NULL WHERE kind ="
                         " 'message.send.call' AND (payload->>'message_id')::bigint = %s"
                         " AND state = 'queued'" % msg)
            job = rbtest.wait_until(lambda: [j for j in self.send_job(msg) if j[1] == "queued"
                                             and j[4] == "quiet hours"], 15,
                                    what="run %d of the send job to wait for the quiet hours"
                                    % (i + 1))[0]
            self.assertEqual(job[2], "0", "waiting for the quiet hours spent an attempt")
        self.assertLess(time.monotonic(), self.quiet_end_mono, "the window ended during the "
                        "test's set-up: the machine is too slow for WINDOW_LEFT")
        self.assertEqual(self.dials(phone), [])
        self.assertEqual(self.message(msg)[:2], ["queued", "0"])
        self.assertEqual(self.call_row(msg), [])
        state, attempts, outcome, answers = self.wait_final(msg, timeout=self.WINDOW_LEFT + 60)
        self.assertEqual((state, attempts, outcome), ("done", "1", "completed"))
        self.assertEqual(json.loads(answers), {"satisfied": "1", "bribe": "2"})
        self.assertEqual(self.message(msg)[:3], ["sent", "1", ""])
        dials = self.dials(phone)
        self.assertEqual(len(dials), 1)
        self.assertGreaterEqual(dials[0][2], self.quiet_end_mono - 1.5,
                                "the call was placed before the quiet hours ended")


class LongCallTest(CallsCase):
    """jobs.lease of 2 s and two rabtad processes on one database, each with its own Asterisk
    peer: a call that lasts several leases is dialled once."""
    LEASE = 2.0

    @classmethod
    def extra(cls):
        return {"jobs": {"lease": "%gs" % cls.LEASE}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ami2, cls.r2 = cls.start_rabtad("rabtad2", cls.class_tmp() + "/state2")

    def long_call(self, phone):
        """Queues a call to phone whose caller thinks before the first answer until the
        returned event is set; returns (message id, event) once the call is up."""
        gate = threading.Event()
        for ami in self.amis:
            ami.behave(phone, ["answer"], keys=["1", "2"])
            with ami.lock:
                ami.gates[phone] = gate
        msg = self.queue(phone)
        rbtest.wait_until(lambda: any(c.callerid == phone and c.played for ami in self.amis
                                      for c in list(ami.calls)), 30,
                          what="the call to %s to be answered and asking" % phone)
        return msg, gate

    def lasted(self, msg, leases):
        """True once the call's dial started more than that many leases ago."""
        return self.db.scalar(
            "SELECT bool_and(now() - a.started_at > make_interval(secs => %f)) FROM ivr_attempts"
            " a JOIN ivr_calls c ON c.id = a.call_id WHERE c.message_id = %s"
            % (leases * self.LEASE, msg)) == "t"

    def test_a_call_longer_than_the_lease_is_dialled_once(self):
        phone = "+923005550501"
        msg, gate = self.long_call(phone)
        try:
            job = self.send_job(msg)
            self.assertEqual([j[1:3] for j in job], [["running", "1"]])
            rbtest.wait_until(lambda: self.lasted(msg, 4), 60, what="the call to last 4 leases")
            self.assertEqual(self.send_job(msg), job, "the send job was taken again while its "
                             "call was up")
        finally:
            gate.set()
        state, attempts, outcome, answers = self.wait_final(msg)
        self.assertEqual((state, attempts, outcome), ("done", "1", "completed"))
        self.assertEqual(json.loads(answers), {"satisfied": "1", "bribe": "2"})
        self.assertEqual(self.message(msg)[:3], ["sent", "1", ""])
        self.assertEqual(len(self.dials(phone)), 1, "Originate actions for one call")
        self.assertEqual(len(self.attempts(msg)), 1)

    def test_a_send_taken_again_while_its_call_is_up_waits_and_does_not_dial(self):
        phone = "+923005550502"
        msg, gate = self.long_call(phone)
        offs = [r.log_offset() for r in (self.r, self.r2)]
        try:
            # as if its process had stalled past the lease: the job back in the queue
            self.db.psql("UPDATE jobs SET state = 'queued', run_at = now(), locked_by = NULL,"
                         " locked_at = NULL WHERE kind = 'message.send.call' AND"
                         " (payload->>'message_id')::bigint = %s" % msg)
            rbtest.wait_until(lambda: len(self.dials(phone)) > 1 or any(
                b"an earlier dial may still be up" in r.log_text().encode()[off:]
                for r, off in zip((self.r, self.r2), offs)), 30,
                what="the send taken again to wait for the call (or to dial)")
            self.assertEqual(len(self.dials(phone)), 1, "dialled again while its call was up")
            self.assertEqual([j[1:3] for j in self.send_job(msg)], [["running", "2"]])
        finally:
            gate.set()
        state, attempts, outcome, _ = self.wait_final(msg)
        self.assertEqual((state, attempts, outcome), ("done", "1", "completed"))
        self.assertEqual(self.message(msg)[:3], ["sent", "1", ""])
        rbtest.wait_until(lambda: self.send_job(msg) == [], 30, what="the send job to end")
        self.assertEqual(len(self.dials(phone)), 1, "Originate actions for one call")
        self.assertEqual(len(self.attempts(msg)), 1)


if __name__ == "__main__":
    rbtest.main()
