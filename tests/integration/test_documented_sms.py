"""docs/sms.md and docs/api.md's SMS sentences, with effects where the citizen sees them: every
step is taken through the staff API or by the citizen's own SMS (no case state written with
SQL), and every SMS is asserted at the fake SMSC behind a real Kannel.

- notices for the staff API's acknowledge, transfer and resolve reach the phone; the citizen's
  `1` closes and `2` reopens the case, which the staff API then shows (closed with rating 5;
  reopened and escalated in the inbox);
- the app's one-time code reaches the phone and signs the citizen in; a staff answer to their
  information request reaches the phone with the request to rate;
- after STOP: answers (STATUS, an officer's question, a public comment, an answer) still come,
  notices (acknowledge, resolve, answer) do not;
- delivery reports 2 (failed) and 4 (buffered: nothing changes) on a real reply;
- the flood limit's window: past it, the same phone's text is a complaint again."""
import re
import time

import kannel
import rbtest
from test_documented_api import PASSWORD, add_staff
from test_sms import SECRET, KannelCase

FLOOD_MAX = 4
FLOOD_WINDOW = 3.0  # seconds

STAFF = {
    "sms_off_pol": ("officer", "police", "SMS Officer Police", None),
    "sms_off_rev": ("officer", "revenue", "SMS Officer Revenue", None),
}


