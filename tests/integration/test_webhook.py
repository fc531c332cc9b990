"""Department delivery and the webhook plugin (core/server/deliver.c, core/cases/case_act.c,
plugins/webhook) with the real binary, a real PostgreSQL and small HTTP receivers started by
the test that stand in for two departments' own systems (police and revenue use webhook; the
other departments keep the inbox):

- every delivery carries a valid HMAC-SHA256 signature over "timestamp.body" and a fresh
  timestamp (the receiver checks each one); the body describes the case, without the
  complainant's contact when the case is anonymous or names an official;
- a delivery is retried with back-off while the receiver answers 503 or is not listening,
  and succeeds once it is up, with exactly one accepted delivery per case; every attempt is a
  case event; a 4xx is final (the job is dead with the reason);
- a transferred case is delivered to its new department;
- signed callbacks acknowledged -> resolved are applied through the state machine and show
  in the staff API's timeline and in the citizen's status; a step the state machine refuses
  is 409 with the reason;
- over https:// the department's certificate is verified against the webhook plugin's ca_file
  (made by the test with the openssl CLI): a server the CA does not vouch for gets nothing
  and the attempt records why; with the right CA the case is delivered over TLS;
- forged signature, missing headers, stale or future timestamp, replay, unknown department,
  unknown case, another department's case, malformed, wrong-shape and oversized bodies are
  refused with the expected status, logged, and change nothing."""
import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time

import rbtest
from test_app_auth import SignIn, new_phone

POLICE_SECRET = "police-secret-0123456789abcdef"
REVENUE_SECRET = "revenue-secret-fedcba9876543210"
REVENUE_ENV = "RB_TEST_REVENUE_WEBHOOK_SECRET"
WINDOW = 300
PASSWORD = "s3cret-pass-word"


def sign(secret, ts, body):
    return "v1=" + hmac.new(secret.encode(), ts.encode() + b"." + body,
                            hashlib.sha256).hexdigest()


SAMPLE_DEPARTMENTS = os.path.join(rbtest.SOURCE_DIR, "config", "departments")


def departments(dirpath, **webhooks):
    """The sample's department files copied into dirpath (made if missing), with each
    department named in webhooks switched to the webhook plugin and given that "config:" body
    (the YAML lines below "config:"). Returns the glob for rabta.yaml's departments key."""
    os.makedirs(dirpath, exist_ok=True)
    for f in os.listdir(SAMPLE_DEPARTMENTS):
        shutil.copy(os.path.join(SAMPLE_DEPARTMENTS, f), dirpath)
    for name, block in webhooks.items():
        with open(os.path.join(SAMPLE_DEPARTMENTS, name + ".yaml")) as f:
            text = f.read().replace("plugin: staff_inbox", "plugin: webhook")
        at = text.find("\nconfig:")
        if at >= 0:  # a sample that already has a config block: replace it
            text = text[:at + 1]
        with open(os.path.join(dirpath, name + ".yaml"), "w") as f:
            f.write(text.rstrip("\n") + "\nconfig:\n" + block)
    return os.path.join(dirpath, "*.yaml")


def settings(port, secret, path="/p"):
    return '  url: "http://127.0.0.1:%d%s"\n  secret: "%s"\n' % (port, path, secret)


class Receiver:
    """A department's system: an HTTP server on 127.0.0.1 that checks every delivery's
    signature and timestamp, records it, and answers with self.answer (200 by default; "drop":
    closes the connection after reading the whole body, without an answer; "hang": reads the
    body and answers nothing until self.release is set, then closes).
    stop() closes the socket (nothing listens); start() listens again on the same port."""

    def __init__(self, secret, port=None, tls=None):
        self.secret = secret
        self.tls = tls  # an ssl.SSLContext (server side): https
        self.port = port or rbtest.free_port()
        self.answer = 200
        self.release = threading.Event()  # ends the "hang" answers
        self.seen = []  # dicts: tracking_no, status answered, valid, headers, body
        self.lock = threading.Lock()
        self.server = None

    def start(self):
        rcv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                ts = self.headers.get("X-Rabta-Timestamp") or ""
                sig = self.headers.get("X-Rabta-Signature") or ""
                valid = (hmac.compare_digest(sig, sign(rcv.secret, ts, body))
                         and ts.isdigit() and abs(int(ts) - time.time()) <= 5)
                try:
                    doc = json.loads(body.decode())
                except ValueError:
                    doc = {}
                with rcv.lock:
                    status = rcv.answer
                    rcv.seen.append({"tracking_no": doc.get("tracking_no"), "status": status,
                                     "valid": valid, "headers": dict(self.headers),
                                     "body": doc, "path": self.path})
                if status in ("drop", "hang"):
                    if status == "hang":
                        rcv.release.wait(60)
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        if self.tls:  # a failed handshake fails that accept only (an OSError the server skips)
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.release.set()
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)
            self.server = None

    def of(self, tn):
        with self.lock:
            return [s for s in self.seen if s["tracking_no"] == tn]

    def accepted(self, tn):
        return [s for s in self.of(tn) if isinstance(s["status"], int) and
                200 <= s["status"] < 300]


