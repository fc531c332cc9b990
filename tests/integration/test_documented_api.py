"""What docs/api.md says of the core endpoints, citizens' submissions and the staff API, sentence
by sentence where no other file proves it, with the real binary and a real PostgreSQL:

- discovery (`GET /api/v1`), `/api/v1/meta`'s counts of the configuration, `HEAD` wherever
  `GET` is; every `/metrics` series the page names, routes labelled by pattern;
- a request id in the `X-Request-Id` header, in the error body and in the server's log lines;
- `Idempotency-Key` scope: per citizen, one shared scope for anonymous submissions;
- the staff API: 503 overloaded when too many sign-ins wait for a password check, every
  transfer and assign error code, `409 conflict` when the case changed
  between the check and the write, inbox filters (`service`, `district`, `priority`,
  `department`, bad values), a district-scoped account, the answer to an information request
  reaching the citizen's timeline;
- two rabtad processes on one database: a citizen's and a staff token revoked on one stop
  working at once there and within 30 seconds on the other;
- intake while PostgreSQL is down: `503 unavailable`, nothing stored, and stored again once
  it is back;
- an IPv6 client's one-time codes are counted under its /64 (rabtad on [::1])."""
import glob
import json
import os
import secrets
import subprocess
import time

import rbtest
from test_app_auth import SignIn

PASSWORD = "s3cret-pass-word"

# username: (role, department, display name, districts)
STAFF = {
    "d_off_pol": ("officer", "police", "Docs Officer Police", None),
    "d_sup_pol": ("supervisor", "police", "Docs Supervisor Police", None),
    "d_off_kasur": ("officer", "police", "Docs Officer Kasur", "kasur"),
    "d_off_rev": ("officer", "revenue", "Docs Officer Revenue", None),
    "d_sup_rev": ("supervisor", "revenue", "Docs Supervisor Revenue", None),
    "d_ovs": ("oversight", None, "Docs Oversight", None),
    "d_adm": ("admin", None, "Docs Admin", None),
}


def staff_cli(rd, args, stdin=""):
    return subprocess.run([rbtest.RABTAD, "staff", "-c", rd.config_path] + args, input=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)


def add_staff(rd, users):
    for user, (role, dept, name, districts) in users.items():
        args = ["add", user, "--role", role, "--name", name]
        if dept:
            args += ["--department", dept]
        if districts:
            args += ["--districts", districts]
        r = staff_cli(rd, args, PASSWORD + "\n")
        assert r.returncode == 0, "staff add %s: %s" % (user, r.stderr)


class StaffCalls:
    """Mixin: staff sign-in and calls against self.rd (tokens cached per class)."""

    def token(self, user, rd=None):
        tokens = type(self).tokens
        if user not in tokens:
            r = (rd or self.rd).post("/api/v1/staff/login", {"username": user,
                                                             "password": PASSWORD})
            self.assertEqual(r.status, 200, r)
            tokens[user] = r.json["token"]
        return tokens[user]

    def as_(self, user):
        return {"Authorization": "Bearer " + self.token(user)}

    def sget(self, path, user):
        return self.rd.get("/api/v1/staff" + path, headers=self.as_(user))

    def act(self, tn, action, user, body=None):
        return self.rd.post("/api/v1/staff/cases/%s/%s" % (tn, action), body or {},
                            headers=self.as_(user))

    def inbox(self, query, user):
        r = self.sget("/inbox?limit=200&" + query, user)
        self.assertEqual(r.status, 200, "inbox?%s as %s: %r" % (query, user, r))
        return [c["tracking_no"] for c in r.json["cases"]]


