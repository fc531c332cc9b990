"""The e-mail channel (plugins/email_smtp) with the real binary, a real PostgreSQL and a real
SMTP server (tests/integration/smtp_sink.py, aiosmtpd): Urdu arrives intact (UTF-8 text/plain,
base64 body, RFC 2047 subject); with the relay down the messages wait and are retried, and
once it is up each arrives exactly once; a refusal for good is not retried; a citizen who
gave an e-mail address and no phone gets their notices by e-mail."""
import hashlib
import os
import secrets
import subprocess
import urllib.parse

import rbtest
import smtp

FROM = "rabta@example.org"
PASSWORD = "s3cret-pass-word"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class EmailTest(rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()
        cls.sink = smtp.SmtpSink(cls.class_tmp())
        cls.rd = cls.class_rabtad(pg=cls.pgs, start=False)
        cls.rd.config["jobs"] = {"backoff_base": "1s", "backoff_max": "2s"}
        cls.rd.config["plugins"] = cls.rd.config["plugins"] + [
            {"name": "email_smtp", "config": {"host": "127.0.0.1", "port": cls.sink.port,
                                              "from": FROM, "from_name": "رابطہ Rabta",
                                              "timeout": "5s", "retry_after": "1s"}},
            {"name": "test_sender", "config": {"channels": "fax"},
             "path": os.path.join(rbtest.TEST_PLUGIN_DIR, "test_sender.so")}]
        cls.rd.start()

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()
        super().tearDownClass()

    def queue(self, to, language="ur", template="sms.help"):
        q = urllib.parse.urlencode({"channel": "email", "to": to, "language": language,
                                    "template": template})
        r = self.rd.post("/test/test_sender/message?" + q, {})
        self.assertEqual(r.status, 201, r)
        return r.json["id"]

    def to(self, addr):
        return [m for m in self.sink.messages() if m.envelope["to"] == [addr]]

    def assert_mime(self, msg, body):
        self.assertEqual(msg.get_content_type(), "text/plain")
        self.assertEqual(msg.get_content_charset(), "utf-8")
        self.assertEqual(msg["Content-Transfer-Encoding"], "base64")
        self.assertEqual(msg.get_content().rstrip("\n"), body, "the body arrives intact")
        raw = msg.as_bytes()
        self.assertTrue(all(b < 128 for b in raw), "the message on the wire is 7-bit ASCII")

    def test_relay_down_then_up_every_email_arrives_once_with_urdu_intact(self):
        self.sink.stop()
        addrs = ["down%d@example.org" % i for i in range(3)]
        ids = [self.queue(a) for a in addrs]
        idl = ",".join(str(i) for i in ids)
        rbtest.wait_until(lambda: self.pgs.scalar(
            "SELECT count(*) FROM messages WHERE id IN (%s) AND attempts >= 1"
            " AND last_error LIKE 'SMTP relay%%'" % idl) == "3", 30,
            what="every e-mail tried once while the relay is down")
        self.assertEqual(self.pgs.scalar("SELECT count(*) FROM messages WHERE id IN (%s)"
                                         " AND status = 'queued'" % idl), "3",
                         "still queued while the relay is down")
        self.assertFalse(any(self.to(a) for a in addrs))
        self.sink.start()
        rbtest.wait_until(lambda: self.pgs.scalar(
            "SELECT count(*) FROM messages WHERE id IN (%s) AND status = 'sent'" % idl) == "3",
            30, what="the three e-mails sent once the relay is up")
        self.assertEqual(self.pgs.scalar("SELECT count(*) FROM jobs WHERE kind ="
                                         " 'message.send.email' AND (payload->>'message_id')"
                                         "::bigint IN (%s)" % idl), "0", "no send job left")
        for mid, a in zip(ids, addrs):
            got = self.to(a)
            self.assertEqual(len(got), 1, "%s got %d e-mails" % (a, len(got)))
            body = self.pgs.scalar("SELECT body FROM messages WHERE id = %s" % mid)
            self.assertIn("رابطہ", body)
            self.assert_mime(got[0], body)
            self.assertEqual(str(got[0]["Subject"]), "Rabta / رابطہ")
            self.assertIn("=?UTF-8?B?", got[0].as_string(), "RFC 2047 encoded header")
            self.assertEqual(got[0].envelope["from"], FROM)
            self.assertIn(FROM, str(got[0]["From"]))
            self.assertIn("رابطہ Rabta", str(got[0]["From"]))

    def test_a_refusal_for_good_is_not_retried(self):
        self.sink.start()
        mid = self.queue("refuse-me@example.org", language="en")
        rbtest.wait_until(lambda: self.pgs.scalar("SELECT status FROM messages WHERE id = %s"
                                                  % mid) == "failed", 30,
                          what="the refused e-mail failed")
        self.assertIn("550", self.pgs.scalar("SELECT last_error FROM messages WHERE id = %s"
                                             % mid))
        self.assertEqual(self.pgs.scalar("SELECT attempts FROM messages WHERE id = %s" % mid),
                         "1", "tried once, not again")

    def test_a_citizen_with_only_an_email_gets_their_notices_by_email(self):
        self.sink.start()
        key = "rbk_" + secrets.token_urlsafe(32)
        self.pgs.psql("INSERT INTO api_keys (name, key_hash) VALUES ('%s', '\\x%s'::bytea)"
                      % ("mail-" + secrets.token_hex(4), hashlib.sha256(key.encode()).hexdigest()))
        addr = "citizen-%s@example.org" % secrets.token_hex(4)
        fields = {"api_key": key, "service_code": "domicile_certificate", "email": addr,
                  "lat": "31.5204", "long": "74.3587", "description": "Domicile counter closed during office hours"}
        r = self.rd.post("/open311/v2/requests.json", urllib.parse.urlencode(fields),
                         headers=FORM)
        self.assertEqual(r.status, 201, r)
        tn = r.json[0]["service_request_id"]
        rbtest.wait_until(lambda: len(self.to(addr)) >= 1, 30, what="the notice to " + addr)
        first = self.to(addr)[0]
        self.assertIn(tn, first.get_content(), "the registered notice names the case")
        self.assertEqual(self.pgs.query("SELECT channel, template FROM messages WHERE"
                                        " to_address = '%s'" % addr),
                         [["email", "notice.routed"]])
        # A later notice (core/messages/notice.c): acknowledged by staff.
        user = "adm" + secrets.token_hex(3)
        out = subprocess.run([rbtest.RABTAD, "staff", "-c", self.rd.config_path, "add", user,
                              "--role", "admin", "--name", "Admin"], input=PASSWORD + "\n",
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        tok = self.rd.post("/api/v1/staff/login", {"username": user, "password": PASSWORD})
        self.assertEqual(tok.status, 200, tok)
        r = self.rd.post("/api/v1/staff/cases/%s/acknowledge" % tn, {},
                         headers={"Authorization": "Bearer " + tok.json["token"]})
        self.assertEqual(r.status, 200, r)
        rbtest.wait_until(lambda: len(self.to(addr)) >= 2, 30,
                          what="the acknowledgement notice by e-mail")
        self.assertEqual(self.pgs.query("SELECT channel, template, status FROM messages WHERE"
                                        " to_address = '%s' ORDER BY id" % addr),
                         [["email", "notice.routed", "sent"], ["email", "notice.acknowledge", "sent"]])


if __name__ == "__main__":
    rbtest.main()
