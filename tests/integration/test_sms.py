"""SMS channel through a real Kannel (bearerbox + smsbox) and a fake SMSC peer.

A citizen's SMS enters at the fake SMSC, Kannel hands it to rabtad's sms_kannel plugin
(/sms/kannel/mo), the answer goes back through sendsms to the fake SMSC, and Kannel's
delivery report comes back to /sms/kannel/dlr."""

import re
import time
import unittest
import urllib.parse

import kannel
import rbtest

SECRET = "kannel-test-secret"
URDU_COMPLAINT = "ہسپتال میں ڈاکٹر موجود نہیں تھا اور دوائی بھی نہیں ملی"
EN_COMPLAINT = "The police station refused to register my FIR about a stolen motorcycle"


class SmsTest(rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not kannel.available():
            raise unittest.SkipTest("Kannel (bearerbox, smsbox) is not installed")
        cls.db = cls.class_pg()
        port = rbtest.free_port()
        mo = ("http://127.0.0.1:%d/sms/kannel/mo?secret=%s&from=%%p&to=%%P&text=%%a&id=%%I"
              % (port, SECRET))
        cls.k = kannel.Kannel(cls.class_tmp(), mo)
        cfg = rbtest.default_config(port, cls.class_tmp() + "/state", cls.db.url())
        cfg["plugins"].append({"name": "sms_kannel", "config": {
            "secret": SECRET, "sendsms_url": cls.k.sendsms_url,
            "username": kannel.SEND_USER, "password": kannel.SEND_PASSWORD, "sender": "8080",
            "dlr_base_url": "http://127.0.0.1:%d" % port, "rate": 50, "burst": 50}})
        cls.r = cls.class_rabtad(pg=cls.db, port=port, config=cfg)
        try:
            cls.k.start()
        except BaseException:
            rbtest.log(cls.k.log_tail())
            cls.k.stop()
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        k = getattr(cls, "k", None)
        if k:
            k.stop()
        # A clean stop, so a sanitizer build reports leaks (checked by rbtest).
        r = getattr(cls, "r", None)
        code = r.stop() if r else 0
        super().tearDownClass()
        if code != 0:
            raise AssertionError("rabtad exited with %r after SIGTERM" % code)

    def tearDown(self):
        if self._failed():
            print(self.k.log_tail(30))
        super().tearDown()

    # helpers ------------------------------------------------------------------------------
    def reply_to(self, phone, pattern, what):
        rx = re.compile(pattern)
        return self.k.smsc.wait_mt(lambda m: m[1] == phone and rx.search(m[2]), 20.0, what)[2]

    def mo_http(self, **q):
        """The MO endpoint called directly, as Kannel would."""
        return self.r.get("/sms/kannel/mo?" + urllib.parse.urlencode(q))

    def complain(self, phone, text, what):
        self.k.smsc.send_mo(phone, "8080", text)
        body = self.reply_to(phone, r"[0-9A-Z]{4,}-[0-9A-Z-]+|[0-9A-Z]{8,}", what)
        return body

    def tracking_in(self, body):
        rows = self.db.query("SELECT tracking_no FROM cases WHERE channel = 'sms'")
        for (t,) in rows:
            if t in body:
                return t
        self.fail("no stored tracking number appears in the reply %r" % body)

    # MO complaints ------------------------------------------------------------------------
    def test_english_sms_becomes_routed_case_and_reply_has_tracking_number(self):
        phone = "+923001110001"
        body = self.complain(phone, EN_COMPLAINT, "the English reply")
        t = self.tracking_in(body)
        self.assertIn("Tracking number", body, "English reply for an English SMS")
        row = self.db.query("SELECT c.status, c.department_id, c.language, c.text, z.phone"
                            " FROM cases c JOIN citizens z ON z.id = c.citizen_id"
                            " WHERE c.tracking_no = '%s'" % t)
        self.assertEqual(len(row), 1)
        status, dept, lang, text, cphone = row[0]
        self.assertEqual(status, "routed", "the case was routed")
        self.assertTrue(dept, "the case has a department")
        self.assertEqual(lang, "en")
        self.assertEqual(text, EN_COMPLAINT)
        self.assertEqual(cphone, phone)

    def test_urdu_sms_becomes_routed_case_and_urdu_reply_arrives_intact(self):
        phone = "+923001110002"
        body = self.complain(phone, URDU_COMPLAINT, "the Urdu reply")
        t = self.tracking_in(body)
        self.assertIn("آپ کی شکایت درج ہو گئی ہے", body, "Urdu reply, no '?' in it")
        self.assertNotIn("?", body)
        row = self.db.query("SELECT status, department_id, language, text FROM cases"
                            " WHERE tracking_no = '%s'" % t)
        self.assertEqual(row[0][0], "routed")
        self.assertTrue(row[0][1])
        self.assertEqual(row[0][2], "ur", "Arabic-script text is Urdu")
        self.assertEqual(row[0][3], URDU_COMPLAINT, "the Urdu text is stored intact")

    def test_delivery_report_marks_the_reply_delivered(self):
        phone = "+923001110003"
        body = self.complain(phone, "Streetlights broken in our mohalla for two weeks",
                             "the reply")
        t = self.tracking_in(body)
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT m.status FROM messages m JOIN cases c ON c.id = m.case_id"
            " WHERE c.tracking_no = '%s'" % t) == "delivered", 20.0,
            what="the reply's delivery report to mark it delivered")
        self.assertIsNotNone(self.db.scalar(
            "SELECT m.delivered_at FROM messages m JOIN cases c ON c.id = m.case_id"
            " WHERE c.tracking_no = '%s'" % t))

    # STATUS -------------------------------------------------------------------------------
    def test_status_of_own_case_mistyped_and_someone_elses(self):
        phone, other = "+923001110004", "+923001110005"
        t = self.tracking_in(self.complain(phone, "Garbage not collected in street 5 for a month",
                                           "the first reply"))
        self.k.smsc.send_mo(phone, "8080", "status  %s" % t.lower())
        got = self.reply_to(phone, r"is (routed|submitted|acknowledged)", "the status reply")
        self.assertIn(t, got)
        # Urdu keyword with Urdu digits where the number has digits
        urdu_t = t.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
        self.k.smsc.send_mo(phone, "8080", "حالت %s" % urdu_t)
        got = self.reply_to(phone, r"کی حالت", "the Urdu status reply")
        self.assertIn(t, got)
        # mistyped: one character changed breaks the check character
        bad = t[:-1] + ("A" if t[-1] != "A" else "B")
        self.k.smsc.send_mo(phone, "8080", "STATUS %s" % bad)
        self.reply_to(phone, r"no complaint .* was found", "the not-found reply (mistyped)")
        # someone else's case: not found, and nothing of the case is told
        self.k.smsc.send_mo(other, "8080", "STATUS %s" % t)
        got = self.reply_to(other, r"no complaint .* was found", "not found for another phone")
        self.assertNotIn("routed", got)

    # duplicates ---------------------------------------------------------------------------
    def test_duplicate_kannel_id_makes_one_case_and_one_reply(self):
        q = dict(secret=SECRET, to="8080", text="Water supply cut for three days in G block",
                 id="dup-0001")
        q["from"] = "+923001110006"
        r1 = self.mo_http(**q)
        r2 = self.mo_http(**q)
        self.assertEqual((r1.status, r2.status), (200, 200), "both answered 2xx: %r %r" % (r1, r2))
        self.assertEqual(self.db.scalar("SELECT count(*) FROM cases c JOIN citizens z ON"
                                        " z.id = c.citizen_id WHERE z.phone = '+923001110006'"),
                         "1", "one case for one Kannel id")
        self.assertEqual(self.db.scalar("SELECT count(*) FROM messages WHERE"
                                        " to_address = '+923001110006'"), "1", "one reply")
        self.assertEqual(self.db.scalar("SELECT count(*) FROM sms_mo WHERE kannel_id = 'dup-0001'"),
                         "1")

    # STOP ---------------------------------------------------------------------------------
    def test_stop_then_a_notice_is_not_sent(self):
        phone = "+923001110007"
        self.k.smsc.send_mo(phone, "8080", "STOP")
        self.reply_to(phone, r"no more notices", "the STOP confirmation (a direct answer)")
        self.assertIsNotNone(self.db.scalar(
            "SELECT opted_out_at FROM citizens WHERE phone = '%s'" % phone))
        mid = self.db.scalar(
            "WITH m AS (INSERT INTO messages (channel, to_address, body, notice)"
            " VALUES ('sms', '%s', 'Notice: your case was resolved', true) RETURNING id),"
            " j AS (INSERT INTO jobs (kind, payload) SELECT 'message.send',"
            " jsonb_build_object('message_id', id) FROM m) SELECT id FROM m" % phone)
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT status FROM messages WHERE id = %s" % mid) == "failed", 15.0,
            what="the notice to be refused")
        self.assertIn("opted out", self.db.scalar("SELECT last_error FROM messages WHERE id = %s"
                                                  % mid))
        time.sleep(1.0)
        self.assertFalse([m for m in self.k.smsc.messages_to(phone) if "Notice" in m[2]],
                         "the fake SMSC got no notice")
        # START again: notices flow
        self.k.smsc.send_mo(phone, "8080", "start")
        self.reply_to(phone, r"notices are on again", "the START confirmation")
        self.assertIsNone(self.db.scalar(
            "SELECT opted_out_at FROM citizens WHERE phone = '%s'" % phone) or None)

    def test_dlr_failure_marks_failed_and_intermediate_reports_change_nothing(self):
        mid = self.db.scalar("INSERT INTO messages (channel, to_address, body, status)"
                             " VALUES ('sms', '+923001110010', 'x', 'sent') RETURNING id")
        r = self.r.get("/sms/kannel/dlr?secret=wrong-secret&id=%s&type=2" % mid)
        self.assertEqual(r.status, 403, "wrong secret: %r" % r)
        r = self.r.get("/sms/kannel/dlr?secret=%s&id=%s&type=8" % (SECRET, mid))
        self.assertEqual(r.status, 200)
        self.assertEqual(self.db.scalar("SELECT status FROM messages WHERE id = %s" % mid), "sent",
                         "type 8 (at the SMSC) is not final")
        r = self.r.get("/sms/kannel/dlr?secret=%s&id=%s&type=16&answer=NACK%%2F0x0b" % (SECRET, mid))
        self.assertEqual(r.status, 200)
        row = self.db.query("SELECT status, last_error FROM messages WHERE id = %s" % mid)[0]
        self.assertEqual(row[0], "failed", "type 16 (SMSC rejected) fails the message")
        self.assertIn("NACK/0x0b", row[1])
        r = self.r.get("/sms/kannel/dlr?secret=%s&id=abc&type=1" % SECRET)
        self.assertEqual(r.status, 400, "a non-numeric id: %r" % r)

    def test_post_mo_with_text_in_the_body(self):
        phone = "+923001110011"
        r = self.r.post("/sms/kannel/mo?secret=%s&id=post-1" % SECRET,
                        body="پانی کی فراہمی تین دن سے بند ہے".encode("utf-8"),
                        headers={"X-Kannel-From": phone, "X-Kannel-To": "8080",
                                 "Content-Type": "text/plain; charset=utf-8"})
        self.assertEqual(r.status, 200, "POST MO accepted: %r" % r)
        row = self.db.query("SELECT c.language, c.text FROM cases c JOIN citizens z ON"
                            " z.id = c.citizen_id WHERE z.phone = '%s'" % phone)
        self.assertEqual(row, [["ur", "پانی کی فراہمی تین دن سے بند ہے"]])
        self.reply_to(phone, r"آپ کی شکایت درج ہو گئی ہے", "the Urdu reply to a POSTed SMS")

    # bad input ----------------------------------------------------------------------------
    def test_bad_input_is_refused_and_stores_nothing(self):
        before = self.db.scalar("SELECT count(*) FROM sms_mo")
        base = {"from": "+923001110008", "to": "8080", "id": "bad-1"}
        r = self.mo_http(text="hello", **base)
        self.assertEqual(r.status, 403, "no secret: %r" % r)
        r = self.mo_http(secret="wrong-secret", text="hello", **base)
        self.assertEqual(r.status, 403, "wrong secret: %r" % r)
        r = self.mo_http(secret=SECRET, text="", **base)
        self.assertEqual(r.status, 400, "empty text: %r" % r)
        r = self.mo_http(secret=SECRET, text="x" * 2000, **base)
        self.assertEqual(r.status, 400, "2000 characters: %r" % r)
        r = self.r.get("/sms/kannel/mo?secret=%s&from=%%2B923001110008&id=bad-2&text=%%FF%%FEab"
                       % SECRET)
        self.assertEqual(r.status, 400, "invalid UTF-8: %r" % r)
        q = dict(base, secret=SECRET, text="hello")
        q["from"] = "VODAFONE"
        r = self.mo_http(**q)
        self.assertEqual(r.status, 400, "non-phone sender: %r" % r)
        q = dict(base, secret=SECRET, text="hello")
        del q["id"]
        r = self.mo_http(**q)
        self.assertEqual(r.status, 400, "missing id: %r" % r)
        self.assertEqual(self.db.scalar("SELECT count(*) FROM sms_mo"), before,
                         "nothing was recorded")