class DocumentedApiTest(SignIn, StaffCalls, rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()
        cfg = rbtest.default_config(0, os.path.join(cls.class_tmp(), "rabtad", "state"),
                                    cls.pgs.url())
        cfg["log"]["level"] = "debug"  # the per-request line carries the request id
        cls.rd = cls.class_rabtad(pg=cls.pgs, config=cfg)
        add_staff(cls.rd, STAFF)
        cls.tokens = {}

    def submit(self, token=None, **fields):
        body = dict({"kind": "complaint", "service": "character_certificate",
                     "district": "lahore", "language": "en",
                     "text": "The clerk keeps sending me back for one more paper"}, **fields)
        h = self.auth(token) if token else {}
        if not token:
            body["anonymous"] = True
        r = self.rd.post("/api/v1/cases", body, headers=h)
        self.assertEqual(r.status, 201, r)
        return r.json["tracking_no"]

    # core ---------------------------------------------------------------------------------
    def test_discovery_and_meta_describe_this_server(self):
        r = self.rd.get("/api/v1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"api": "rabta", "version": "v1",
                                  "documentation": "docs/api.md"})
        m = self.rd.get("/api/v1/meta")
        self.assertEqual(m.status, 200, m)
        v = rbtest.run_rabtad(["--version"]).stdout
        self.assertIn(m.json["version"], v, "meta's version is the binary's")
        self.assertIsInstance(m.json["plugin_abi"], int)
        self.assertIn(str(m.json["plugin_abi"]), v)
        self.assertEqual(m.json["departments"],
                         len(glob.glob(self.rd.config["departments"])), m)
        self.assertEqual(m.json["services"], len(glob.glob(self.rd.config["services"])), m)
        with open(self.rd.config["districts"]) as f:
            districts = sum(1 for line in f if line.startswith("- id:"))
        self.assertEqual(m.json["districts"], districts, m)
        self.assertEqual(m.json["plugins"], [p["name"] for p in self.rd.config["plugins"]])
        # HEAD is answered wherever GET is: the same status and headers, no body
        for path in ("/healthz", "/api/v1", "/api/v1/meta", "/metrics"):
            h = self.rd.request("HEAD", path)
            self.assertEqual(h.status, 200, "HEAD %s: %r" % (path, h))
            self.assertEqual(h.body, b"", "HEAD %s has no body" % path)

    def test_metrics_has_every_documented_series_labelled_by_route_pattern(self):
        tn = self.submit()
        r = self.rd.get("/api/v1/cases/%s?phone_last4=0000" % tn)
        self.assertEqual(r.status, 404, r)
        # rabta_jobs_processed_total{kind,outcome} has a series once a job has run (the
        # case's delivery to its department)
        r = rbtest.wait_until(lambda: (lambda m: m if "rabta_jobs_processed_total{" in m.text
                                       else None)(self.rd.get("/metrics")), 15.0,
                              what="a job run counted on /metrics")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("content-type"),
                         "text/plain; version=0.0.4; charset=utf-8")
        names = {s[0] for s in rbtest.parse_metrics(r.text)}
        for series in ("rabta_http_requests_total", "rabta_http_request_duration_seconds_bucket",
                       "rabta_db_pool_size", "rabta_db_pool_connected", "rabta_db_pool_busy",
                       "rabta_db_pool_waiting", "rabta_db_queries", "rabta_db_query_failures",
                       "rabta_db_reconnects", "rabta_intake_cases_total",
                       "rabta_intake_batches_total", "rabta_routing_failures_total",
                       "rabta_jobs_running", "rabta_jobs_due", "rabta_jobs_dead",
                       "rabta_jobs_started_total", "rabta_jobs_processed_total",
                       "rabta_jobs_lateness_seconds_sum", "rabta_uptime_seconds"):
            self.assertTrue(any(n == series or n.startswith(series + "_") for n in names),
                "/metrics lacks %s (has %s)" % (series, sorted(names)))
        routes = {s[1].get("route") for s in rbtest.parse_metrics(r.text)
                  if s[0] == "rabta_http_requests_total"}
        self.assertIn("/api/v1/cases/:tracking", routes)
        self.assertFalse([x for x in routes if x and tn in x], "a raw path as a label: %s" % routes)
        self.assertGreaterEqual(rbtest.metric_sum(rbtest.parse_metrics(r.text),
                                                  "rabta_intake_cases_total"), 1)

    def test_the_request_id_is_in_the_header_the_error_and_the_log(self):
        r = self.rd.get("/api/v1/cases/RB-12?phone_last4=1234")
        err = self.assertErrorJSON(r, 400, "invalid_tracking_number")
        self.assertEqual(r.headers.get("x-request-id"), err["request_id"])
        ok = self.rd.get("/healthz")
        self.assertTrue(ok.headers.get("x-request-id"), "a 200 carries X-Request-Id too")
        self.assertNotEqual(ok.headers["x-request-id"], err["request_id"])
        for rid in (err["request_id"], ok.headers["x-request-id"]):
            line = self.rd.wait_for_log(r'"ctx":"%s"' % rid, timeout=10.0)
            self.assertEqual(json.loads(line)["ctx"], rid)
        # and a staff action's own log line carries the id of its request
        tn = self.submit()
        a = self.act(tn, "acknowledge", "d_off_pol")
        self.assertEqual(a.status, 200, a)
        line = self.rd.wait_for_log(r'"ctx":"%s".*acknowledge by d_off_pol'
                                    % a.headers["x-request-id"], timeout=10.0)
        self.assertIn(tn, line)

    def test_idempotency_keys_are_per_citizen_and_shared_by_anonymous_submissions(self):
        key = {"Idempotency-Key": "docs-" + secrets.token_hex(6)}
        _, t1 = self.sign_in()
        _, t2 = self.sign_in()
        body = {"kind": "complaint", "service": "fard", "district": "lahore", "language": "en",
                "text": "The patwari asked for money to issue my fard"}
        a = self.rd.post("/api/v1/cases", body, headers=dict(key, **self.auth(t1)))
        self.assertEqual(a.status, 201, a)
        other = dict(body, text="Another citizen, another complaint, the same key")
        b = self.rd.post("/api/v1/cases", other, headers=dict(key, **self.auth(t2)))
        self.assertEqual(b.status, 201, "another citizen's key is another scope: %r" % b)
        self.assertNotEqual(a.json["tracking_no"], b.json["tracking_no"])
        again = self.rd.post("/api/v1/cases", body, headers=dict(key, **self.auth(t1)))
        self.assertEqual((again.status, again.json["tracking_no"]), (201, a.json["tracking_no"]))
        # anonymous submissions share one scope: the same key with another body is refused
        anon = dict(body, anonymous=True)
        c = self.rd.post("/api/v1/cases", anon, headers=key)
        self.assertEqual(c.status, 201, "anonymous scope is not a citizen's: %r" % c)
        before = self.pgs.scalar("SELECT count(*) FROM cases")
        d = self.rd.post("/api/v1/cases", dict(anon, text="Someone else, anonymous, same key"),
                         headers=key)
        self.assertErrorJSON(d, 422, "idempotency_conflict")
        self.assertEqual(self.pgs.scalar("SELECT count(*) FROM cases"), before, "nothing stored")

    # staff API ----------------------------------------------------------------------------
    def test_every_transfer_error_code(self):
        tn = self.submit()
        cases = [
            ("d_off_pol", {"department": "revenue"}, 400, "missing_field"),
            ("d_off_pol", {"reason": "no department"}, 400, "missing_field"),
            ("d_off_pol", {"department": "atlantis", "reason": "x"}, 422, "unknown_department"),
            ("d_off_pol", {"department": "police", "reason": "x"}, 409, "invalid_transition"),
            ("d_ovs", {"department": "revenue", "reason": "x"}, 403, "forbidden"),
            ("d_off_rev", {"department": "revenue", "reason": "x"}, 404, "not_found"),
        ]
        for user, body, status, code in cases:
            r = self.act(tn, "transfer", user, body)
            self.assertErrorJSON(r, status, code)
        self.assertEqual(self.pgs.query("SELECT department_id, status FROM cases WHERE"
                                        " tracking_no = '%s'" % tn), [["police", "routed"]])
        r = self.act(tn, "transfer", "d_off_pol", {"department": "revenue", "reason": "Land"})
        self.assertEqual((r.status, r.json["from_status"], r.json["status"]),
                         (200, "routed", "transferred"), r)
        r = self.act(tn, "resolve", "d_off_rev", {"note": "Done"})
        self.assertErrorJSON(r, 409, "invalid_transition")
        self.act(tn, "acknowledge", "d_off_rev")
        self.assertEqual(self.act(tn, "reject", "d_sup_rev", {"reason": "Duplicate"}).status, 200)
        r = self.act(tn, "transfer", "d_sup_rev", {"department": "police", "reason": "back"})
        self.assertErrorJSON(r, 409, "invalid_transition")

    def test_every_assign_error_code(self):
        tn = self.submit(official="Docs Officer Kasur", district="kasur")
        cases = [
            ("d_sup_pol", {}, 400, "missing_field"),
            ("d_sup_pol", {"username": "nobody_here"}, 422, "unknown_staff"),
            ("d_sup_pol", {"username": "d_off_rev"}, 409, "wrong_department"),
            ("d_sup_pol", {"username": "d_ovs"}, 409, "wrong_department"),
            ("d_sup_pol", {"username": "d_off_kasur"}, 409, "names_official"),
            ("d_off_pol", {"username": "d_sup_pol"}, 403, "forbidden"),
            ("d_ovs", {"username": "d_off_pol"}, 403, "forbidden"),
        ]
        for user, body, status, code in cases:
            r = self.act(tn, "assign", user, body)
            self.assertErrorJSON(r, status, code)
        self.assertEqual(self.pgs.scalar("SELECT count(*) FROM case_events e JOIN cases c ON"
                                         " c.id = e.case_id WHERE c.tracking_no = '%s' AND"
                                         " e.event = 'assigned'" % tn), "0")
        r = self.act(tn, "assign", "d_off_pol", {"username": "d_off_pol"})
        self.assertEqual(r.status, 200, "an officer takes the case: %r" % r)
        self.assertEqual(self.sget("/cases/" + tn, "d_sup_pol").json["assigned_to"], "d_off_pol")
        self.assertEqual(self.act(tn, "reject", "d_sup_pol", {"reason": "Duplicate"}).status, 200)
        r = self.act(tn, "assign", "d_sup_pol", {"username": "d_off_pol"})
        self.assertErrorJSON(r, 409, "invalid_transition")

    def test_a_case_changed_between_the_check_and_the_write_is_409_conflict(self):
        tn = self.submit()
        token = self.token("d_off_pol")
        # Another writer holds the case row and has already moved it on (not yet committed):
        # the staff API reads "routed", allows acknowledge, and its statement waits for the row.
        other = subprocess.Popen(
            [os.path.join(self.pgs.bindir, "psql"), "-X", "-qAt", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.pgs.port), "-U", rbtest.PG_USER,
             "-d", self.pgs.dbname], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, universal_newlines=True)
        try:
            other.stdin.write("BEGIN; UPDATE cases SET status = 'acknowledged',"
                              " acknowledged_at = now() WHERE tracking_no = '%s';"
                              " SELECT 'locked';\n" % tn)
            other.stdin.flush()
            self.assertEqual(other.stdout.readline().strip(), "locked")
            th = rbtest.BackgroundThread(
                lambda: self.rd.post("/api/v1/staff/cases/%s/acknowledge" % tn, {},
                                     headers={"Authorization": "Bearer " + token},
                                     timeout=30.0)).start()
            rbtest.wait_until(lambda: self.pgs.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE '%%case%%'") != "0", 15.0,
                what="the staff API's statement to wait for the case row")
            other.stdin.write("COMMIT;\n")
            other.stdin.close()
            r = th.join(30.0)
        finally:
            other.wait(30)
        self.assertErrorJSON(r, 409, "conflict")
        self.assertIn(tn, r.json["error"]["message"])
        self.assertEqual(self.pgs.scalar(
            "SELECT count(*) FROM case_events e JOIN cases c ON c.id = e.case_id"
            " WHERE c.tracking_no = '%s' AND e.event = 'acknowledge'" % tn), "0",
            "the refused step wrote no event")

    def test_inbox_filters_and_bad_values(self):
        fir = self.submit(service="fir_registration", district="multan")
        bribe = self.submit(service="character_certificate", district="multan",
                            text="The moharrir demanded a bribe of 5000 rupees for the report")
        land = self.submit(service="fard", district="multan")
        self.assertIn(fir, self.inbox("service=fir_registration", "d_off_pol"))
        self.assertNotIn(bribe, self.inbox("service=fir_registration", "d_off_pol"))
        by_district = self.inbox("district=multan", "d_sup_pol")
        self.assertIn(fir, by_district)
        self.assertIn(bribe, by_district)
        self.assertNotIn(land, by_district, "another department's case")
        p1 = self.inbox("priority=1&district=multan", "d_sup_pol")
        self.assertEqual(p1, [bribe], "only the priority-1 (corruption) case")
        self.assertNotIn(bribe, self.inbox("priority=3&district=multan", "d_sup_pol"))
        # oversight sees every department and narrows with department=
        everything = self.inbox("district=multan", "d_ovs")
        self.assertTrue({fir, bribe, land} <= set(everything), everything)
        self.assertEqual(set(self.inbox("district=multan&department=revenue", "d_ovs")) &
                         {fir, bribe, land}, {land})
        # status= gives that status (closed ones too) instead of the open ones
        self.assertEqual(self.act(land, "reject", "d_sup_rev", {"reason": "Dup"}).status, 200)
        self.assertNotIn(land, self.inbox("district=multan", "d_ovs"))
        self.assertIn(land, self.inbox("status=rejected", "d_ovs"))
        for q in ("priority=0", "priority=6", "priority=x", "limit=0", "limit=201",
                  "overdue=maybe", "status=nonsense", "cursor=garbage", "district=atlantis",
                  "service=nothing_like_it"):
            r = self.sget("/inbox?" + q, "d_sup_pol")
            self.assertEqual(r.status, 400, "inbox?%s: %r" % (q, r))
            self.assertErrorJSON(r, 400, "invalid_field")
        self.assertErrorJSON(self.sget("/inbox?department=atlantis", "d_ovs"), 400,
                             "invalid_field")

    def test_an_account_with_districts_sees_only_those(self):
        lahore = self.submit(district="lahore")
        kasur = self.submit(district="kasur")
        self.assertEqual(self.sget("/me", "d_off_kasur").json["districts"], ["kasur"])
        seen = self.inbox("", "d_off_kasur")
        self.assertIn(kasur, seen)
        self.assertNotIn(lahore, seen)
        self.assertErrorJSON(self.sget("/cases/" + lahore, "d_off_kasur"), 404, "not_found")
        self.assertErrorJSON(self.act(lahore, "acknowledge", "d_off_kasur"), 404, "not_found")
        # scope is decided before the body: a bad body on an out-of-scope case is still 404
        self.assertErrorJSON(self.act(lahore, "transfer", "d_off_kasur", {"bogus": 1}), 404,
                             "not_found")
        self.assertEqual(self.act(kasur, "acknowledge", "d_off_kasur").status, 200)
        self.assertIn(lahore, self.inbox("", "d_off_pol"), "no districts: the whole department")

    def test_too_many_sign_ins_waiting_for_a_password_check_are_503_overloaded(self):
        import concurrent.futures
        n = 160  # far more than the 64 that may wait for the two hashing threads

        def login(i):
            return self.rd.post("/api/v1/staff/login", {"username": "burst_%03d" % i,
                                                        "password": "wrong-password"},
                                timeout=120.0)

        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            answers = list(pool.map(login, range(n)))
        busy = [r for r in answers if r.status == 503]
        self.assertTrue(busy, "no 503 among %d simultaneous sign-ins: %s"
                        % (n, sorted({r.status for r in answers})))
        for r in busy:
            self.assertErrorJSON(r, 503, "overloaded")
            self.assertEqual(r.headers.get("retry-after"), "1")
        self.assertEqual({r.status for r in answers} - {401, 503}, set(),
                         "every other one is checked (unknown user: 401)")
        self.assertEqual(self.rd.get("/healthz").status, 200)

    def test_the_staff_answer_reaches_the_citizen(self):
        phone, token = self.sign_in()
        tn = self.submit(token, kind="information", service="fard",
                         text="How long does a fard take to be issued?")
        r = self.act(tn, "answer", "d_off_rev", {"answer": "Two working days"})
        self.assertErrorJSON(r, 409, "invalid_transition")
        self.assertEqual(self.act(tn, "acknowledge", "d_off_rev").status, 200)
        self.assertErrorJSON(self.act(tn, "answer", "d_off_rev", {}), 400, "missing_field")
        r = self.act(tn, "answer", "d_off_rev", {"answer": "Two working days"})
        self.assertEqual((r.status, r.json["from_status"], r.json["status"]),
                         (200, "acknowledged", "answered"), r)
        st = self.rd.get("/api/v1/cases/%s" % tn, headers=self.auth(token))
        self.assertEqual((st.status, st.json["status"]), (200, "answered"), st)
        self.assertIsNone(st.json["sla"]["time_left"], "no time left once answered")
        tl = self.rd.get("/api/v1/cases/%s/timeline" % tn, headers=self.auth(token))
        self.assertIn("Two working days", tl.text, "the answer in the citizen's timeline")
        rbtest.wait_until(lambda: self.pgs.scalar(
            "SELECT count(*) FROM messages WHERE to_address = '%s' AND body LIKE"
            " '%%Two working days%%'" % phone) != "0" or self.pgs.scalar(
            "SELECT count(*) FROM messages WHERE to_address = '%s' AND template ="
            " 'notice.answer'" % phone) != "0", 15.0, what="the answer's SMS to be queued")


