"""SMS channel through a real Kannel (bearerbox + smsbox) and a fake SMSC peer.

A citizen's SMS enters at the fake SMSC, Kannel hands it to rabtad's sms_kannel plugin
(/sms/kannel/mo), the answer goes back through sendsms to the fake SMSC, and Kannel's
delivery report comes back to /sms/kannel/dlr."""

import concurrent.futures
import os
import re
import subprocess
import time
import urllib.parse

import kannel
import rbtest

SECRET = "kannel-test-secret"
URDU_COMPLAINT = "ہسپتال میں ڈاکٹر موجود نہیں تھا اور دوائی بھی نہیں ملی"
EN_COMPLAINT = "The police station refused to register my FIR about a stolen motorcycle"
FLOOD_MAX = 8
URDU_ONE, URDU_TWO, ARABIC_ONE = "\u06f1", "\u06f2", "\u0661"
STAFF_PASSWORD = "s3cret-pass-word"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def case_event(db, tracking, event, to_status=None):
    """A case event as the staff API writes it (status change + event in one statement);
    the case_event_jobs trigger queues its jobs. Returns the event id."""
    return db.scalar(
        "WITH c AS (SELECT id, status FROM cases WHERE tracking_no = '%s' FOR UPDATE),"
        " u AS (UPDATE cases SET status = coalesce(%s, cases.status), updated_at = now()"
        "       FROM c WHERE cases.id = c.id RETURNING cases.id, c.status AS from_status,"
        "       cases.status AS to_status)"
        " INSERT INTO case_events (case_id, actor_type, actor_id, event, from_status, to_status)"
        " SELECT id, 'staff', 'test', '%s', from_status, to_status FROM u RETURNING id"
        % (tracking, "'%s'" % to_status if to_status else "NULL", event))


class KannelCase(rbtest.TestCase):
    """A PostgreSQL, a Kannel (bearerbox + smsbox + fake SMSC) and rabtad with sms_kannel.
    Subclasses set PLUGIN (extra sms_kannel settings), CONFIG (extra rabta.yaml sections) and
    KANNEL_AT_START (False: rabtad starts while Kannel is down)."""
    PLUGIN = {}
    CONFIG = {}
    KANNEL_AT_START = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        kannel.require()
        cls.db = cls.class_pg()
        port = rbtest.free_port()
        mo = ("http://127.0.0.1:%d/sms/kannel/mo?secret=%s&from=%%p&to=%%P&text=%%a&id=%%I"
              % (port, SECRET))
        cls.k = kannel.Kannel(cls.class_tmp(), mo)
        cfg = rbtest.default_config(port, cls.class_tmp() + "/state", cls.db.url())
        cfg.update(cls.config())
        plugin = {"secret": SECRET, "sendsms_url": cls.k.sendsms_url,
                  "username": kannel.SEND_USER, "password": kannel.SEND_PASSWORD,
                  "dlr_base_url": "http://127.0.0.1:%d" % port}
        plugin.update(cls.PLUGIN)
        cfg["plugins"].append({"name": "sms_kannel", "config": plugin})
        cls.r = cls.class_rabtad(pg=cls.db, port=port, config=cfg)
        if not cls.KANNEL_AT_START:
            return
        try:
            cls.k.start()
        except BaseException:
            rbtest.log(cls.k.log_tail())
            cls.k.stop()
            cls.tearDownClass()
            raise

    @classmethod
    def config(cls):
        return dict(cls.CONFIG)

    def sends_settled(self, phone, due_only=False):
        """Waits until no send job for a message to phone is left to run (with due_only:
        none due now), then until Kannel has delivered all it was handed (Kannel.barrier):
        after this, an SMS to phone that has not reached the fake SMSC is not coming."""
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT count(*) FROM jobs j JOIN messages m ON m.id = (j.payload->>'message_id')"
            "::bigint WHERE j.kind LIKE 'message.send%%' AND m.to_address = '%s'"
            " AND j.state IN ('queued', 'running', 'failed')%s"
            % (phone, " AND j.run_at <= now()" if due_only else "")) == "0", 15.0,
            what="the send jobs of messages to %s to finish" % phone)
        self.k.barrier()

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