class SmsGatewayTest(rbtest.TestCase):
    """Kannel down at first (messages wait and retry), then up; the per-gateway rate."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not kannel.available():
            raise unittest.SkipTest("Kannel (bearerbox, smsbox) is not installed")
        cls.db = cls.class_pg()
        port = rbtest.free_port()
        mo = ("http://127.0.0.1:%d/sms/kannel/mo?secret=%s&from=%%p&to=%%P&text=%%a&id=%%I"
              % (port, SECRET))
        cls.k = kannel.Kannel(cls.class_tmp(), mo)
        cfg = rbtest.default_config(port, cls.class_tmp() + "/state", cls.db.url())
        cfg["jobs"] = {"backoff_base": "1s", "backoff_max": "2s"}
        cfg["plugins"].append({"name": "sms_kannel", "config": {
            "secret": SECRET, "sendsms_url": cls.k.sendsms_url,
            "username": kannel.SEND_USER, "password": kannel.SEND_PASSWORD,
            "dlr_base_url": "http://127.0.0.1:%d" % port, "rate": 2, "burst": 1,
            "timeout": "3s"}})
        # rabtad starts although Kannel is not running
        cls.r = cls.class_rabtad(pg=cls.db, port=port, config=cfg)

    @classmethod
    def tearDownClass(cls):
        k = getattr(cls, "k", None)
        if k:
            k.stop()
        r = getattr(cls, "r", None)
        code = r.stop() if r else 0
        super().tearDownClass()
        if code != 0:
            raise AssertionError("rabtad exited with %r after SIGTERM" % code)

    def ensure_kannel(self):
        if not self.k.bb:
            self.k.start()

    def help_sms(self, phone, mo_id):
        q = {"secret": SECRET, "from": phone, "to": "8080", "text": "HELP", "id": mo_id}
        r = self.r.get("/sms/kannel/mo?" + urllib.parse.urlencode(q))
        self.assertEqual(r.status, 200, "HELP accepted: %r" % r)

    def test_a_kannel_down_message_waits_and_retries_then_goes_out(self):
        phone = "+923002220001"
        self.help_sms(phone, "down-1")
        rbtest.wait_until(lambda: int(self.db.scalar(
            "SELECT attempts FROM jobs WHERE kind = 'message.send' AND payload->>'message_id' ="
            " (SELECT id::text FROM messages WHERE to_address = '%s')" % phone) or "0") >= 2,
            15.0, what="the send to be retried while Kannel is down")
        self.assertEqual(self.db.scalar("SELECT status FROM messages WHERE to_address = '%s'"
                                        % phone), "queued", "still queued while Kannel is down")
        err = self.db.scalar("SELECT last_error FROM jobs WHERE payload->>'message_id' ="
                             " (SELECT id::text FROM messages WHERE to_address = '%s')" % phone)
        self.assertIn("Kannel", err or "", "the job says why: %r" % err)
        self.ensure_kannel()
        self.k.smsc.wait_mt(lambda m: m[1] == phone and "STATUS" in m[2], 20.0,
                            "the HELP answer once Kannel is up")
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT status FROM messages WHERE to_address = '%s'" % phone) in ("sent", "delivered"),
            10.0, what="the message to be marked sent")

    def test_b_rate_limit_spaces_the_sends(self):
        self.ensure_kannel()
        phones = ["+92300333000%d" % i for i in range(5)]
        t0 = time.monotonic()
        for i, p in enumerate(phones):
            self.help_sms(p, "rate-%d" % i)
        for p in phones:
            self.k.smsc.wait_mt(lambda m, p=p: m[1] == p, 30.0, "the answer to %s" % p)
        took = time.monotonic() - t0
        # 5 messages at 2/s with a bucket of 1: at least 2 s between the first and the last
        self.assertGreaterEqual(took, 1.9, "5 sends at 2 a second took only %.2f s" % took)


if __name__ == "__main__":
    rbtest.main()