class DocumentedSmsTest(KannelCase):
    PLUGIN = {"sender": "8080", "rate": 50, "burst": 50, "flood_max": FLOOD_MAX,
              "flood_window": "%ds" % FLOOD_WINDOW}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        add_staff(cls.r, STAFF)
        cls.tokens = {}

    def tearDown(self):
        if self._failed():
            print(self.k.log_tail(30))
        super().tearDown()

    # helpers ------------------------------------------------------------------------------
    def staff(self, user):
        if user not in self.tokens:
            r = self.r.post("/api/v1/staff/login", {"username": user, "password": PASSWORD})
            self.assertEqual(r.status, 200, r)
            self.tokens[user] = r.json["token"]
        return {"Authorization": "Bearer " + self.tokens[user]}

    def act(self, tn, action, user, body=None, status=200):
        r = self.r.post("/api/v1/staff/cases/%s/%s" % (tn, action), body or {},
                        headers=self.staff(user))
        self.assertEqual(r.status, status, "staff %s on %s: %r" % (action, tn, r))
        return r.json

    def staff_case(self, tn, user):
        r = self.r.get("/api/v1/staff/cases/%s" % tn, headers=self.staff(user))
        self.assertEqual(r.status, 200, r)
        return r.json

    def sms_to(self, phone, pattern, what, timeout=20.0):
        rx = re.compile(pattern)
        return self.k.smsc.wait_mt(lambda m: m[1] == phone and rx.search(m[2]), timeout,
                                   what)[2]

    def texts_to(self, phone, pattern):
        """The SMS that reached the fake SMSC for phone matching pattern (after a barrier:
        what is not there is not coming)."""
        self.k.barrier()
        return [m[2] for m in self.k.smsc.messages_to(phone) if re.search(pattern, m[2])]

    def settled(self, phone):
        """No send job left for phone's messages, and Kannel has passed on all it got."""
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT count(*) FROM jobs j JOIN messages m ON m.id = (j.payload->>'message_id')"
            "::bigint WHERE j.kind LIKE 'message.send%%' AND m.to_address = '%s'"
            " AND j.state IN ('queued', 'running', 'failed')" % phone) == "0", 20.0,
            what="the sends to %s to finish" % phone)
        rbtest.wait_until(lambda: self.db.scalar(
            "SELECT count(*) FROM jobs WHERE kind = 'notice' AND state IN"
            " ('queued', 'running', 'failed')") == "0", 20.0, what="the notice jobs to finish")

    def complaint_by_sms(self, phone, text):
        self.k.smsc.send_mo(phone, "8080", text)
        body = self.sms_to(phone, r"Tracking number", "the reply with the tracking number")
        return re.search(r"Tracking number: (RB-[0-9A-Z-]+)", body).group(1)

    # notices for the staff API's steps ------------------------------------------------------
    def test_staff_steps_reach_the_phone_and_reply_1_closes_the_case(self):
        phone = "+923005550001"
        tn = self.complaint_by_sms(phone, "The police station refused to register my FIR")
        self.act(tn, "acknowledge", "sms_off_pol")
        self.sms_to(phone, r"has received your complaint %s" % tn, "the acknowledge notice")
        self.act(tn, "transfer", "sms_off_pol", {"department": "revenue",
                                                 "reason": "A land record matter"})
        self.sms_to(phone, r"your complaint %s has been transferred to" % tn,
                    "the transfer notice")
        self.act(tn, "acknowledge", "sms_off_rev")
        self.act(tn, "resolve", "sms_off_rev", {"note": "The record was corrected"})
        self.sms_to(phone, r"%s is resolved\. Are you satisfied\? Reply 1" % tn,
                    "the resolve notice with the request to rate")
        self.k.smsc.send_mo(phone, "8080", "1")
        self.sms_to(phone, r"thank you\. Complaint %s is closed" % tn, "the thanks")
        case = self.staff_case(tn, "sms_off_rev")
        self.assertEqual((case["status"], case["rating"]), ("closed", 5), case)
        self.assertIn("rated", [e["event"] for e in case["timeline"]])
        self.settled(phone)
        self.assertEqual(len(self.texts_to(phone, r"has received your complaint")), 2,
                         "one acknowledge notice per acknowledge (police, then revenue)")

    def test_reply_2_after_a_staff_resolve_shows_reopened_and_escalated_to_staff(self):
        phone = "+923005550002"
        tn = self.complaint_by_sms(phone, "The clerk at the police station asked for money")
        self.act(tn, "acknowledge", "sms_off_pol")
        self.act(tn, "resolve", "sms_off_pol", {"note": "Spoke to the clerk"})
        self.sms_to(phone, r"%s is resolved" % tn, "the resolve notice")
        self.k.smsc.send_mo(phone, "8080", "2")
        self.sms_to(phone, r"reopened and sent to a senior officer", "the sorry reply")
        r = self.r.get("/api/v1/staff/inbox?status=reopened&limit=200",
                       headers=self.staff("sms_off_pol"))
        row = [c for c in r.json["cases"] if c["tracking_no"] == tn]
        self.assertEqual([(c["status"], c["escalation_level"]) for c in row], [("reopened", 1)],
                         "the staff inbox shows it reopened, one level up: %r" % r)

    # the app's code and a staff answer --------------------------------------------------------
    def test_the_one_time_code_reaches_the_phone_and_a_staff_answer_follows(self):
        phone = "+923005550003"
        r = self.r.post("/api/v1/register", {"phone": phone, "language": "en"})
        self.assertEqual(r.status, 202, r)
        body = self.sms_to(phone, r"Your Rabta code is \d{6}\. It expires in 5 minutes",
                           "the one-time code at the SMSC")
        code = re.search(r"\b(\d{6})\b", body).group(1)
        v = self.r.post("/api/v1/verify", {"phone": phone, "code": code})
        self.assertEqual(v.status, 200, "the code from the SMS signs in: %r" % v)
        c = self.r.post("/api/v1/cases", {"kind": "information", "service": "fard",
                                          "district": "lahore", "language": "en",
                                          "text": "How many days does a fard take?"},
                        headers={"Authorization": "Bearer " + v.json["token"]})
        self.assertEqual(c.status, 201, c)
        tn = c.json["tracking_no"]
        self.sms_to(phone, r"registered with tracking number %s" % tn, "the registered notice")
        self.act(tn, "acknowledge", "sms_off_rev")
        out = self.act(tn, "answer", "sms_off_rev", {"answer": "Two working days at the centre"})
        self.assertTrue(out["message_queued"], out)
        self.sms_to(phone, r"Two working days at the centre", "the answer itself")
        self.sms_to(phone, r"your request %s has been answered by .*Reply 1" % tn,
                    "the answer notice asking for a rating")

    # STOP ------------------------------------------------------------------------------------
    def test_after_stop_answers_still_come_and_notices_do_not(self):
        phone = "+923005550004"
        tn = self.complaint_by_sms(phone, "The police station never came about the theft of my street light")
        self.k.smsc.send_mo(phone, "8080", "STOP")
        self.sms_to(phone, r"no more notices", "the STOP confirmation")
        self.act(tn, "acknowledge", "sms_off_pol")
        self.k.smsc.send_mo(phone, "8080", "STATUS " + tn)
        self.sms_to(phone, r"complaint %s is received by the department" % tn,
                    "the STATUS answer after STOP")
        self.act(tn, "ask", "sms_off_pol", {"question": "Which street is it?"})
        self.sms_to(phone, r"Which street is it\?", "the officer's question after STOP")
        self.k.smsc.send_mo(phone, "8080", "Mall Road near the school")
        self.sms_to(phone, r"Your answer was added to complaint %s" % tn,
                    "the confirmation of the answer")
        self.act(tn, "comment", "sms_off_pol", {"text": "A lineman is on the way",
                                                "internal": False}, status=201)
        self.sms_to(phone, r"A lineman is on the way", "a public comment after STOP")
        self.act(tn, "resolve", "sms_off_pol", {"note": "Light fixed"})
        self.settled(phone)
        self.assertEqual(self.texts_to(phone, r"has received your complaint|is resolved"), [],
                         "no acknowledge or resolve notice after STOP")
        self.assertEqual(self.db.scalar(
            "SELECT count(*) FROM messages m JOIN cases c ON c.id = m.case_id"
            " WHERE c.tracking_no = '%s' AND m.notice AND m.status <> 'failed'" % tn), "0",
            "no notice written or sent for a citizen who sent STOP")

    # delivery reports ------------------------------------------------------------------------
    def test_delivery_reports_2_fails_and_4_changes_nothing(self):
        phone = "+923005550005"
        self.k.smsc.send_mo(phone, "8080", "HELP")
        self.sms_to(phone, r"STATUS", "the HELP answer")
        mid = rbtest.wait_until(lambda: self.db.scalar(
            "SELECT id FROM messages WHERE to_address = '%s' AND status = 'delivered'" % phone),
            20.0, what="Kannel's final report (1) to mark the HELP answer delivered")
        # as if Kannel's reports had stopped at "sent" (the fake SMSC always delivers)
        self.db.psql("UPDATE messages SET status = 'sent', delivered_at = NULL WHERE id = %s"
                     % mid)
        dlr = "/sms/kannel/dlr?secret=%s&id=%s&type=%d"
        r = self.r.get(dlr % (SECRET, mid, 4))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.db.scalar("SELECT status FROM messages WHERE id = %s" % mid),
                         "sent", "type 4 (buffered) is not final")
        r = self.r.get(dlr % (SECRET, mid, 2) + "&answer=NACK%2F0x01")
        self.assertEqual(r.status, 200, r)
        row = self.db.query("SELECT status, coalesce(last_error, '') FROM messages WHERE id = %s"
                            % mid)[0]
        self.assertEqual(row[0], "failed", "type 2 (not delivered) fails the message")
        self.assertTrue(row[1], "the failure says why")

    # flood -----------------------------------------------------------------------------------
    def test_past_the_flood_window_a_text_is_a_complaint_again(self):
        phone = "+923005550006"
        for i in range(FLOOD_MAX + 1):
            q = "/sms/kannel/mo?secret=%s&from=%%2B%s&to=8080&id=fw-%d&text=drain+%d+blocked" % (
                SECRET, phone[1:], i, i)
            self.assertEqual(self.r.get(q).status, 200)
        # every text was answered, so the window (from the first) ends before t0 + the window
        t0 = time.monotonic()
        self.sms_to(phone, r"many messages from this number", "the flood reply")
        self.assertEqual(self.db.scalar("SELECT count(*) FROM sms_received WHERE phone = '%s'"
                                        " AND command = 'flood'" % phone), "1")
        # the window counts from the first text; once it has passed, texts are judged anew
        rbtest.wait_until(lambda: time.monotonic() - t0 > FLOOD_WINDOW + 0.5,
                          FLOOD_WINDOW + 5, what="the flood window to pass")
        # (complaint_by_sms would find one of the earlier replies: wait for a new one)
        self.k.smsc.send_mo(phone, "8080", "The drain is still blocked after the window")
        rbtest.wait_until(lambda: len(self.texts_to(phone, r"Tracking number")) > FLOOD_MAX,
                          30.0, what="the reply with the new complaint's tracking number")
        tn = re.search(r"Tracking number: (RB-[0-9A-Z-]+)",
                       self.texts_to(phone, r"Tracking number")[-1]).group(1)
        self.assertEqual(self.db.scalar(
            "SELECT count(*) FROM cases c JOIN citizens z ON z.id = c.citizen_id"
            " WHERE z.phone = '%s'" % phone), str(FLOOD_MAX + 1), "a complaint again")
        self.assertTrue(tn)
        self.assertEqual(len(self.texts_to(phone, r"many messages")), 1, "one flood reply")


if __name__ == "__main__":
    kannel.require()
    rbtest.main()