class SmsTest(KannelCase):
    PLUGIN = {"sender": "8080", "rate": 50, "burst": 50, "flood_max": FLOOD_MAX,
              "flood_window": "1h"}
    # The sample SLA (days-long deadlines): the clock pauses and resumes around a question.
    CONFIG = {"sla": os.path.join(rbtest.SOURCE_DIR, "config", "sla.yaml")}

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
        # the status in words (template status.routed of lua/templates.lua)
        got = self.reply_to(phone, r"is sent to the department\.", "the status reply")
        self.assertIn(t, got)
        # Urdu keyword with Urdu digits where the number has digits
        urdu_t = t.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
        self.k.smsc.send_mo(phone, "8080", "حالت %s" % urdu_t)
        got = self.reply_to(phone, r"کی حالت: متعلقہ محکمے کو بھیج دی گئی", "the Urdu status reply")
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
        # Stored with its case, before the 200: the SMS once, where it came from in the case's
        # submitted event (no sms_mo row: that table keeps the texts that made no case).
        self.assertEqual(self.db.query(
            "SELECT r.phone, r.to_number, r.command, r.text IS NULL, c.text FROM sms_received r"
            " JOIN cases c ON c.id = r.case_id WHERE r.kannel_id = 'dup-0001'"),
            [["+923001110006", "8080", "complaint", "t",
              "Water supply cut for three days in G block"]], "one SMS received for the id")
        self.assertEqual(self.db.scalar("SELECT count(*) FROM sms_mo WHERE kannel_id = 'dup-0001'"),
                         "0")

    def test_a_complaints_origin_and_reply_are_stored_with_it_in_one_transaction(self):
        phone = "+923001110031"
        q = dict(secret=SECRET, to="8080", text="Sewage overflowing in street 12 since Monday",
                 id="extras-0001")
        q["from"] = phone
        r = self.mo_http(**q)
        self.assertEqual(r.status, 200, r)
        # The 200 comes after COMMIT: everything is there at once, no waiting.
        rows = self.db.query(
            "SELECT c.tracking_no, e.data->'origin'->>'kannel_id', e.data->'origin'->>'from',"
            "  e.data->'origin'->>'to', e.data->>'channel', m.channel, m.to_address, m.template,"
            "  position(c.tracking_no IN m.body) > 0, m.notice,"
            "  c.created_at = e.at AND e.at = m.created_at AND m.created_at = k.created_at,"
            "  e.xmin::text = k.xmin::text"
            " FROM cases c JOIN case_events e ON e.case_id = c.id AND e.event = 'submitted'"
            " JOIN messages m ON m.case_id = c.id"
            " JOIN idempotency_keys k ON k.case_id = c.id"
            " WHERE k.scope = 'sms_kannel' AND k.key = 'extras-0001'")
        self.assertEqual(len(rows), 1, "one case, one submitted event, one message: %r" % rows)
        (t, kid, frm, to, channel, mchannel, mto, template, has_tracking, notice, same_now,
         same_xid) = rows[0]
        self.assertEqual((kid, frm, to, channel), ("extras-0001", phone, "8080", "sms"),
                         "the origin is kept in the submitted event")
        self.assertEqual((mchannel, mto, template, has_tracking, notice),
                         ("sms", phone, "sms.received", "t", "f"),
                         "the reply with the tracking number, and no registered notice")
        self.assertEqual(same_now, "t", "case, event, reply and key share their transaction's"
                                        " now()")
        self.assertEqual(same_xid, "t", "the event and the key were written by one transaction")
        # Its message.send job was committed with it: the reply reaches the SMSC.
        self.reply_to(phone, re.escape(t), "the reply with the tracking number at the SMSC")

    # STOP ---------------------------------------------------------------------------------
    def test_stop_then_a_notice_is_not_sent(self):
        phone = "+923001110007"
        self.k.smsc.send_mo(phone, "8080", "STOP")
        self.reply_to(phone, r"no more notices", "the STOP confirmation (a direct answer)")
        self.assertIsNotNone(self.db.scalar(
            "SELECT opted_out_at FROM citizens WHERE phone = '%s'" % phone))
        mid = self.db.scalar(
            "SELECT message_id FROM rabta_message_queue(ARRAY['sms'], ARRAY['%s'],"
            " ARRAY['Notice: your case was resolved'], notice => ARRAY[true])" % phone)
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT status FROM messages WHERE id = %s" % mid) == "failed", 15.0,
            what="the notice to be refused")
        self.assertIn("opted out", self.db.scalar("SELECT last_error FROM messages WHERE id = %s"
                                                  % mid))
        self.sends_settled(phone)
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
        before = self.db.scalar("SELECT count(*) FROM sms_received")
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
        for bad_id, what in (("%FF%FE", "invalid UTF-8"), ("a%0Ab", "a line break"),
                             ("x" * 101, "101 bytes")):
            r = self.r.get("/sms/kannel/mo?secret=%s&from=%%2B923001110008&id=%s&text=hello"
                           % (SECRET, bad_id))
            self.assertEqual(r.status, 400, "an id with %s: %r" % (what, r))
        self.assertEqual(self.db.scalar("SELECT count(*) FROM sms_received"), before,
                         "nothing was recorded")

    def test_bad_receiving_number_is_left_out_and_the_sms_kept(self):
        phone = "+923001110018"
        for i, to in enumerate(("%FF%FE", "80%0A80", "8" * 33)):
            r = self.r.get("/sms/kannel/mo?secret=%s&from=%s&to=%s&id=bad-to-%d&text="
                           "Open%%20manhole%%20on%%20Jail%%20Road%%20number%%20%d"
                           % (SECRET, urllib.parse.quote(phone), to, i, i))
            self.assertEqual(r.status, 200, "the SMS is stored (to %r): %r" % (to, r))
        self.assertEqual(self.db.query(
            "SELECT kannel_id, coalesce(to_number, '(none)'), command FROM sms_received"
            " WHERE phone = '%s' ORDER BY kannel_id" % phone),
            [["bad-to-%d" % i, "(none)", "complaint"] for i in range(3)])
        self.assertEqual(self.cases_of(phone), "3")

    # notices on case events ---------------------------------------------------------------
    def notice_to(self, phone, pattern, what):
        return self.reply_to(phone, pattern, what)

    def notices_of(self, event_id):
        """Once the event's notice jobs have run: how many messages it has."""
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT count(*) FROM jobs WHERE kind = 'notice' AND payload->>'event_id' = '%s'"
            % event_id) == "0", 10.0, what="the notice jobs of event %s to finish" % event_id)
        return self.db.scalar("SELECT count(*) FROM messages WHERE event_id = %s" % event_id)

    def test_notices_per_event_reach_the_smsc_in_english_and_urdu(self):
        en, ur = "+923001120001", "+923001120002"
        t_en = self.tracking_in(self.complain(en, "Sewerage overflowing near the school gate",
                                              "the English reply"))
        t_ur = self.tracking_in(self.complain(ur, URDU_COMPLAINT, "the Urdu reply"))
        # The case came by SMS: its reply carried the tracking number, so 'routed' (written by
        # intake) gives no notice.
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT count(*) FROM jobs WHERE kind = 'notice' AND payload->>'case_id' IN"
            " (SELECT id::text FROM cases WHERE tracking_no IN ('%s', '%s'))"
            % (t_en, t_ur)) == "0", 10.0, what="the routed notice jobs to run")
        self.assertEqual(self.db.scalar(
            "SELECT count(*) FROM messages WHERE template = 'notice.routed' AND to_address IN"
            " ('%s', '%s')" % (en, ur)), "0", "no 'registered' notice for an SMS case")
        steps = [("acknowledge", "acknowledged", r"has received your complaint",
                  r"کو آپ کی شکایت .* موصول ہو گئی ہے"),
                 ("transfer", "transferred", r"has been transferred to", r"منتقل کر دی گئی ہے"),
                 ("resolve", "resolved", r"is resolved\. .*Reply 1 satisfied, 2 unsatisfied",
                  r"حل کر دی گئی ہے۔ .*۱ مطمئن، ۲ غیر مطمئن")]
        for event, status, rx_en, rx_ur in steps:
            case_event(self.db, t_en, event, status)
            case_event(self.db, t_ur, event, status)
            got = self.notice_to(en, rx_en, "the English %s notice" % event)
            self.assertIn(t_en, got)
            got = self.notice_to(ur, rx_ur, "the Urdu %s notice" % event)
            self.assertIn(t_ur, got, "the tracking number in the Urdu notice")
            self.assertNotIn("?", got, "Urdu intact")
        # information request answered
        case_event(self.db, t_en, "answer", None)
        self.notice_to(en, r"has been answered by", "the 'answered' notice")
        rows = self.db.query("SELECT template, language, notice, urgent FROM messages"
                             " WHERE to_address = '%s' AND template LIKE 'notice.%%'"
                             " ORDER BY id" % ur)
        self.assertEqual(rows, [["notice.acknowledge", "ur", "t", "f"],
                                ["notice.transfer", "ur", "t", "f"],
                                ["notice.resolve", "ur", "t", "f"]])

    def test_registered_notice_for_a_case_from_another_channel(self):
        # A citizen signed in to the app (code by SMS) submits a case: intake stores the
        # "registered" notice with the case (migration 0019), once, tied to the routed event.
        phone = "+923001120003"
        self.assertEqual(self.r.post("/api/v1/register", {"phone": phone, "language": "en"})
                         .status, 202)
        body = self.db.scalar("SELECT body FROM messages WHERE to_address = '%s' AND"
                              " template = 'otp' ORDER BY id DESC LIMIT 1" % phone)
        code = re.search(r"\b(\d{6})\b", body).group(1)
        v = self.r.post("/api/v1/verify", {"phone": phone, "code": code})
        self.assertEqual(v.status, 200, v)
        c = self.r.post("/api/v1/cases", {"kind": "complaint", "service": "fir_registration",
                                          "district": "lahore", "language": "en",
                                          "text": "The police station refused my report"},
                        headers={"Authorization": "Bearer " + v.json["token"]})
        self.assertEqual(c.status, 201, c)
        t = c.json["tracking_no"]
        got = self.notice_to(phone, r"registered with tracking number " + t,
                             "the 'registered' notice of an app case")
        self.assertIn("sent to", got)
        rows = self.db.query("SELECT m.template, m.notice, m.urgent, m.event_id = e.id"
                             " FROM messages m JOIN cases c ON c.id = m.case_id"
                             " JOIN case_events e ON e.case_id = c.id AND e.event = 'routed'"
                             " WHERE c.tracking_no = '%s'" % t)
        self.assertEqual(rows, [["notice.routed", "t", "f", "t"]])
        self.assertEqual(self.db.scalar("SELECT count(*) FROM jobs WHERE kind = 'notice'"
                                        " AND payload->>'event' = 'routed'"), "0")

    def test_one_notice_per_event_even_if_the_job_runs_again(self):
        phone = "+923001120004"
        t = self.tracking_in(self.complain(phone, "Electricity pole fallen on the road",
                                           "the reply"))
        ev = case_event(self.db, t, "acknowledge", "acknowledged")
        self.notice_to(phone, r"has received your complaint", "the first notice")
        # The same job again (a retry after a crash): no second message.
        self.db.scalar("INSERT INTO jobs (kind, payload) SELECT 'notice', jsonb_build_object("
                       "'case_id', case_id, 'event_id', id, 'event', event) FROM case_events"
                       " WHERE id = %s RETURNING id" % ev)
        self.assertEqual(self.notices_of(ev), "1", "one message for the event")
        self.sends_settled(phone)
        self.assertEqual(len([m for m in self.k.smsc.messages_to(phone)
                              if "has received" in m[2]]), 1, "the SMSC got it once")

    def test_stop_then_a_case_notice_is_not_queued_and_start_resumes(self):
        phone = "+923001120005"
        t = self.tracking_in(self.complain(phone, "Illegal parking blocks the ambulance road",
                                           "the reply"))
        self.k.smsc.send_mo(phone, "8080", "stop")
        self.reply_to(phone, r"no more notices", "the STOP confirmation")
        ev = case_event(self.db, t, "acknowledge", "acknowledged")
        self.assertEqual(self.notices_of(ev), "0", "no notice written for a citizen who sent STOP")
        self.sends_settled(phone)
        self.assertFalse([m for m in self.k.smsc.messages_to(phone) if "has received" in m[2]])
        self.k.smsc.send_mo(phone, "8080", "START")
        self.reply_to(phone, r"notices are on again", "the START confirmation")
        case_event(self.db, t, "transfer", "transferred")
        self.notice_to(phone, r"has been transferred", "a notice after START")

    def test_urdu_stop_and_start(self):
        phone = "+923001120006"
        self.k.smsc.send_mo(phone, "8080", "بند")
        self.reply_to(phone, r"مزید اطلاعات نہیں بھیجی جائیں گی", "the Urdu STOP confirmation")
        self.assertIsNotNone(self.db.scalar(
            "SELECT opted_out_at FROM citizens WHERE phone = '%s'" % phone))
        self.assertEqual(self.db.scalar("SELECT command FROM sms_mo WHERE phone = '%s'" % phone),
                         "stop")
        self.k.smsc.send_mo(phone, "8080", " شروع ")
        self.reply_to(phone, r"اطلاعات دوبارہ شروع", "the Urdu START confirmation")
        self.assertEqual(self.db.scalar(
            "SELECT opted_out_at IS NULL FROM citizens WHERE phone = '%s'" % phone), "t")

    # "reply 1 satisfied / 2 unsatisfied" --------------------------------------------------
    def resolved_case(self, phone, text):
        t = self.tracking_in(self.complain(phone, text, "the reply"))
        case_event(self.db, t, "resolve", "resolved")
        self.notice_to(phone, r"is resolved", "the resolve notice asking for a rating")
        return t

    def test_rating_reply_1_in_urdu_digits_closes_the_case(self):
        phone = "+923001120007"
        t = self.resolved_case(phone, "Road repair left half done near the mosque")
        self.k.smsc.send_mo(phone, "8080", URDU_ONE)
        self.reply_to(phone, r"thank you\. Complaint %s is closed" % t, "the thanks")
        row = self.db.query("SELECT status, rating FROM cases WHERE tracking_no = '%s'" % t)[0]
        self.assertEqual(row, ["closed", "5"])
        self.assertEqual(self.db.scalar(
            "SELECT count(*) FROM case_events e JOIN cases c ON c.id = e.case_id"
            " WHERE c.tracking_no = '%s' AND e.event = 'rated' AND e.actor_type = 'citizen'"
            % t), "1")
        self.assertEqual(self.db.scalar("SELECT command FROM sms_mo WHERE phone = '%s'"
                                        " ORDER BY id DESC LIMIT 1" % phone), "rating")

    def test_rating_reply_2_reopens_and_requests_escalation(self):
        phone = "+923001120008"
        t = self.resolved_case(phone, "Water tanker mafia charging triple in our sector")
        self.k.smsc.send_mo(phone, "8080", "2")
        self.reply_to(phone, r"reopened and sent to a senior officer", "the sorry reply")
        row = self.db.query("SELECT status, rating, escalation_level FROM cases"
                            " WHERE tracking_no = '%s'" % t)[0]
        self.assertEqual(row, ["reopened", "1", "1"])
        events = [r[0] for r in self.db.query(
            "SELECT e.event FROM case_events e JOIN cases c ON c.id = e.case_id"
            " WHERE c.tracking_no = '%s' ORDER BY e.id" % t)]
        self.assertIn("reopened", events)
        self.assertIn("escalation.requested", events)
        # the same digit again: nothing left to rate, so the help text, and no second rating
        self.k.smsc.send_mo(phone, "8080", ARABIC_ONE)
        self.reply_to(phone, r"شکایت درج کرنے کے لیے اپنی شکایت لکھ کر بھیجیں",
                      "help (in Urdu, for an Arabic digit) when nothing is left to rate")
        self.assertEqual(self.db.scalar("SELECT status FROM cases WHERE tracking_no = '%s'" % t),
                         "reopened")

    def test_rating_reply_retried_by_kannel_rates_once(self):
        phone = "+923001120009"
        t = self.resolved_case(phone, "Streetlight pole sparking dangerously at night")
        q = {"secret": SECRET, "from": phone, "to": "8080", "text": "1", "id": "rate-dup-1"}
        self.assertEqual(self.mo_http(**q).status, 200)
        self.assertEqual(self.mo_http(**q).status, 200)
        self.assertEqual(self.db.scalar(
            "SELECT count(*) FROM case_events e JOIN cases c ON c.id = e.case_id"
            " WHERE c.tracking_no = '%s' AND e.event = 'rated'" % t), "1")
        self.assertEqual(self.db.scalar("SELECT count(*) FROM messages WHERE to_address = '%s'"
                                        " AND template = 'sms.rated'" % phone), "1")

    # answers to an officer's question -------------------------------------------------------
    def staff_headers(self):
        """An administrator of the staff API (added once per class with the CLI)."""
        cls = type(self)
        if not getattr(cls, "staff_token", None):
            r = subprocess.run([rbtest.RABTAD, "staff", "-c", self.r.config_path, "add", "adm",
                                "--role", "admin", "--name", "Admin"],
                               input=STAFF_PASSWORD + "\n", stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
            self.assertEqual(r.returncode, 0, "staff add: %s" % r.stderr)
            r = self.r.post("/api/v1/staff/login", {"username": "adm",
                                                    "password": STAFF_PASSWORD})
            self.assertEqual(r.status, 200, r)
            cls.staff_token = r.json["token"]
        return {"Authorization": "Bearer " + cls.staff_token}

    def staff_act(self, t, action, body):
        r = self.r.post("/api/v1/staff/cases/%s/%s" % (t, action), body,
                        headers=self.staff_headers())
        self.assertEqual(r.status, 200, "staff %s on %s: %r" % (action, t, r))

    def awaiting_case(self, phone, text, question, t=None):
        """A complaint by SMS from phone (or case t) that an officer asked a question about
        through the staff API; returns its tracking number once the fake SMSC got the
        question."""
        if t is None:
            t = self.tracking_in(self.complain(phone, text, "the reply to the complaint"))
        self.staff_act(t, "acknowledge", {})
        self.staff_act(t, "ask", {"question": question})
        self.reply_to(phone, re.escape(question), "the officer's question")
        self.assertEqual(self.db.scalar("SELECT status FROM cases WHERE tracking_no = '%s'" % t),
                         "awaiting_citizen")
        return t

    def events_of(self, t):
        return self.db.query("SELECT e.event, e.actor_type, coalesce(e.note, ''),"
                             " coalesce(e.from_status, ''), coalesce(e.to_status, '')"
                             " FROM case_events e JOIN cases c ON c.id = e.case_id"
                             " WHERE c.tracking_no = '%s' ORDER BY e.id" % t)

    def cases_of(self, phone):
        return self.db.scalar("SELECT count(*) FROM cases c JOIN citizens z"
                              " ON z.id = c.citizen_id WHERE z.phone = '%s'" % phone)

    def test_sms_answer_to_an_officers_question_goes_to_the_case_in_urdu(self):
        phone = "+923001140001"
        t = self.awaiting_case(phone, URDU_COMPLAINT, "Which hospital was it, and on what day?")
        answer = "ضلعی ہسپتال، پیر کے دن صبح دس بجے"
        self.k.smsc.send_mo(phone, "8080", answer)
        body = self.reply_to(phone, "جواب شکایت %s" % re.escape(t),
                             "the Urdu confirmation naming the case")
        self.assertIn("آپ کا جواب شکایت %s میں شامل کر دیا گیا ہے" % t, body,
                      "an Urdu confirmation for an Urdu answer, intact")
        self.assertNotIn("?", body)
        self.assertEqual(self.db.scalar("SELECT status FROM cases WHERE tracking_no = '%s'" % t),
                         "in_progress")
        ev = self.events_of(t)
        self.assertIn(["comment", "citizen", answer, "", ""], ev, "the answer in the timeline")
        self.assertIn(["citizen_reply", "citizen", "", "awaiting_citizen", "in_progress"], ev)
        self.assertEqual(self.cases_of(phone), "1", "no new case for the answer")
        # The citizen's own timeline (the app's view) shows it as well.
        self.assertEqual(self.db.scalar(
            "SELECT data->>'channel' FROM case_events e JOIN cases c ON c.id = e.case_id"
            " WHERE c.tracking_no = '%s' AND e.event = 'comment'" % t), "sms")
        # The SLA clock resumes as with the app (migration 0006's trigger, whatever the path):
        # the pause ends and the engine records sla.resumed, once, with the time it waited.
        self.assertEqual(self.db.scalar("SELECT paused_at IS NULL FROM cases"
                                        " WHERE tracking_no = '%s'" % t), "t", "the pause ended")
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT count(*) FROM case_events e JOIN cases c ON c.id = e.case_id"
            " WHERE c.tracking_no = '%s' AND e.event = 'sla.resumed'"
            " AND (e.data->>'paused_seconds')::int >= 0" % t) == "1", 10.0,
            what="the sla.resumed event after the answer")
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT count(*) FROM sms_mo m JOIN cases c ON c.id = m.case_id"
            " WHERE c.tracking_no = '%s' AND m.command = 'reply' AND m.text IS NULL" % t)
            == "1", 5.0, what="the MO indexed as a reply to the case (its text in the case)")

    def awaiting_answer(self, phone, complaint, question, answer, mo_id):
        """awaiting_case, and the MO request (for mo_http) that answers it."""
        t = self.awaiting_case(phone, complaint, question)
        return t, {"secret": SECRET, "from": phone, "to": "8080", "text": answer, "id": mo_id}

    def test_retried_answer_attaches_once(self):
        phone = "+923001140002"
        t, q = self.awaiting_answer(phone, "Garbage not collected in Block C for two weeks",
                                    "Which street in Block C?", "Street 7, near the park",
                                    "reply-dup-1")
        r1, r2 = self.mo_http(**q), self.mo_http(**q)
        self.assertEqual((r1.status, r2.status), (200, 200), "both 2xx: %r %r" % (r1, r2))
        self.assertEqual(self.cases_of(phone), "1", "no new case")
        ev = [e[0] for e in self.events_of(t)]
        self.assertEqual((ev.count("comment"), ev.count("citizen_reply")), (1, 1),
                         "one answer for one Kannel id: %r" % ev)
        self.assertEqual(self.db.scalar("SELECT count(*) FROM messages WHERE to_address = '%s'"
                                        " AND template = 'sms.replied'" % phone), "1",
                         "one confirmation")
        self.reply_to(phone, r"Your answer was added to complaint %s" % re.escape(t),
                      "the English confirmation")
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT count(*) FROM sms_mo WHERE kannel_id = 'reply-dup-1'") == "1", 5.0,
            what="one sms_mo row")
        # Once more after all of it: still nothing new.
        self.assertEqual(self.mo_http(**q).status, 200)
        self.assertEqual([e[0] for e in self.events_of(t)].count("comment"), 1)

    def test_answer_retried_while_the_first_try_is_in_flight_attaches_once(self):
        phone = "+923001140008"
        t, q = self.awaiting_answer(phone, "Illegal parking blocks the hospital ambulance gate",
                                    "Which gate of the hospital?", "The emergency gate",
                                    "reply-race-1")
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            codes = sorted(f.result().status for f in [ex.submit(self.mo_http, **q)
                                                       for _ in range(4)])
        self.assertEqual(codes, [200] * 4, "every try answered 2xx")
        ev = [e[0] for e in self.events_of(t)]
        self.assertEqual((ev.count("comment"), ev.count("citizen_reply")), (1, 1), ev)
        self.assertEqual(self.db.scalar("SELECT count(*) FROM messages WHERE to_address = '%s'"
                                        " AND template = 'sms.replied'" % phone), "1")
        self.assertEqual(self.cases_of(phone), "1")

    def test_free_text_without_an_awaiting_case_is_still_a_complaint(self):
        phone = "+923001140003"
        t = self.tracking_in(self.complain(phone, "Broken water pipe flooding the main road",
                                           "the first reply"))
        self.staff_act(t, "acknowledge", {})  # with a department, not waiting for the citizen
        self.k.smsc.send_mo(phone, "8080", "Also the streetlights on the main road are off")
        rbtest.wait_until(lambda: self.cases_of(phone) == "2", 10.0, what="a new complaint")
        t2 = self.db.scalar("SELECT c.tracking_no FROM cases c JOIN citizens z"
                            " ON z.id = c.citizen_id WHERE z.phone = '%s'"
                            " ORDER BY c.id DESC LIMIT 1" % phone)
        self.reply_to(phone, r"your complaint is registered\. Tracking number: %s"
                      % re.escape(t2), "the second complaint's reply")
        self.assertNotIn("comment", [e[0] for e in self.events_of(t)])

    def test_several_awaiting_the_most_recently_asked_or_the_one_named(self):
        phone = "+923001140004"
        # Both complaints first: once one awaits an answer, free text is that answer.
        t1 = self.tracking_in(self.complain(phone, "Electricity meter reading doubled",
                                            "the first reply"))
        self.k.smsc.send_mo(phone, "8080", "School teacher absent for a week in our village")
        rbtest.wait_until(lambda: self.cases_of(phone) == "2", 10.0, what="the second case")
        t2 = self.db.scalar("SELECT c.tracking_no FROM cases c JOIN citizens z"
                            " ON z.id = c.citizen_id WHERE z.phone = '%s'"
                            " ORDER BY c.id DESC LIMIT 1" % phone)
        self.awaiting_case(phone, None, "What is your reference number?", t=t1)
        self.awaiting_case(phone, None, "Which school is it?", t=t2)
        self.k.smsc.send_mo(phone, "8080", "Government Primary School No. 2")
        self.reply_to(phone, r"added to complaint %s" % re.escape(t2), "the answer to t2")
        self.assertEqual(self.db.scalar("SELECT status FROM cases WHERE tracking_no = '%s'"
                                        % t1), "awaiting_citizen")
        # t2 no longer waits; t1 named explicitly (lower case, no dashes) gets the next one.
        self.k.smsc.send_mo(phone, "8080", "%s: 04 12345 6789012"
                            % t1.replace("-", "").lower())
        self.reply_to(phone, r"added to complaint %s" % re.escape(t1), "the answer to t1")
        self.assertIn(["comment", "citizen", "04 12345 6789012", "", ""], self.events_of(t1))
        self.assertEqual(self.cases_of(phone), "2")

    def test_commands_stay_commands_while_a_case_awaits(self):
        phone = "+923001140005"
        t = self.awaiting_case(phone, "Ration shop closed during working hours every day",
                               "Which ration shop?")
        self.k.smsc.send_mo(phone, "8080", "STATUS %s" % t)
        self.reply_to(phone, r"is waiting for your answer", "the STATUS answer")
        self.k.smsc.send_mo(phone, "8080", "help")
        self.reply_to(phone, r"to complain, send your complaint", "the help text")
        self.assertEqual(self.db.scalar("SELECT status FROM cases WHERE tracking_no = '%s'" % t),
                         "awaiting_citizen")
        self.assertNotIn("comment", [e[0] for e in self.events_of(t)])

    def test_someone_elses_or_a_mistyped_number_reveals_nothing_and_attaches_nothing(self):
        a, b = "+923001140006", "+923001140007"
        ta = self.awaiting_case(a, "Bus conductor overcharging students on route 12",
                                "What time was the bus?")
        tb = self.awaiting_case(b, "Park gate locked on Sundays by the chowkidar",
                                "Which park?")
        wrong = ta[:-1] + ("0" if ta[-1] != "0" else "1")  # the check symbol mistyped
        bodies = []
        for n, (named, what) in enumerate(((tb, "someone else's number"),
                                           (wrong, "a mistyped number"))):
            q = {"secret": SECRET, "from": a, "to": "8080", "id": "reply-other-%d" % n,
                 "text": "%s it was at 8 in the morning" % named}
            self.assertEqual(self.mo_http(**q).status, 200, what)
            body = self.reply_to(a, r"no complaint %s of yours is waiting" % re.escape(named),
                                 "the answer to " + what)
            self.assertNotIn("Park", body)
            self.assertNotIn("waiting for your answer", body)
            bodies.append(body.replace(named, "X"))
        self.assertEqual(bodies[0], bodies[1],
                         "the same answer whether the number is someone else's or mistyped")
        for t in (ta, tb):
            self.assertEqual(self.db.scalar("SELECT status FROM cases WHERE tracking_no = '%s'"
                                            % t), "awaiting_citizen")
            self.assertNotIn("comment", [e[0] for e in self.events_of(t)])
        self.assertEqual((self.cases_of(a), self.cases_of(b)), ("1", "1"), "no new case")
        self.assertEqual(self.db.scalar(
            "SELECT count(*) FROM sms_mo WHERE phone = '%s' AND command = 'reply'"
            " AND case_id IS NULL AND text LIKE '%%8 in the morning'" % a), "2",
            "both texts kept")

    # flood --------------------------------------------------------------------------------
    def test_flood_from_one_number_gets_one_polite_reply_and_no_cases(self):
        phone = "+923001130001"
        for i in range(FLOOD_MAX + 4):
            q = {"secret": SECRET, "from": phone, "to": "8080", "id": "flood-%d" % i,
                 "text": "complaint number %d about the same broken drain" % i}
            r = self.mo_http(**q)
            self.assertEqual(r.status, 200, "text %d accepted (stored): %r" % (i, r))
        cases = self.db.scalar("SELECT count(*) FROM cases c JOIN citizens z ON"
                               " z.id = c.citizen_id WHERE z.phone = '%s'" % phone)
        self.assertEqual(cases, str(FLOOD_MAX), "only the texts within the limit made cases")
        rows = self.db.query("SELECT command, count(*), count(text) FROM sms_received"
                             " WHERE phone = '%s' GROUP BY command ORDER BY command" % phone)
        self.assertEqual(rows, [["complaint", str(FLOOD_MAX), "0"], ["flood", "4", "4"]],
                         "every text is stored; the flooded ones with their text")
        self.assertEqual(self.db.scalar("SELECT count(*) FROM messages WHERE to_address = '%s'"
                                        " AND template = 'sms.flood'" % phone), "1",
                         "one polite reply")
        self.reply_to(phone, r"many messages from this number", "the flood reply")
        # STOP still works past the limit
        q = {"secret": SECRET, "from": phone, "to": "8080", "id": "flood-stop", "text": "STOP"}
        self.assertEqual(self.mo_http(**q).status, 200)
        self.assertIsNotNone(self.db.scalar(
            "SELECT opted_out_at FROM citizens WHERE phone = '%s'" % phone))