class TwoProcessesTest(SignIn, StaffCalls, rbtest.TestCase):
    """Two rabtad processes on one database: sign-outs reach the other within 30 s."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()
        cls.rd = cls.class_rabtad(pg=cls.pgs, name="a")
        cls.rb = cls.class_rabtad(pg=cls.pgs, name="b")
        add_staff(cls.rd, {"d_two": ("officer", "police", "Two Processes", None)})
        cls.tokens = {}

    def assert_revoked_across(self, use_b, logout_a, what):
        self.assertEqual(use_b().status, 200, "%s works on b (and b caches it)" % what)
        self.assertEqual(logout_a(), True)
        t0 = time.monotonic()
        rbtest.wait_until(lambda: use_b().status == 401, 40.0,
                          what="b to refuse the %s revoked on a" % what)
        self.assertLess(time.monotonic() - t0, 35.0, "%s refused on b within 30 s" % what)

    def test_revoked_tokens_stop_working_on_the_other_process_within_30_s(self):
        _, ctok = self.sign_in()
        stok = self.token("d_two")
        h_c, h_s = self.auth(ctok), {"Authorization": "Bearer " + stok}

        def logout_citizen():
            r = self.rd.post("/api/v1/logout", {}, headers=h_c)
            self.assertEqual(r.status, 204, r)
            self.assertErrorJSON(self.rd.get("/api/v1/me/cases", headers=h_c), 401)
            return True

        def logout_staff():
            r = self.rd.post("/api/v1/staff/logout", {}, headers=h_s)
            self.assertEqual(r.status, 200, r)
            self.assertErrorJSON(self.rd.get("/api/v1/staff/me", headers=h_s), 401)
            return True

        citizen = rbtest.BackgroundThread(
            self.assert_revoked_across,
            lambda: self.rb.get("/api/v1/me/cases", headers=h_c), logout_citizen,
            "citizen token").start()
        self.assert_revoked_across(lambda: self.rb.get("/api/v1/staff/me", headers=h_s),
                                   logout_staff, "staff token")
        citizen.join(60.0)


class Ipv6AddressLimitTest(rbtest.TestCase):
    """The one-time codes' per-address limit for an IPv6 client, counted by its /64."""

    def test_an_ipv6_client_is_limited_by_its_64(self):
        pg = self.pg()
        rd = self.rabtad(pg=pg)
        rd.config["server"]["listen"] = "[::1]:0"
        for p in rd.config["plugins"]:
            if p["name"] == "app":
                p["config"] = {"otp_per_address": 2}
        rd.start(wait=False)
        rbtest.wait_until(lambda: rd.port, 30.0, what="rabtad to report its port")

        def register(phone):
            return rbtest.http_request(rd.port, "POST", "/api/v1/register", {"phone": phone},
                                       host="::1")

        rbtest.wait_until(lambda: rbtest.http_request(rd.port, "GET", "/healthz",
                                                      host="::1").status == 200, 30.0,
                          what="rabtad to answer on [::1]")
        for phone in ("+923009990001", "+923009990002"):
            self.assertEqual(register(phone).status, 202)
        r = register("+923009990003")
        self.assertErrorJSON(r, 429, "rate_limited")
        self.assertEqual(r.headers.get("retry-after"), str(r.json["error"]["retry_after"]))
        self.assertEqual(pg.query("SELECT address, cardinality(sent_at) FROM"
                                  " citizen_otp_address_limits"), [["::/64", "2"]],
                         "counted under the client's /64, not its own address")
        self.assertEqual(pg.scalar("SELECT count(*) FROM messages WHERE to_address ="
                                   " '+923009990003'"), "0", "no SMS for the refused one")