def make_ca(dirpath, name):
    """A self-signed CA (EC P-256) made with the openssl CLI: (cert path, key path)."""
    cert, key = os.path.join(dirpath, name + ".pem"), os.path.join(dirpath, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=" + name, "-addext",
                    "basicConstraints=critical,CA:TRUE", "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    return cert, key


def make_server_cert(dirpath, ca):
    """A certificate for 127.0.0.1 (IP subjectAltName) signed by ca: (cert path, key path)."""
    cert, key = os.path.join(dirpath, "server.pem"), os.path.join(dirpath, "server.key")
    csr, ext = os.path.join(dirpath, "server.csr"), os.path.join(dirpath, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    run = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr,
                    "-subj", "/CN=127.0.0.1"], **run)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
                    "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext], **run)
    return cert, key


class WebhookTest(SignIn, rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        tmp = cls.class_tmp()
        cls.police = Receiver(POLICE_SECRET).start()
        cls.revenue = Receiver(REVENUE_SECRET).start()
        deps = departments(
            os.path.join(tmp, "departments"),
            police=settings(cls.police.port, POLICE_SECRET, "/rabta/police"),
            revenue='  url: "http://127.0.0.1:%d/rabta"\n  secret_env: %s\n'
                    % (cls.revenue.port, REVENUE_ENV))
        os.environ[REVENUE_ENV] = REVENUE_SECRET  # inherited by rabtad
        cls.pgs = cls.class_pg()
        cls.rd = cls.class_rabtad(pg=cls.pgs, start=False)
        cfg = cls.rd.config
        cfg["departments"] = deps
        cfg["jobs"] = {"backoff_base": "200ms", "backoff_max": "1s"}
        cfg["plugins"] = [{"name": "staff_inbox"},
                          {"name": "webhook", "config": {
                              "timeout": "2s", "max_attempts": 40,
                              "callback_window": "%ds" % WINDOW,
                              "max_callback_body": "8KiB"}},
                          {"name": "app"}]
        cls.rd.start()
        for user, role, dept in (("sup_pol", "supervisor", "police"),
                                 ("off_rev", "officer", "revenue")):
            r = subprocess.run([rbtest.RABTAD, "staff", "-c", cls.rd.config_path, "add", user,
                                "--role", role, "--department", dept, "--name", user],
                               input=PASSWORD + "\n", stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
            assert r.returncode == 0, r.stderr
        cls.tokens = {}

    @classmethod
    def tearDownClass(cls):
        for r in (getattr(cls, "police", None), getattr(cls, "revenue", None)):
            if r:
                r.stop()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.police.answer = 200
        self.revenue.answer = 200
        self.revenue.release.clear()
        if not self.police.server:
            self.police.start()
        if not self.revenue.server:
            self.revenue.start()

    # helpers --------------------------------------------------------------------------------
    def submit(self, service="character_certificate", token=None, **extra):
        body = dict({"kind": "complaint", "service": service, "district": "lahore",
                     "language": "en", "text": "Asked for a bribe at the counter"}, **extra)
        if token is None and not body.get("anonymous"):
            _, token = self.sign_in()
        r = self.rd.post("/api/v1/cases", body, headers=self.auth(token) if token else {})
        self.assertEqual(r.status, 201, r)
        return r.json["tracking_no"]

    def staff(self, user):
        if user not in self.tokens:
            r = self.rd.post("/api/v1/staff/login", {"username": user, "password": PASSWORD})
            self.assertEqual(r.status, 200, r)
            self.tokens[user] = r.json["token"]
        return {"Authorization": "Bearer " + self.tokens[user]}

    def delivered(self, rcv, tn, timeout=20):
        got = rbtest.wait_until(lambda: rcv.accepted(tn), timeout,
                                what="a delivery of %s accepted" % tn)
        return got[0]

    def deliveries_done(self, tns, db=None, timeout=20):
        """Waits until the case.deliver jobs of the cases tns are gone (a job is deleted
        once it has delivered or given up): after this no delivery attempt can follow."""
        db = db or self.pgs
        in_list = ", ".join("'%s'" % tn for tn in tns)
        rbtest.wait_until(lambda: db.scalar(
            "SELECT count(*) FROM jobs WHERE kind = 'case.deliver' AND payload->>'case_id' IN "
            "(SELECT id::text FROM cases WHERE tracking_no IN (%s))" % in_list) == "0",
            timeout, what="the delivery jobs of %d case(s) to finish" % len(tns))

    def status(self, tn):
        return self.pgs.scalar("SELECT status FROM cases WHERE tracking_no = '%s'" % tn)

    def events(self, tn, like="%"):
        return self.pgs.query(
            "SELECT e.event, e.actor_type, coalesce(e.actor_id, ''), coalesce(e.data::text, ''),"
            " coalesce(e.to_status, '') FROM case_events e JOIN cases c ON c.id = e.case_id"
            " WHERE c.tracking_no = '%s' AND e.event LIKE '%s' ORDER BY e.id" % (tn, like))

    def callback(self, dept, doc, secret=POLICE_SECRET, ts=None, sig=None, raw=None,
                 headers=None):
        body = raw if raw is not None else json.dumps(doc).encode()
        ts = str(int(time.time())) if ts is None else ts
        h = {"X-Rabta-Timestamp": ts,
             "X-Rabta-Signature": sig if sig is not None else sign(secret, ts, body),
             "Content-Type": "application/json"}
        if headers is not None:
            h = headers
        return self.rd.post("/api/v1/departments/%s/callback" % dept, body, headers=h)

    # delivery -------------------------------------------------------------------------------
    def test_new_case_is_posted_signed_with_the_case(self):
        phone, token = self.sign_in()
        tn = self.submit(token=token)
        d = self.delivered(self.police, tn)
        self.assertTrue(d["valid"], "bad signature or timestamp: %r" % d["headers"])
        self.assertEqual(d["path"], "/rabta/police")
        b = d["body"]
        for k in ("tracking_no", "service", "kind", "category", "priority", "text", "district",
                  "lat", "long", "language", "created_at", "ack_due_at", "resolve_due_at",
                  "department", "event_id"):
            self.assertIn(k, b)
        self.assertEqual((b["department"], b["service"], b["event"], b["district"]),
                         ("police", "character_certificate", "routed", "lahore"))
        self.assertEqual(d["headers"]["X-Rabta-Delivery"], str(b["event_id"]))
        self.assertEqual(d["headers"]["X-Rabta-Department"], "police")
        self.assertEqual(b["citizen"]["phone"], phone, "not anonymous, no official: contact shown")
        self.assertFalse(b["contact_hidden"])
        ev = rbtest.wait_until(lambda: self.events(tn, "webhook.%"), 10, what="delivery event")
        self.assertEqual(ev[0][:3], ["webhook.delivery", "department", "webhook"])
        data = json.loads(ev[0][3])
        self.assertEqual((data["status"], data["outcome"], data["attempt"]),
                         (200, "delivered", 1))
        rbtest.wait_until(lambda: self.pgs.scalar(
            "SELECT count(*) FROM jobs WHERE kind = 'case.deliver' AND payload->>'case_id' = "
            "(SELECT id::text FROM cases WHERE tracking_no = '%s')" % tn) == "0", 10,
            what="the delivery job to be done")
        self.assertEqual(self.status(tn), "routed", "delivery is not a status change")

    def test_anonymous_or_official_naming_cases_hide_the_contact(self):
        phone, token = self.sign_in()
        anon = self.submit(anonymous=True)
        named = self.submit(token=token, official="Inspector Aslam")
        shared = self.submit(token=token, official="Inspector Aslam", share_contact=True)
        for tn in (anon, named):
            d = self.delivered(self.police, tn)
            self.assertIsNone(d["body"]["citizen"], tn)
            self.assertTrue(d["body"]["contact_hidden"])
            self.assertNotIn(phone[-7:], json.dumps(d["body"]))
        d = self.delivered(self.police, shared)
        self.assertEqual(d["body"]["citizen"]["phone"], phone, "the citizen agreed to share")

    def test_inbox_departments_finish_at_once_and_get_no_post(self):
        tn = self.submit(service="treatment_dhq", text="No doctor in the emergency ward")
        dept = self.pgs.scalar("SELECT department_id FROM cases WHERE tracking_no = '%s'" % tn)
        self.assertEqual(dept, "health")
        rbtest.wait_until(lambda: self.pgs.scalar(
            "SELECT count(*) FROM jobs WHERE kind = 'case.deliver' AND payload->>'case_id' = "
            "(SELECT id::text FROM cases WHERE tracking_no = '%s')" % tn) == "0", 10,
            what="the inbox delivery job to finish")
        self.assertEqual(self.police.of(tn) + self.revenue.of(tn), [])

    def test_retried_while_down_then_delivered_once(self):
        self.revenue.answer = 503
        tn = self.submit(service="fard", text="The patwari wants money for the fard")
        rbtest.wait_until(lambda: len(self.revenue.of(tn)) >= 2, 20,
                          what="two refused attempts")
        self.revenue.stop()  # nothing listens now
        rbtest.wait_until(lambda: any(json.loads(e[3])["status"] is None and
                                      json.loads(e[3])["outcome"] == "will_retry"
                                      for e in self.events(tn, "webhook.delivery")), 20,
                          what="an attempt that found nobody listening")
        self.revenue.answer = 200
        self.revenue.start()
        d = self.delivered(self.revenue, tn)
        self.assertTrue(all(s["valid"] for s in self.revenue.of(tn)))
        self.deliveries_done([tn])  # the job is gone: nothing more may arrive
        self.assertEqual(len(self.revenue.accepted(tn)), 1, "exactly one accepted delivery")
        ids = {s["headers"]["X-Rabta-Delivery"] for s in self.revenue.of(tn)}
        self.assertEqual(ids, {d["headers"]["X-Rabta-Delivery"]}, "one delivery id throughout")
        data = [json.loads(e[3]) for e in self.events(tn, "webhook.delivery")]
        outcomes = [ev["outcome"] for ev in data]
        self.assertEqual(outcomes[-1], "delivered")
        self.assertGreaterEqual(len(outcomes), 4)
        # A 503 and a refused connection are failures ("will_retry"); only an attempt whose
        # request was sent whole before the receiver went away (one racing the stop) is
        # "unknown".
        for ev in data[:-1]:
            sent = (ev["error"] or "").startswith("outcome unknown: the request was sent")
            self.assertEqual(ev["outcome"], "unknown" if sent else "will_retry", data)
        self.assertTrue(any(ev["status"] is None and ev["outcome"] == "will_retry"
                            for ev in data), "a refused connection is a plain failure: %r" % data)
        attempts = [int(s["headers"]["X-Rabta-Attempt"]) for s in self.revenue.of(tn)]
        self.assertEqual(attempts, sorted(attempts))

    def unknown_then_delivered(self, answer, text):
        """The receiver reads each delivery whole and then gives no answer (answer "drop" or
        "hang") twice, then answers 200: the attempts without an answer are outcome "unknown"
        (not failures: the department may have the case), retried with the same
        X-Rabta-Delivery, and the case is delivered once."""
        self.revenue.answer = answer
        tn = self.submit(service="fard", text=text)
        rbtest.wait_until(lambda: len([e for e in self.events(tn, "webhook.delivery")]) >= 2,
                          30, what="two attempts without an answer recorded")
        self.revenue.answer = 200
        self.revenue.release.set()
        d = self.delivered(self.revenue, tn)
        self.deliveries_done([tn])
        seen = self.revenue.of(tn)
        self.assertTrue(all(s["valid"] and s["body"].get("tracking_no") == tn for s in seen),
                        "every attempt reached the receiver whole and signed")
        self.assertEqual({s["headers"]["X-Rabta-Delivery"] for s in seen},
                         {d["headers"]["X-Rabta-Delivery"]}, "one delivery id throughout")
        self.assertEqual(len(self.revenue.accepted(tn)), 1, "exactly one accepted delivery")
        data = [json.loads(e[3]) for e in self.events(tn, "webhook.delivery")]
        self.assertEqual(data[-1]["outcome"], "delivered", data)
        self.assertGreaterEqual(len(data), 3, data)
        for ev in data[:-1]:
            self.assertEqual(ev["outcome"], "unknown", data)
            self.assertIsNone(ev["status"], ev)
            self.assertTrue(ev["error"].startswith("outcome unknown: the request was sent, "),
                            ev)
        return data

    def test_a_connection_dropped_after_the_body_is_outcome_unknown_and_retried(self):
        data = self.unknown_then_delivered("drop", "The receiver hangs up after reading")
        self.assertIn("connection closed", data[0]["error"])

    def test_a_timeout_after_sending_is_outcome_unknown_and_retried(self):
        data = self.unknown_then_delivered("hang", "The receiver never answers in time")
        self.assertIn("timed out", data[0]["error"])

    def test_a_4xx_answer_is_final(self):
        self.revenue.answer = 400
        tn = self.submit(service="fard", text="Mutation pending for a year")
        rbtest.wait_until(lambda: self.pgs.query(
            "SELECT state, last_error FROM jobs WHERE kind = 'case.deliver' AND state = 'dead'"
            " AND payload->>'case_id' = (SELECT id::text FROM cases WHERE tracking_no = '%s')"
            % tn), 20, what="the job to be dead")
        row = self.pgs.query(
            "SELECT last_error FROM jobs WHERE kind = 'case.deliver' AND payload->>'case_id' = "
            "(SELECT id::text FROM cases WHERE tracking_no = '%s')" % tn)[0]
        self.assertIn("HTTP 400", row[0])
        self.assertEqual(len(self.revenue.of(tn)), 1, "no retry after a 400")
        ev = self.events(tn, "webhook.delivery")
        self.assertEqual(json.loads(ev[-1][3])["outcome"], "gave_up")

    def test_transferred_case_is_delivered_to_the_new_department(self):
        tn = self.submit()
        self.delivered(self.police, tn)
        r = self.rd.post("/api/v1/staff/cases/%s/transfer" % tn,
                         {"department": "revenue", "reason": "land record, not police"},
                         headers=self.staff("sup_pol"))
        self.assertEqual(r.status, 200, r)
        d = self.delivered(self.revenue, tn)
        self.assertTrue(d["valid"])
        b = d["body"]
        self.assertEqual((b["department"], b["event"], b["status"]),
                         ("revenue", "transfer", "transferred"))
        self.assertEqual(b["transfer"], {"from_department": "police",
                                         "reason": "land record, not police"})
        self.assertEqual(len(self.police.accepted(tn)), 1, "police got it once, at routing")
        gone = self.callback("police", {"tracking_no": tn, "status": "acknowledged"})
        self.assertEqual(gone.status, 404, "police no longer holds the case: %r" % gone)
        r = self.callback("revenue", {"tracking_no": tn, "status": "acknowledged"},
                          secret=REVENUE_SECRET)
        self.assertEqual((r.status, r.json["from_status"], r.json["status"]),
                         (200, "transferred", "acknowledged"), r)

    # callbacks ------------------------------------------------------------------------------
    def test_acknowledged_then_resolved_is_applied_and_visible(self):
        phone, token = self.sign_in()
        tn = self.submit(token=token)
        self.delivered(self.police, tn)
        r = self.callback("police", {"tracking_no": tn, "status": "acknowledged"})
        self.assertEqual((r.status, r.json["status"], r.json["from_status"]),
                         (200, "acknowledged", "routed"), r)
        r = self.callback("police", {"tracking_no": tn, "status": "in_progress",
                                     "text": "inquiry opened"})
        self.assertEqual((r.status, r.json["status"]), (200, "in_progress"), r)
        early = self.callback("police", {"tracking_no": tn, "status": "resolved"})
        self.assertEqual(early.status, 400, "resolving needs the text: %r" % early)
        r = self.callback("police", {"tracking_no": tn, "status": "resolved",
                                     "text": "Counter clerk suspended; certificate issued"})
        self.assertEqual((r.status, r.json["status"]), (200, "resolved"), r)
        self.assertEqual(self.status(tn), "resolved")
        view = self.rd.get("/api/v1/staff/cases/" + tn, headers=self.staff("sup_pol"))
        self.assertEqual(view.status, 200, view)
        steps = [(e["event"], e["actor_type"], e["actor"], e["to_status"])
                 for e in view.json["timeline"] if e["actor_type"] == "department"
                 and e["event"] in ("acknowledge", "resolve")]
        self.assertEqual(steps, [("acknowledge", "department", "webhook", "acknowledged"),
                                 ("resolve", "department", "webhook", "resolved")])
        self.assertIn(("start", "in_progress"), [(e["event"], e["to_status"])
                                                 for e in view.json["timeline"]])
        note = [e["note"] for e in view.json["timeline"] if e["event"] == "resolve"]
        self.assertEqual(note, ["Counter clerk suspended; certificate issued"])
        mine = self.rd.get("/api/v1/cases/" + tn, headers=self.auth(token))
        self.assertEqual((mine.status, mine.json["status"]), (200, "resolved"), mine)
        tl = self.rd.get("/api/v1/cases/%s/timeline" % tn, headers=self.auth(token))
        self.assertEqual(tl.status, 200, tl)
        seen = [(e["event"], e["actor"]) for e in tl.json["events"]]
        self.assertIn(("resolve", "department"), seen)
        self.assertFalse([e for e in seen if e[0].startswith("webhook.")],
                         "delivery attempts are the department's business, not the citizen's")
        self.assertTrue(self.events(tn, "webhook.delivery"))
        self.assertEqual(json.loads(self.events(tn, "webhook.delivery")[0][3])["internal"], True)
        # the state machine still rules: nothing follows a resolution from the department
        again = self.callback("police", {"tracking_no": tn, "status": "rejected",
                                         "text": "duplicate"})
        self.assertEqual(again.status, 409, again)
        self.assertIn("resolved", again.json["error"]["message"])
        self.assertEqual(self.status(tn), "resolved")
        refused = self.events(tn, "webhook.callback")
        self.assertEqual(len(refused), 2, "the two refused reports are on the record")

    def test_answering_an_information_request_texts_the_citizen(self):
        phone, token = self.sign_in()
        tn = self.submit(token=token, kind="information",
                         text="Which documents does a character certificate need?")
        self.delivered(self.police, tn)
        r = self.callback("police", {"tracking_no": tn, "status": "resolved",
                                     "text": "CNIC copy and two photos"})
        self.assertEqual(r.status, 409, "an information request is answered, not resolved")
        self.assertEqual(self.callback("police", {"tracking_no": tn, "status": "acknowledged",
                                                  "ref": 1}).status, 200)
        r = self.callback("police", {"tracking_no": tn, "status": "answered",
                                     "text": "CNIC copy and two photos"})
        self.assertEqual((r.status, r.json["status"]), (200, "answered"), r)
        # (notices of the events, e.g. "your request has been answered", are separate rows)
        sms = self.pgs.query("SELECT m.to_address, m.body FROM messages m JOIN cases c ON "
                             "c.id = m.case_id WHERE c.tracking_no = '%s' AND NOT m.notice" % tn)
        self.assertEqual(sms, [[phone, "CNIC copy and two photos"]],
                         "the answer goes to the citizen, as a staff answer would")

    def test_resolving_a_case_not_yet_acknowledged_is_409_with_the_reason(self):
        tn = self.submit()
        r = self.callback("police", {"tracking_no": tn, "status": "resolved", "text": "done"})
        self.assertEqual(r.status, 409, r)
        self.assertIn("cannot resolve", r.json["error"]["message"])
        self.assertEqual(self.status(tn), "routed")

    def test_forged_stale_replayed_and_misdirected_callbacks_change_nothing(self):
        tn = self.submit()
        other = self.submit(service="fard", text="Fard withheld")  # revenue's case
        self.delivered(self.police, tn)
        unknown = self.unknown_tracking()
        rbtest.wait_until(lambda: self.pgs.scalar(
            "SELECT count(*) FROM jobs WHERE kind = 'case.deliver'"
            " AND state IN ('queued', 'running')") == "0", 20,
            what="deliveries to settle")
        before = self.pgs.query("SELECT count(*) FROM case_events")[0][0]
        ack = {"tracking_no": tn, "status": "acknowledged"}
        body = json.dumps(ack).encode()
        now = str(int(time.time()))
        since = self.rd.log_offset()
        cases = [
            ("no signature", self.callback("police", ack, headers={}), 401),
            ("wrong secret", self.callback("police", ack, secret=REVENUE_SECRET), 401),
            ("body changed", self.callback("police", ack, sig=sign(
                POLICE_SECRET, now, body.replace(b"acknowledged", b"in_progress")), ts=now),
             401),
            ("malformed signature", self.callback("police", ack, sig="v1=abc"), 401),
            ("stale", self.callback("police", ack, ts=str(int(time.time()) - WINDOW - 60)),
             401),
            ("future", self.callback("police", ack, ts=str(int(time.time()) + WINDOW + 60)),
             401),
            ("not a number", self.callback("police", ack, ts="yesterday"), 401),
            ("unknown department", self.callback("nowhere", ack), 404),
            ("inbox department", self.callback("health", ack), 404),
            ("unknown case", self.callback("police", {"tracking_no": unknown,
                                                      "status": "acknowledged"}), 404),
            ("another department's case", self.callback("police", {
                "tracking_no": other, "status": "acknowledged"}), 404),
            ("bad JSON", self.callback("police", None, raw=b'{"tracking_no": '), 400),
            ("not an object", self.callback("police", ["acknowledged"]), 400),
            ("no status", self.callback("police", {"tracking_no": tn}), 400),
            ("unknown status", self.callback("police", {"tracking_no": tn,
                                                        "status": "closed"}), 400),
            ("text not a string", self.callback("police", {"tracking_no": tn, "status":
                                                           "resolved", "text": 5}), 400),
            ("text too long", self.callback("police", {"tracking_no": tn, "status": "resolved",
                                                       "text": "x" * 5001}),
             400),
            ("not a tracking number", self.callback("police", {"tracking_no": "12345",
                                                               "status": "acknowledged"}), 400),
            ("oversized", self.callback("police", {"tracking_no": tn, "status": "resolved",
                                                   "text": "y" * 8500}), 413),
        ]
        for what, r, want in cases:
            self.assertEqual(r.status, want, "%s: %r" % (what, r))
            self.assertIn("error", r.json or {}, what)
        self.assertEqual(self.status(tn), "routed")
        self.assertEqual(self.status(other), "routed")
        self.assertEqual(self.pgs.query("SELECT count(*) FROM case_events")[0][0], before,
                         "a refused callback writes nothing")
        self.rd.wait_for_log(r"refused \(401 bad_signature\)", since=since)
        self.rd.wait_for_log(r"refused \(401 stale_timestamp\)", since=since)
        self.rd.wait_for_log(r"refused \(404 not_found\)", since=since)

        # another department's case and an unknown one read the same (fresh signatures: a
        # refused callback's signature is used up too)
        a = self.callback("police", {"tracking_no": unknown, "status": "acknowledged",
                                     "ref": "a"})
        b = self.callback("police", {"tracking_no": other, "status": "acknowledged",
                                     "ref": "b"})
        self.assertEqual((a.status, b.status), (404, 404))
        self.assertEqual(a.json["error"]["message"].replace(unknown, "X"),
                         b.json["error"]["message"].replace(other, "X"))

        # a replay of an accepted callback, within the window
        ts = str(int(time.time()))
        sig = sign(POLICE_SECRET, ts, body)
        first = self.callback("police", None, raw=body, ts=ts, sig=sig)
        self.assertEqual(first.status, 200, first)
        replay = self.callback("police", None, raw=body, ts=ts, sig=sig)
        self.assertEqual(replay.status, 409, replay)
        self.assertEqual(replay.json["error"]["code"], "replayed")
        self.assertEqual(len(self.events(tn, "acknowledge")), 1)
        self.assertEqual(self.pgs.scalar(
            "SELECT count(*) FROM webhook_signatures WHERE signature = '\\x%s'::bytea"
            % sig[3:]), "1", "the signature is remembered in PostgreSQL")

        # docs/database.md: signatures older than twice the window (and a minute) are deleted
        # as callbacks arrive; younger ones stay, as a replay could still be in time.
        self.pgs.psql("INSERT INTO webhook_signatures (signature, department, seen_at) VALUES "
                      "(sha256('old'), 'police', now() - make_interval(secs => %d)), "
                      "(sha256('young'), 'police', now() - make_interval(secs => %d))"
                      % (2 * WINDOW + 120, 2 * WINDOW))
        r = self.callback("police", {"tracking_no": tn, "status": "in_progress", "ref": "later"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.pgs.query(
            "SELECT signature = sha256('young') FROM webhook_signatures WHERE signature IN "
            "(sha256('old'), sha256('young'))"), [["t"]])

    # configuration -------------------------------------------------------------------------
    def test_a_webhook_department_without_usable_settings_stops_the_start(self):
        bad = {
            "no url": '  secret: "%s"\n' % POLICE_SECRET,
            "ftp url": '  url: "ftp://x.example/"\n  secret: "%s"\n' % POLICE_SECRET,
            "unset env": '  url: "http://127.0.0.1:9/"\n  secret_env: RB_TEST_NOT_SET_ANYWHERE\n',
            "short secret": '  url: "http://127.0.0.1:9/"\n  secret: "short"\n',
            "both secrets": '  url: "http://127.0.0.1:9/"\n  secret: "%s"\n  secret_env: %s\n'
                            % (POLICE_SECRET, REVENUE_ENV),
        }
        want = {"no url": "url", "ftp url": "http:// or https://", "unset env": "RB_TEST_NOT_SET_ANYWHERE",
                "short secret": "shorter than 16", "both secrets": "exactly one"}
        # the node each error is placed at: the key's value (the block for a missing key)
        at = {"no url": "secret:", "ftp url": "url:", "unset env": "secret_env:",
              "short secret": "secret:", "both secrets": "secret_env:"}
        for i, (what, block) in enumerate(bad.items()):
            rd = self.rabtad(pg=self.pgs, name="bad%d" % i)
            deps = os.path.join(self.tmp, "deps%d" % i)
            rd.config["departments"] = departments(deps, health=block)
            with open(os.path.join(deps, "health.yaml")) as f:
                lines = f.read().splitlines()
            line = 1 + next(n for n, ln in enumerate(lines) if ln.strip().startswith(at[what]))
            rd.start(wait=False)
            code = rd.wait(30)
            self.assertNotEqual(code, 0, "%s: rabtad started anyway" % what)
            log = rd.log_text()
            pos = re.compile(r"health\.yaml:%d:\d+: " % line)
            self.assertTrue([ln for ln in log.splitlines() if pos.search(ln)
                             and want[what] in ln],
                            "%s: the log must place the error at health.yaml:%d and say what "
                            "is wrong:\n%s" % (what, line, log))

    def test_reload_changes_the_secret_for_deliveries_and_callbacks(self):
        # its own database and server: this one's deliveries must not meet the class's
        pg = self.pg()
        rcv = Receiver(POLICE_SECRET).start()
        self.addCleanup(rcv.stop)
        deps = os.path.join(self.tmp, "deps")

        def police(secret):
            return departments(deps, police=settings(rcv.port, secret))

        rd = self.rabtad(pg=pg, name="hup")
        rd.config["departments"] = police(POLICE_SECRET)
        rd.start()
        main_rd, self.rd = self.rd, rd  # the helpers talk to this server for now
        main_pg, self.pgs = self.pgs, pg
        try:
            first = self.submit()
            self.assertTrue(self.delivered(rcv, first)["valid"])
            new_secret = "a-brand-new-secret-after-rotation"
            police(new_secret)
            since = rd.log_offset()
            rd.send_signal(1)  # SIGHUP
            rd.wait_for_log("configuration reloaded", since=since)
            rcv.secret = new_secret
            second = self.submit()
            self.assertTrue(self.delivered(rcv, second)["valid"],
                            "deliveries are signed with the new secret")
            old = self.callback("police", {"tracking_no": second, "status": "acknowledged"},
                                secret=POLICE_SECRET)
            self.assertEqual(old.status, 401, old)
            new = self.callback("police", {"tracking_no": second, "status": "acknowledged"},
                                secret=new_secret)
            self.assertEqual(new.status, 200, new)
        finally:
            self.rd, self.pgs = main_rd, main_pg

    def test_https_delivery_verifies_the_certificate_against_the_ca_file(self):
        ca, wrong_ca = make_ca(self.tmp, "department-ca"), make_ca(self.tmp, "other-ca")
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(*make_server_cert(self.tmp, ca))
        rcv = Receiver(POLICE_SECRET, tls=tls).start()
        self.addCleanup(rcv.stop)
        pg = self.pg()
        rd = self.rabtad(pg=pg, name="tls")
        rd.config["departments"] = departments(
            os.path.join(self.tmp, "deps"), police='  url: "https://127.0.0.1:%d/p"\n'
            '  secret: "%s"\n' % (rcv.port, POLICE_SECRET))
        rd.config["jobs"] = {"backoff_base": "200ms", "backoff_max": "1s"}
        webhook = {"name": "webhook", "config": {"timeout": "2s", "max_attempts": 40,
                                                 "ca_file": wrong_ca[0]}}
        rd.config["plugins"] = [{"name": "staff_inbox"}, webhook, {"name": "app"}]
        rd.start()
        main_rd, self.rd = self.rd, rd
        main_pg, self.pgs = self.pgs, pg
        try:
            tn = self.submit()
            ev = rbtest.wait_until(lambda: self.events(tn, "webhook.%"), 20,
                                   what="a delivery attempt against the wrong CA")
            data = json.loads(ev[0][3])
            self.assertEqual(data["outcome"], "will_retry", data)
            self.assertIn("TLS: the server's certificate is not trusted", data["error"] or "",
                          data)
            self.assertEqual(rcv.accepted(tn), [], "delivered to an untrusted server")
            # the right CA, by reload: the retried delivery goes through over TLS
            webhook["config"]["ca_file"] = ca[0]
            rd.write_config()
            since = rd.log_offset()
            rd.send_signal(1)  # SIGHUP
            rd.wait_for_log("configuration reloaded", since=since)
            d = self.delivered(rcv, tn)
            self.assertTrue(d["valid"], "bad signature or timestamp over TLS: %r" % d)
            self.assertEqual(d["path"], "/p")
        finally:
            self.rd, self.pgs = main_rd, main_pg

    def test_two_processes_deliver_each_case_once_and_share_the_replay_guard(self):
        pg = self.pg()
        rcv = Receiver(POLICE_SECRET).start()
        self.addCleanup(rcv.stop)
        deps = departments(os.path.join(self.tmp, "deps"),
                           police=settings(rcv.port, POLICE_SECRET))
        procs = []
        for name in ("one", "two"):
            rd = self.rabtad(pg=pg, name=name)
            rd.config["departments"] = deps
            rd.start()
            procs.append(rd)
        body = {"kind": "complaint", "service": "character_certificate", "district": "lahore",
                "language": "en", "text": "Asked for a bribe", "anonymous": True}
        tns = []
        for i in range(20):
            r = procs[i % 2].post("/api/v1/cases", body)
            self.assertEqual(r.status, 201, r)
            tns.append(r.json["tracking_no"])
        rbtest.wait_until(lambda: all(rcv.accepted(tn) for tn in tns), 30,
                          what="all 20 cases delivered")
        self.deliveries_done(tns, db=pg)
        self.assertEqual(sorted(len(rcv.of(tn)) for tn in tns), [1] * 20,
                         "each case delivered exactly once by the two processes together")
        # a callback accepted by one process is a replay for the other
        doc = json.dumps({"tracking_no": tns[0], "status": "acknowledged"}).encode()
        ts = str(int(time.time()))
        h = {"X-Rabta-Timestamp": ts, "X-Rabta-Signature": sign(POLICE_SECRET, ts, doc)}
        a = procs[0].post("/api/v1/departments/police/callback", doc, headers=h)
        b = procs[1].post("/api/v1/departments/police/callback", doc, headers=h)
        self.assertEqual((a.status, b.status), (200, 409), (a, b))

    def unknown_tracking(self):
        """A well-formed tracking number (valid check character) that no case has: a real
        case's number, after that case is given another one."""
        tn = self.submit(anonymous=True, service="treatment_dhq", text="Ward closed")
        self.pgs.psql("UPDATE cases SET tracking_no = 'GONE-' || id WHERE tracking_no = '%s'"
                      % tn)
        return tn


if __name__ == "__main__":
    rbtest.main()