class SmsQuietHoursTest(KannelCase):
    """Quiet hours around now: notices wait for their end; answers go at once."""

    @classmethod
    def config(cls):
        now = time.gmtime()
        start = (now.tm_hour * 60 + now.tm_min - 60) % 1440
        cls.end_min = (now.tm_hour * 60 + now.tm_min + 60) % 1440
        return {"messages": {"quiet_hours": "%02d:%02d-%02d:%02d" % (
            start // 60, start % 60, cls.end_min // 60, cls.end_min % 60), "timezone": "UTC"}}

    def assert_due_at_quiet_end(self, mid):
        """The message.send.sms job of message mid is due when the quiet hours end."""
        wait = float(self.db.scalar(
            "SELECT extract(epoch FROM run_at - now()) FROM jobs WHERE kind = 'message.send.sms'"
            " AND payload->>'message_id' = '%s'" % mid))
        end = time.gmtime()
        to_end = ((self.end_min - (end.tm_hour * 60 + end.tm_min)) % 1440) * 60 - end.tm_sec
        self.assertLess(abs(wait - to_end), 90, "due at the end of quiet hours: %.0f s vs %d s"
                        % (wait, to_end))

    def test_a_notice_waits_for_the_end_of_quiet_hours_and_a_reply_does_not(self):
        phone = "+923004440001"
        self.k.smsc.send_mo(phone, "8080", "Broken water main flooding the street")
        got = self.k.smsc.wait_mt(lambda m: m[1] == phone, 20.0, "the direct reply")[2]
        t = self.db.scalar("SELECT tracking_no FROM cases WHERE channel = 'sms'")
        self.assertIn(t, got, "the reply (urgent) went at once in quiet hours")
        ev = case_event(self.db, t, "acknowledge", "acknowledged")
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT count(*) FROM messages WHERE event_id = %s" % ev) == "1", 10.0,
            what="the notice to be queued")
        mid, status = self.db.query("SELECT id, status FROM messages WHERE event_id = %s"
                                    % ev)[0]
        self.assertEqual(status, "queued")
        # its job is due at the end of the window (about an hour from now), not now
        self.assert_due_at_quiet_end(mid)
        self.sends_settled(phone, due_only=True)
        self.assertEqual(len(self.k.smsc.messages_to(phone)), 1, "only the reply went out")

    def test_the_registered_notice_stored_by_intake_waits_too(self):
        c = self.r.post("/api/v1/cases", {"kind": "complaint", "service": "fir_registration",
                                          "district": "lahore", "language": "en",
                                          "anonymous": True, "text": "Noise at night"})
        self.assertEqual(c.status, 201, c)
        # an anonymous app case has no phone: no notice at all
        self.assertEqual(self.db.scalar(
            "SELECT count(*) FROM messages m JOIN cases c ON c.id = m.case_id"
            " WHERE c.tracking_no = '%s'" % c.json["tracking_no"]), "0")
        # a citizen's case by another channel (as the app would for a signed-in citizen)
        phone = "+923004440003"
        cid = self.db.scalar("INSERT INTO citizens (phone, language) VALUES ('%s', 'en')"
                             " RETURNING id" % phone)
        self.assertEqual(self.r.post("/api/v1/register", {"phone": phone}).status, 202)
        body = self.db.scalar("SELECT body FROM messages WHERE to_address = '%s' AND"
                              " template = 'otp'" % phone)
        v = self.r.post("/api/v1/verify", {"phone": phone,
                                           "code": re.search(r"\b(\d{6})\b", body).group(1)})
        self.assertEqual(v.status, 200, v)
        c = self.r.post("/api/v1/cases", {"kind": "complaint", "service": "fir_registration",
                                          "district": "lahore", "language": "en",
                                          "text": "Noise at night again"},
                        headers={"Authorization": "Bearer " + v.json["token"]})
        self.assertEqual(c.status, 201, c)
        mid = self.db.scalar("SELECT m.id FROM messages m JOIN cases c ON c.id = m.case_id"
                             " WHERE c.tracking_no = '%s' AND m.template = 'notice.routed'"
                             " AND m.citizen_id = %s" % (c.json["tracking_no"], cid))
        self.assertIsNotNone(mid, "the registered notice was stored with the case")
        self.assert_due_at_quiet_end(mid)

    def test_a_notice_that_falls_due_in_quiet_hours_is_put_back(self):
        phone = "+923004440002"
        # queued before the quiet hours began (as if): due now, not urgent
        mid = self.db.scalar(
            "SELECT message_id FROM rabta_message_queue(ARRAY['sms'], ARRAY['%s'],"
            " ARRAY['Notice queued earlier'], notice => ARRAY[true], urgent => ARRAY[false])"
            % phone)
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT last_error FROM jobs WHERE payload->>'message_id' = '%s'" % mid)
            == "quiet hours", 10.0, what="the send to be put back for quiet hours")
        wait = float(self.db.scalar("SELECT extract(epoch FROM run_at - now()) FROM jobs"
                                    " WHERE payload->>'message_id' = '%s'" % mid))
        self.assertGreater(wait, 30 * 60, "put back until the end, not retried soon")
        self.assertEqual(self.db.scalar("SELECT status FROM messages WHERE id = %s" % mid),
                         "queued")
        self.assertFalse(self.k.smsc.messages_to(phone))


class SmsGatewayTest(KannelCase):
    """Kannel down at first (messages wait and retry), then up; the per-gateway rate."""
    KANNEL_AT_START = False  # rabtad starts although Kannel is not running
    CONFIG = {"jobs": {"backoff_base": "1s", "backoff_max": "2s"}}
    PLUGIN = {"rate": 2, "burst": 1, "timeout": "3s"}

    def ensure_kannel(self):
        if not self.k.bb:
            self.k.start()

    def help_sms(self, phone, mo_id):
        q = {"secret": SECRET, "from": phone, "to": "8080", "text": "HELP", "id": mo_id}
        r = self.r.get("/sms/kannel/mo?" + urllib.parse.urlencode(q))
        self.assertEqual(r.status, 200, "HELP accepted: %r" % r)

    def test_a_kannel_down_message_waits_and_retries_then_goes_out(self):
        phone, citizen = "+923002220001", "+923002220002"
        self.help_sms(phone, "down-1")
        rbtest.wait_until(lambda: int(self.db.scalar(
            "SELECT attempts FROM jobs WHERE kind = 'message.send.sms' AND payload->>'message_id' ="
            " (SELECT id::text FROM messages WHERE to_address = '%s')" % phone) or "0") >= 2,
            15.0, what="the send to be retried while Kannel is down")
        self.assertEqual(self.db.scalar("SELECT status FROM messages WHERE to_address = '%s'"
                                        % phone), "queued", "still queued while Kannel is down")
        err = self.db.scalar("SELECT last_error FROM jobs WHERE payload->>'message_id' ="
                             " (SELECT id::text FROM messages WHERE to_address = '%s')" % phone)
        self.assertIn("Kannel", err or "", "the job says why: %r" % err)
        # notices queued while Kannel is down: a complaint (its reply), then two case events
        q = {"secret": SECRET, "from": citizen, "to": "8080", "id": "down-2",
             "text": "Gas leak reported near the girls school, nobody came"}
        r = self.r.get("/sms/kannel/mo?" + urllib.parse.urlencode(q))
        self.assertEqual(r.status, 200, "complaint accepted while Kannel is down: %r" % r)
        t = self.db.scalar("SELECT c.tracking_no FROM cases c JOIN citizens z ON"
                           " z.id = c.citizen_id WHERE z.phone = '%s'" % citizen)
        case_event(self.db, t, "acknowledge", "acknowledged")
        case_event(self.db, t, "transfer", "transferred")
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT count(*) FROM messages WHERE to_address = '%s'" % citizen) == "3", 10.0,
            what="the reply and two notices to be queued")
        self.ensure_kannel()
        self.k.smsc.wait_mt(lambda m: m[1] == phone and "STATUS" in m[2], 20.0,
                            "the HELP answer once Kannel is up")
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT status FROM messages WHERE to_address = '%s'" % phone) in ("sent", "delivered"),
            10.0, what="the message to be marked sent")
        for rx in ("Tracking number", "has received your complaint", "has been transferred"):
            self.k.smsc.wait_mt(lambda m, rx=rx: m[1] == citizen and rx in m[2], 30.0,
                                "%r once Kannel is up" % rx)
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT count(*) FROM messages WHERE to_address = '%s' AND status IN"
            " ('sent', 'delivered')" % citizen) == "3", 10.0, what="all three marked sent")
        self.sends_settled(citizen)
        got = [m[2] for m in self.k.smsc.messages_to(citizen)]
        self.assertEqual(len(got), 3, "each arrived once: %r" % got)

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