class IntakeWhileDatabaseDownTest(rbtest.TestCase):
    def test_submissions_while_postgres_is_down_are_503_and_nothing_is_lost(self):
        pg = self.pg()
        rd = self.rabtad(pg=pg, start=False)
        # a wait for a connection would take this long: "at once" is long before it
        rd.config["database"]["connect_timeout"] = "60s"
        rd.start()
        body = {"kind": "complaint", "service": "fard", "district": "lahore",
                "anonymous": True, "text": "Submitted while the database is down"}
        # a fresh process shows its counters at 0 before anything happened
        fresh = {s[0]: s[2] for s in rd.metrics() if not s[1]}
        for series in ("rabta_intake_cases_total", "rabta_intake_batches_total",
                       "rabta_routing_failures_total", "rabta_jobs_started_total",
                       "rabta_jobs_lateness_seconds_sum"):
            self.assertEqual(fresh.get(series), 0, "%s at 0 on a fresh start" % series)
        self.assertEqual(rd.post("/api/v1/cases", dict(body, text="before")).status, 201)
        pg.stop("fast")
        t0 = time.monotonic()
        r = rd.post("/api/v1/cases", body, headers={"Idempotency-Key": "down-1"}, timeout=90.0)
        self.assertErrorJSON(r, 503, "unavailable")
        self.assertLess(time.monotonic() - t0, 20.0, "refused at once, not after waiting for "
                        "the database (connect_timeout 60 s)")
        pg.start()
        r = rbtest.wait_until(lambda: (lambda x: x if x.status == 201 else None)(
            rd.post("/api/v1/cases", body, headers={"Idempotency-Key": "down-1"})), 30.0,
            interval=0.5, what="intake to take cases again")
        self.assertEqual(pg.query("SELECT text FROM cases ORDER BY id"),
                         [["before"], ["Submitted while the database is down"]],
                         "the refused try stored nothing; the retry stored the case once")


if __name__ == "__main__":
    rbtest.main()
