"""Staff accounts, sessions and the staff API (core/staff/staff_account.c, core/staff/staff_api.c,
core/cli/cli_staff.c) with the real binary and a real PostgreSQL: sign-in (ok, wrong, unknown,
lock-out after 5 failures, counted in the database), sign-out; the scope matrix (every
endpoint x every kind of caller on one department's case); the whole road of an anonymous
complaint from the app to the inbox, acknowledgement, resolution and the citizen's rating;
transfer between departments; comments (internal ones never reach the citizen); assignment
(never to the official the case names); actions on officials; the CLI; and /healthz staying
fast while 20 sign-ins hash passwords."""
import concurrent.futures
import statistics
import subprocess
import threading
import time
import urllib.parse

import rbtest
from test_app_auth import SignIn

PASSWORD = "s3cret-pass-word"

# username: (role, department, display name)
STAFF = {
    "off_pol": ("officer", "police", "Officer Police"),
    "off_pol2": ("officer", "police", "Rashid Mehmood"),
    "sup_pol": ("supervisor", "police", "Supervisor Police"),
    "off_rev": ("officer", "revenue", "Officer Revenue"),
    "sup_rev": ("supervisor", "revenue", "Supervisor Revenue"),
    "ovs": ("oversight", None, "Oversight Cell"),
    "adm": ("admin", None, "Administrator"),
    "locky": ("officer", "police", "Locky"),
    "cli_user": ("officer", "police", "Cli User"),
}


class StaffTest(SignIn, rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()
        cls.rd = cls.class_rabtad(pg=cls.pgs)
        for user, (role, dept, name) in STAFF.items():
            args = ["add", user, "--role", role, "--name", name]
            if dept:
                args += ["--department", dept]
            r = cls.cli(args, PASSWORD + "\n")
            assert r.returncode == 0, "staff add %s: %s" % (user, r.stderr)
        cls.tokens = {}
        # Actions name a registered official (docs/feedback.md).
        cls.pgs.psql("INSERT INTO offices (id, name_en, department_id, district_id) VALUES"
                     " ('lhr-ps', 'Police Station Lahore', 'police', 'lahore');"
                     " INSERT INTO officials (id, name, office_id) VALUES"
                     " ('clerk-1', 'Some Clerk', 'lhr-ps')")

    @classmethod
    def cli(cls, args, stdin=""):
        return subprocess.run([rbtest.RABTAD, "staff", "-c", cls.rd.config_path] + args,
                              input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=60)

    # helpers --------------------------------------------------------------------------------
    def login(self, user, password=PASSWORD):
        return self.rd.post("/api/v1/staff/login", {"username": user, "password": password})

    def token(self, user):
        if user not in self.tokens:
            r = self.login(user)
            self.assertEqual(r.status, 200, r)
            self.tokens[user] = r.json["token"]
        return self.tokens[user]

    def as_(self, user):
        return {"Authorization": "Bearer " + self.token(user)} if user else {}

    def get(self, path, user):
        return self.rd.get("/api/v1/staff" + path, headers=self.as_(user))

    def act(self, tn, action, user, body=None):
        return self.rd.post("/api/v1/staff/cases/%s/%s" % (tn, action), body or {},
                            headers=self.as_(user))

    def submit(self, token, service="character_certificate", **extra):
        body = dict({"kind": "complaint", "service": service, "district": "lahore",
                     "language": "en", "text": "Asked for a bribe to issue the certificate"},
                    **extra)
        r = self.rd.post("/api/v1/cases", body, headers=self.auth(token))
        self.assertEqual(r.status, 201, r)
        return r.json["tracking_no"]

    def new_case(self, **extra):
        _, token = self.sign_in()
        tn = self.submit(token, **extra)
        return tn, token

    def row(self, tn, cols):
        return self.pgs.query("SELECT %s FROM cases WHERE tracking_no = '%s'" % (cols, tn))[0]

    def events(self, tn):
        return [tuple(r) for r in self.pgs.query(
            "SELECT e.event, coalesce(e.from_status, ''), coalesce(e.to_status, ''),"
            " e.actor_type, coalesce(e.actor_id, '') FROM case_events e"
            " JOIN cases c ON c.id = e.case_id WHERE c.tracking_no = '%s' ORDER BY e.id" % tn)]

    # sign-in ---------------------------------------------------------------------------------
    def test_login_gives_a_12_hour_token_and_logout_revokes_it(self):
        r = self.login("sup_pol")
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["role"], r.json["department"]), ("supervisor", "police"))
        tok = r.json["token"]
        self.assertEqual(len(tok), 43)
        hours = float(self.pgs.scalar(
            "SELECT extract(epoch from expires_at - created_at) / 3600 FROM staff_tokens "
            "WHERE token_hash = sha256(convert_to('%s', 'UTF8'))" % tok))
        self.assertAlmostEqual(hours, 12.0, places=2)
        self.assertEqual(int(self.pgs.scalar("SELECT count(*) FROM staff_tokens WHERE "
                                             "token_hash = convert_to('%s', 'UTF8')" % tok)),
                         0, "the token itself must not be stored, only its hash")
        h = {"Authorization": "Bearer " + tok}
        me = self.rd.get("/api/v1/staff/me", headers=h)
        self.assertEqual((me.status, me.json["username"]), (200, "sup_pol"), me)
        out = self.rd.post("/api/v1/staff/logout", {}, headers=h)
        self.assertEqual(out.status, 200, out)
        again = self.rd.get("/api/v1/staff/me", headers=h)
        self.assertEqual(again.status, 401, "a revoked token must stop working at once")

    def test_wrong_password_and_unknown_user_get_the_same_answer(self):
        wrong = self.login("off_rev", "not-the-password")
        unknown = self.login("nobody_here", "not-the-password")
        self.assertEqual((wrong.status, unknown.status), (401, 401))
        self.assertEqual(wrong.json["error"]["message"], unknown.json["error"]["message"])
        self.assertEqual(self.login("off_rev", "").status, 400)

    def test_unknown_user_costs_the_same_time_as_a_wrong_password(self):
        def timed(user):
            t = time.monotonic()
            self.assertEqual(self.login(user, "not-the-password").status, 401)
            return time.monotonic() - t
        known = statistics.median(timed("adm") for _ in range(3))
        unknown = statistics.median(timed("ghost_%d" % i) for i in range(3))
        self.pgs.psql("DELETE FROM staff_login_attempts")
        self.assertGreater(unknown, known * 0.5,
                           "unknown users must be verified against a dummy hash (known %.3fs, "
                           "unknown %.3fs)" % (known, unknown))

    def test_five_failures_lock_the_account_for_15_minutes(self):
        statuses = [self.login("locky", "wrong-%d" % i).status for i in range(5)]
        self.assertEqual(statuses, [401, 401, 401, 401, 429])
        self.assertEqual(self.pgs.query(
            "SELECT failures, locked_until > now() + interval '14 minutes' FROM "
            "staff_login_attempts WHERE username = 'locky'"), [["5", "t"]])
        ok_but_locked = self.login("locky")
        self.assertEqual(ok_but_locked.status, 429, "the right password must not open a "
                                                    "locked account")
        self.assertIn("locked", ok_but_locked.json["error"]["message"])
        self.assertIn("retry-after", ok_but_locked.headers)
        # unknown names lock the same way: the lock-out reveals nothing
        ghost = [self.login("ghost_lock", "x%d" % i).status for i in range(6)]
        self.assertEqual(ghost, [401, 401, 401, 401, 429, 429])
        # time passes
        self.pgs.psql("UPDATE staff_login_attempts SET locked_until = now() - interval '1s', "
                      "last_failed_at = now() - interval '16 minutes' WHERE username = 'locky'")
        r = self.login("locky")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.pgs.scalar("SELECT count(*) FROM staff_login_attempts WHERE "
                                         "username = 'locky'"), "0")

    def test_parallel_wrong_guesses_on_two_processes_get_at_most_five_checks(self):
        """The lock is decided in the statement that claims a password check: 24 wrong guesses
        at once, half through a second rabtad on the same database, get at most 5 checks (the
        5th answers 429, so at most 4 answer 401) and every other one is refused as locked."""
        self.cli(["add", "racer", "--role", "officer", "--department", "police", "--name",
                  "Racer"], PASSWORD + "\n")
        rd2 = self.rabtad(pg=self.pgs, name="rabtad_second", start=True)
        servers = [self.rd, rd2]

        def guess(i):
            return servers[i % 2].post("/api/v1/staff/login",
                                       {"username": "racer", "password": "wrong-%d" % i}).status
        with concurrent.futures.ThreadPoolExecutor(24) as ex:
            statuses = list(ex.map(guess, range(24)))
        self.assertLessEqual(statuses.count(401), 4,
                             "more than 5 password checks before the lock: %s" % statuses)
        # the lock is set by the failures: the guesses refused while checks were under way
        # locked nothing by themselves
        self.assertEqual(statuses.count(401) + statuses.count(429), 24, statuses)
        self.assertEqual(self.pgs.query(
            "SELECT failures <= 5, locked_until > now() FROM staff_login_attempts"
            " WHERE username = 'racer'"), [["t", "t"]])
        self.assertEqual(self.login("racer").status, 429, "the lock must hold for the right "
                                                          "password too")

    def test_a_scoped_role_without_a_department_sees_nothing(self):
        """The schema refuses an enabled officer or supervisor without a department (migration
        0048), and a token of one that exists all the same (disabled, then enabled with the
        check switched off, as an old database could hold it) opens nothing."""
        for role in ("officer", "supervisor"):
            with self.assertRaises(Exception, msg="a %s without a department" % role) as cm:
                self.pgs.psql("INSERT INTO staff (username, role) VALUES ('nodept_%s', '%s')"
                              % (role, role))
            self.assertIn("staff_scoped_role_has_department", str(cm.exception))
        self.new_case()
        r = self.cli(["add", "nodept", "--role", "officer", "--department", "police", "--name",
                      "No Dept"], PASSWORD + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        token = self.login("nodept").json["token"]
        self.pgs.psql("ALTER TABLE staff DROP CONSTRAINT staff_scoped_role_has_department;"
                      " UPDATE staff SET department_id = NULL WHERE username = 'nodept'")
        try:
            for path in ("/inbox?limit=200", "/reports/sla?from=2026-01-01&to=2026-12-31"):
                r = self.rd.get("/api/v1/staff" + path,
                                headers={"Authorization": "Bearer " + token})
                self.assertEqual(r.status, 401, "%s for an officer without a department: %r"
                                 % (path, r))
        finally:
            self.pgs.psql("UPDATE staff SET disabled_at = now() WHERE username = 'nodept';"
                          " ALTER TABLE staff ADD CONSTRAINT staff_scoped_role_has_department"
                          " CHECK (role NOT IN ('officer', 'supervisor') OR disabled_at IS NOT"
                          " NULL OR (department_id IS NOT NULL AND department_id <> ''))")

    def test_failed_sign_ins_at_new_names_do_not_grow_the_table(self):
        self.pgs.psql("INSERT INTO staff_login_attempts (username, failures, last_failed_at)"
                      " SELECT 'stale_' || i, 1, now() - interval '16 minutes'"
                      " FROM generate_series(1, 150) i")
        self.pgs.psql("INSERT INTO staff_login_attempts (username, failures, last_failed_at,"
                      " locked_until) VALUES ('stale_locked', 5, now() - interval '16 minutes',"
                      " now() + interval '1 minute'), ('fresh_one', 1, now(), NULL)")
        for i in range(2):
            self.assertEqual(self.login("never_seen_%d" % i, "x").status, 401)
        left = self.pgs.query("SELECT username FROM staff_login_attempts WHERE username LIKE"
                              " 'stale%' OR username IN ('fresh_one') ORDER BY 1")
        self.assertEqual(left, [["fresh_one"], ["stale_locked"]],
                         "rows that no longer count must go; a lock and a recent failure stay")

    def test_anything_without_a_valid_token_is_401(self):
        for method, path in [("GET", "/me"), ("GET", "/inbox"), ("GET", "/cases/ABCD-1234"),
                             ("POST", "/cases/ABCD-1234/resolve"), ("POST", "/logout")]:
            for h in [{}, {"Authorization": "Bearer " + "x" * 43},
                      {"Authorization": "Basic abc"}]:
                r = self.rd.request(method, "/api/v1/staff" + path,
                                    {} if method == "POST" else None, headers=h)
                self.assertEqual(r.status, 401, "%s %s with %s: %r" % (method, path, h, r))

    # scope -----------------------------------------------------------------------------------
    # What each action needs to succeed on a fresh police case, and what it does (docs/api.md):
    # action: (body, kind, steps off_pol takes first, status, event, status of the case after;
    # None: unchanged)
    ALLOWED = {
        "acknowledge": ({"note": "Seen"}, "complaint", [], 200, "acknowledge", "acknowledged"),
        "start": ({}, "complaint", [], 200, "start", "in_progress"),
        "assign": ({"username": "off_pol"}, "complaint", [], 200, "assigned", None),
        "comment": ({"text": "Checked the register", "internal": True}, "complaint", [], 201,
                    "note", None),
        "ask": ({"question": "Which office did you visit?"}, "complaint", ["acknowledge"], 200,
                "ask", "awaiting_citizen"),
        "transfer": ({"department": "revenue", "reason": "Land record matter"}, "complaint", [],
                     200, "transfer", "transferred"),
        "resolve": ({"note": "Certificate issued"}, "complaint", ["acknowledge"], 200,
                    "resolve", "resolved"),
        "reject": ({"reason": "Duplicate of another case"}, "complaint", [], 200, "reject",
                   "rejected"),
        "answer": ({"answer": "It takes two weeks"}, "information", ["acknowledge"], 200,
                   "answer", "answered"),
        "actions": ({"official": "clerk-1", "action": "warning"}, "complaint", [], 201,
                    "official.action", None),
    }

    def assert_allowed(self, action, caller):
        """caller takes action on a fresh police case with a valid body: the documented
        success status, the answer naming the event, and the case event (actor staff, the
        caller's username) and the case's status in the database."""
        body, kind, before, status, event, to_status = self.ALLOWED[action]
        extra = {"kind": kind}
        if kind == "information":
            extra["text"] = "How long does a character certificate take?"
        if action == "actions":
            extra["official"] = "Some Clerk"
        tn, _ = self.new_case(**extra)
        self.assertEqual(self.row(tn, "department_id"), ["police"])
        for step in before:
            r = self.act(tn, step, "off_pol", {})
            self.assertEqual(r.status, 200, "setting up %s: %s: %r" % (action, step, r))
        from_status = self.row(tn, "status")[0]
        what = "POST %s as %s" % (action, caller)
        r = self.act(tn, action, caller, body)
        self.assertEqual(r.status, status, "%s: %r" % (what, r))
        want_status = to_status or from_status
        if "status" in (r.json or {}):
            self.assertEqual(r.json["status"], want_status, "%s: %r" % (what, r))
        self.assertEqual(self.row(tn, "status"), [want_status], "%s: the case's status" % what)
        last = self.events(tn)[-1]
        self.assertEqual((last[0], last[3], last[4]), (event, "staff", caller),
                         "%s: the last case event is %r" % (what, last))
        if to_status:
            self.assertEqual(last[1:3], (from_status, to_status), "%s: %r" % (what, last))

    def test_scope_matrix(self):
        """A police case, every endpoint x every kind of caller. A refused caller gets exactly
        the status in the table and the case does not change; an allowed one gets the
        documented success with a valid body on a fresh case where the step applies, and its
        effect is checked (assert_allowed)."""
        tn, _ = self.new_case()
        self.assertEqual(self.row(tn, "department_id"), ["police"])
        OK = "ok"
        callers = ["off_pol", "off_rev", "sup_rev", "ovs", "adm", None]
        # endpoint: expected per caller, in the order above
        table = [
            (("GET", ""), [OK, 404, 404, OK, OK, 401]),
            (("POST", "acknowledge"), [OK, 404, 404, 403, OK, 401]),
            (("POST", "start"), [OK, 404, 404, 403, OK, 401]),
            (("POST", "assign"), [OK, 404, 404, 403, OK, 401]),
            (("POST", "comment"), [OK, 404, 404, 403, OK, 401]),
            (("POST", "ask"), [OK, 404, 404, 403, OK, 401]),
            (("POST", "transfer"), [OK, 404, 404, 403, OK, 401]),
            (("POST", "resolve"), [OK, 404, 404, 403, OK, 401]),
            (("POST", "reject"), [OK, 404, 404, 403, OK, 401]),
            (("POST", "answer"), [OK, 404, 404, 403, OK, 401]),
            (("POST", "actions"), [403, 404, 404, 403, OK, 401]),
        ]
        self.assertEqual(sorted(a for (m, a), _ in table if m == "POST"), sorted(self.ALLOWED))
        before = self.events(tn)
        for (method, action), want in table:
            for caller, expect in zip(callers, want):
                what = "%s %s as %s" % (method, action or "case", caller)
                if method == "GET":
                    r = self.get("/cases/%s" % tn, caller)
                    if expect == OK:
                        self.assertEqual(r.status, 200, "%s: %r" % (what, r))
                        self.assertEqual((r.json["tracking_no"], r.json["department"]),
                                         (tn, "police"), "%s: %r" % (what, r))
                        continue
                elif expect == OK:
                    self.assert_allowed(action, caller)
                    continue
                else:
                    # a refused caller with a valid body: refused all the same
                    r = self.act(tn, action, caller, self.ALLOWED[action][0])
                self.assertEqual(r.status, expect, "%s: %r" % (what, r))
                if r.status == 404:
                    self.assertNotIn("police", r.text, "a 404 must reveal nothing")
        self.assertEqual(self.events(tn), before, "a refused caller changed the case")
        self.assertEqual(self.row(tn, "status"), ["routed"])
        # the inbox: only the department's own cases
        for caller, sees in [("off_pol", True), ("off_rev", False), ("sup_rev", False),
                             ("ovs", True), ("adm", True)]:
            r = self.get("/inbox?limit=200", caller)
            self.assertEqual(r.status, 200, r)
            got = [c["tracking_no"] for c in r.json["cases"]]
            self.assertEqual(tn in got, sees, "inbox of %s: %s" % (caller, got))
        self.assertEqual(self.get("/inbox", None).status, 401)

    # the whole road --------------------------------------------------------------------------
    def test_anonymous_complaint_from_app_to_rating(self):
        phone, ctoken = self.sign_in()
        tn = self.submit(ctoken, anonymous=True)
        inbox = self.get("/inbox?limit=200", "off_pol")
        self.assertIn(tn, [c["tracking_no"] for c in inbox.json["cases"]])
        case = self.get("/cases/%s" % tn, "off_pol")
        self.assertEqual(case.status, 200, case)
        self.assertIsNone(case.json["citizen"])
        self.assertTrue(case.json["contact_hidden"])
        self.assertNotIn(phone, case.text, "an anonymous citizen's phone must not be shown")
        self.assertIn("acknowledge", case.json["allowed_actions"])

        ack = self.act(tn, "acknowledge", "off_pol")
        self.assertEqual((ack.status, ack.json["status"]), (200, "acknowledged"), ack)
        self.assertNotEqual(self.row(tn, "acknowledged_at")[0], "")
        again = self.act(tn, "acknowledge", "off_pol")
        self.assertEqual(again.status, 409, again)
        self.assertIn("already been acknowledged", again.json["error"]["message"])

        no_note = self.act(tn, "resolve", "off_pol")
        self.assertEqual((no_note.status, no_note.json["error"]["code"]), (400, "missing_field"),
                         no_note)
        res = self.act(tn, "resolve", "off_pol", {"note": "Clerk warned; certificate issued"})
        self.assertEqual((res.status, res.json["status"]), (200, "resolved"), res)

        tl = self.rd.get("/api/v1/cases/%s/timeline" % tn, headers=self.auth(ctoken))
        self.assertEqual(tl.status, 200, tl)
        rate = self.rd.post("/api/v1/cases/%s/rating" % tn, {"rating": 5, "satisfied": True},
                            headers=self.auth(ctoken))
        self.assertEqual(rate.status, 200, rate)
        self.assertEqual(self.row(tn, "status, rating"), ["closed", "5"])
        ev = self.events(tn)
        self.assertIn(("acknowledge", "routed", "acknowledged", "staff", "off_pol"), ev)
        self.assertIn(("resolve", "acknowledged", "resolved", "staff", "off_pol"), ev)
        self.assertEqual(ev[-1][:3], ("rated", "resolved", "closed"))
        # the staff view names no citizen as an actor: their id would link this anonymous
        # case to their named ones
        cid = self.row(tn, "citizen_id")[0]
        view = self.get("/cases/%s" % tn, "off_pol").json["timeline"]
        by_citizen = [e for e in view if e["actor_type"] == "citizen"]
        self.assertTrue(by_citizen, "the rating is the citizen's event: %r" % view)
        self.assertEqual([e["actor"] for e in by_citizen], [None] * len(by_citizen),
                         "citizen %s shown as the actor: %r" % (cid, view))
        # the inbox holds open cases only
        inbox = self.get("/inbox?limit=200", "off_pol")
        self.assertNotIn(tn, [c["tracking_no"] for c in inbox.json["cases"]])

    def test_tracking_numbers_are_read_as_citizens_type_them(self):
        tn, _ = self.new_case()
        typed = tn.lower().replace("-", " ")
        r = self.get("/cases/%s" % typed.replace(" ", "%20"), "off_pol")
        self.assertEqual((r.status, r.json["tracking_no"]), (200, tn), r)
        bad = self.get("/cases/NOT-A-NUMBER", "off_pol")
        self.assertEqual((bad.status, bad.json["error"]["code"]),
                         (400, "invalid_tracking_number"), bad)

    def test_contact_shown_only_when_allowed(self):
        phone, ctoken = self.sign_in()
        plain = self.submit(ctoken)
        official = self.submit(ctoken, official="Some Clerk")
        shared = self.submit(ctoken, official="Some Clerk", share_contact=True)
        self.assertEqual(self.get("/cases/%s" % plain, "off_pol").json["citizen"]["phone"],
                         phone)
        self.assertIsNone(self.get("/cases/%s" % official, "off_pol").json["citizen"])
        self.assertEqual(self.get("/cases/%s" % shared, "off_pol").json["citizen"]["phone"],
                         phone)

    def test_a_case_naming_an_officer_is_hidden_from_them_and_not_assignable_to_them(self):
        tn, _ = self.new_case(official="Rashid  Mehmood")
        self.assertEqual(self.get("/cases/%s" % tn, "off_pol2").status, 404)
        inbox = self.get("/inbox?limit=200", "off_pol2")
        self.assertNotIn(tn, [c["tracking_no"] for c in inbox.json["cases"]])
        r = self.act(tn, "assign", "sup_pol", {"username": "off_pol2"})
        self.assertEqual(r.status, 409, r)
        r = self.act(tn, "assign", "sup_pol", {"username": "off_rev"})
        self.assertEqual(r.status, 409, "other department: %r" % r)
        r = self.act(tn, "assign", "off_pol", {"username": "sup_pol"})
        self.assertEqual(r.status, 403, "an officer assigns only to themself: %r" % r)
        r = self.act(tn, "assign", "sup_pol", {"username": "off_pol"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.get("/cases/%s" % tn, "off_pol").json["assigned_to"], "off_pol")
        self.assertIn(("assigned", "", "", "staff", "sup_pol"), self.events(tn))

    def open311(self, **fields):
        """An Open311 request through a fresh API key; returns the case's tracking number."""
        from test_open311 import Open311Server, FORM, V2
        if not hasattr(self, "_o311_key"):
            type(self)._o311_key = Open311Server.make_key.__func__(type(self), "staff_tests")
        body = dict({"api_key": self._o311_key, "service_code": "character_certificate",
                     "description": "Asked for a bribe at the counter", "lat": "31.52",
                     "long": "74.35"}, **fields)
        r = self.rd.post(V2 + "/requests.json", urllib.parse.urlencode(body), headers=FORM)
        self.assertEqual(r.status, 201, r)
        return r.json[0]["service_request_id"]

    def test_open311_phone_never_reaches_a_verified_account(self):
        phone, ctoken = self.sign_in()  # a verified citizen (the app's one-time code)
        tn = self.open311(phone=phone, first_name="Not", last_name="Them")
        self.assertEqual(self.row(tn, "citizen_id IS NULL")[0], "t",
                         "an Open311 client's phone must not attach the case to the app user "
                         "who proved that phone")
        mine = self.rd.get("/api/v1/me/cases", headers=self.auth(ctoken))
        self.assertEqual(mine.status, 200, mine)
        self.assertNotIn(tn, mine.text)
        view = self.get("/cases/%s" % tn, "off_pol").json
        origin = [e["data"]["origin"] for e in view["timeline"] if e["event"] == "submitted"]
        self.assertEqual(origin[0]["phone"], phone, "the contact is kept on the case: %r" % view)

    def test_open311_names_of_an_anonymous_reporter_are_hidden(self):
        tn = self.open311(first_name="Secret", last_name="Reporter")
        self.assertEqual(self.row(tn, "anonymous")[0], "t")
        view = self.get("/cases/%s" % tn, "off_pol")
        self.assertEqual(view.status, 200, view)
        self.assertNotIn("Secret", view.text)
        self.assertNotIn("Reporter", view.text)
        # shown once the reporter is not anonymous
        tn = self.open311(first_name="Open", last_name="Person", email="open.person@example.org")
        self.assertIn("Person", self.get("/cases/%s" % tn, "off_pol").text)

    def test_transfer_between_departments(self):
        tn, _ = self.new_case()
        r = self.act(tn, "transfer", "off_pol", {"department": "revenue"})
        self.assertEqual(r.status, 400, "a transfer needs a reason: %r" % r)
        r = self.act(tn, "transfer", "off_pol", {"department": "atlantis", "reason": "x"})
        self.assertEqual(r.status, 422, r)
        r = self.act(tn, "transfer", "off_pol",
                     {"department": "revenue", "reason": "Land record matter"})
        self.assertEqual((r.status, r.json["status"]), (200, "transferred"), r)
        self.assertEqual(self.row(tn, "department_id, status"), ["revenue", "transferred"])
        self.assertEqual(self.get("/cases/%s" % tn, "off_pol").status, 404,
                         "the old department no longer sees it")
        inbox = self.get("/inbox?status=transferred&limit=200", "off_rev")
        self.assertIn(tn, [c["tracking_no"] for c in inbox.json["cases"]])
        r = self.act(tn, "acknowledge", "off_rev")
        self.assertEqual((r.status, r.json["status"]), (200, "acknowledged"), r)
        ev = self.pgs.query("SELECT data->>'from_department', data->>'to_department', note "
                            "FROM case_events e JOIN cases c ON c.id = e.case_id "
                            "WHERE c.tracking_no = '%s' AND e.event = 'transfer'" % tn)
        self.assertEqual(ev, [["police", "revenue", "Land record matter"]])

    def test_comments_internal_stay_inside_public_reach_the_citizen(self):
        tn, ctoken = self.new_case()
        cid = self.pgs.scalar("SELECT id FROM cases WHERE tracking_no = '%s'" % tn)
        r = self.act(tn, "comment", "off_pol", {"text": "Check with the SHO", "internal": True})
        self.assertEqual((r.status, r.json["message_queued"]), (201, False), r)
        # (the case's 'registered' notice is a notice; the comment's message would not be)
        self.assertEqual(self.pgs.scalar("SELECT count(*) FROM messages WHERE case_id = %s"
                                         " AND NOT notice" % cid), "0")
        r = self.act(tn, "comment", "off_pol", {"text": "We are looking into it",
                                                "internal": False})
        self.assertEqual((r.status, r.json["message_queued"]), (201, True), r)
        self.assertEqual(self.pgs.query(
            "SELECT m.body, m.channel, (SELECT count(*) FROM jobs j WHERE j.kind = "
            "'message.send.sms' AND (j.payload->>'message_id')::bigint = m.id) FROM messages m "
            "WHERE m.case_id = %s AND NOT m.notice" % cid), [["We are looking into it", "sms", "1"]])
        tl = self.rd.get("/api/v1/cases/%s/timeline" % tn, headers=self.auth(ctoken))
        self.assertIn("We are looking into it", tl.text)
        self.assertNotIn("Check with the SHO", tl.text)
        staff_view = self.get("/cases/%s" % tn, "off_pol")
        notes = [(e["note"], e["internal"]) for e in staff_view.json["timeline"]
                 if e["event"] == "note"]
        self.assertEqual(notes, [("Check with the SHO", True),
                                 ("We are looking into it", False)])

    def test_staff_texts_get_the_citizens_text_hygiene_and_limits(self):
        tn, _ = self.new_case()
        cid = self.pgs.scalar("SELECT id FROM cases WHERE tracking_no = '%s'" % tn)
        r = self.act(tn, "acknowledge", "off_pol", {"note": "x" * 5001})
        self.assertEqual((r.status, r.json["error"]["code"]), (400, "invalid_field"), r)
        self.assertIn("note", r.json["error"]["message"])
        self.assertEqual(self.row(tn, "status")[0], "routed",
                         "a note over its limit must stop the action, not be dropped")
        # Urdu is counted in characters, not bytes: 3,000 characters are 6,000 bytes
        urdu = "ی" * 3000
        r = self.act(tn, "acknowledge", "off_pol", {"note": urdu})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.pgs.scalar(
            "SELECT length(note) FROM case_events WHERE case_id = %s AND event = 'acknowledge'"
            % cid), "3000")
        r = self.act(tn, "comment", "off_pol", {"text": "bell\x07", "internal": False})
        self.assertEqual((r.status, r.json["error"]["code"]), (400, "invalid_field"), r)
        r = self.act(tn, "comment", "off_pol", {"text": "  Call 0300\u202e4567 today \r\n",
                                                "internal": False})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.pgs.query(
            "SELECT body FROM messages WHERE case_id = %s AND NOT notice" % cid),
            [["Call 03004567 today"]], "the bidi override must not reach the citizen")
        r = self.act(tn, "resolve", "off_pol", {"note": 42})
        self.assertEqual((r.status, r.json["error"]["code"]), (400, "invalid_field"), r)
        self.assertEqual(self.row(tn, "status")[0], "acknowledged")

    def test_ask_citizen_and_reject(self):
        tn, _ = self.new_case()
        r = self.act(tn, "ask", "off_pol", {"question": "Which office did you visit?"})
        self.assertEqual(r.status, 409, "cannot ask before acknowledging: %r" % r)
        self.act(tn, "acknowledge", "off_pol")
        r = self.act(tn, "ask", "off_pol", {"question": "Which office did you visit?"})
        self.assertEqual((r.status, r.json["status"], r.json["message_queued"]),
                         (200, "awaiting_citizen", True), r)
        r = self.act(tn, "answer", "off_pol", {"answer": "x"})
        self.assertEqual(r.status, 409, "a complaint is not answered: %r" % r)
        tn2, _ = self.new_case()
        r = self.act(tn2, "reject", "adm", {"reason": "Duplicate of another case"})
        self.assertEqual((r.status, r.json["status"]), (200, "rejected"), r)
        self.assertNotEqual(self.row(tn2, "closed_at")[0], "")

    def test_actions_on_officials_are_recorded(self):
        tn, ctoken = self.new_case(official="Some Clerk")
        r = self.act(tn, "actions", "sup_pol", {"official": "clerk-1", "action": "bribe"})
        self.assertEqual((r.status, r.json["error"]["code"]), (400, "invalid_field"), r)
        # free text is no longer an official: only a registered one
        r = self.act(tn, "actions", "sup_pol", {"official": "Some Clerk", "action": "warning"})
        self.assertEqual((r.status, r.json["error"]["code"]), (400, "invalid_field"), r)
        r = self.act(tn, "actions", "sup_pol", {"official": "clerk-1",
                                                "action": "show_cause", "note": "Notice 12/2026"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.pgs.query(
            "SELECT data->>'official', data->>'official_name', data->>'action', note, actor_id"
            " FROM case_events e JOIN cases c ON c.id = e.case_id WHERE c.tracking_no = '%s'"
            " AND e.event = 'official.action'" % tn),
            [["clerk-1", "Some Clerk", "show_cause", "Notice 12/2026", "sup_pol"]])
        self.assertEqual(self.pgs.query(
            "SELECT a.official_id, a.action, a.note FROM official_actions a JOIN cases c"
            " ON c.id = a.case_id WHERE c.tracking_no = '%s'" % tn),
            [["clerk-1", "show_cause", "Notice 12/2026"]])
        # an internal event: flagged so in the staff view, never in the citizen's timeline
        view = self.get("/cases/%s" % tn, "sup_pol").json["timeline"]
        self.assertEqual([e["internal"] for e in view if e["event"] == "official.action"],
                         [True])
        tl = self.rd.get("/api/v1/cases/%s/timeline" % tn, headers=self.auth(ctoken))
        self.assertEqual(tl.status, 200, tl)
        self.assertNotIn("official.action", tl.text)
        self.assertNotIn("Notice 12/2026", tl.text)
        self.assertNotIn("show_cause", tl.text)

    def test_inbox_filters_order_and_cursor(self):
        tns = [self.new_case()[0] for _ in range(3)]
        # deadlines in a known order: the first submitted is the most overdue
        for i, tn in enumerate(tns):
            self.pgs.psql("UPDATE cases SET resolve_due_at = now() - interval '%d days' "
                          "WHERE tracking_no = '%s'" % (100 - i, tn))
        r = self.get("/inbox?overdue=true&limit=2", "sup_pol")
        self.assertEqual(r.status, 200, r)
        first = [c["tracking_no"] for c in r.json["cases"]]
        self.assertEqual(first, [tns[0], tns[1]])
        self.assertTrue(all(c["overdue"] for c in r.json["cases"]))
        nxt = self.get("/inbox?overdue=true&limit=2&cursor=%s" % r.json["next_cursor"],
                       "sup_pol")
        self.assertEqual(nxt.json["cases"][0]["tracking_no"], tns[2])
        self.assertEqual(self.get("/inbox?status=nonsense", "sup_pol").status, 400)
        self.assertEqual(self.get("/inbox?cursor=garbage", "sup_pol").status, 400)
        svc = self.get("/inbox?service=fard&limit=200", "sup_pol")
        self.assertEqual(svc.json["cases"], [])

    # CLI -------------------------------------------------------------------------------------
    def test_cli_list_disable_passwd(self):
        lst = self.cli(["list"])
        self.assertEqual(lst.returncode, 0, lst.stderr)
        self.assertRegex(lst.stdout, r"cli_user\s+officer\s+police")
        self.assertNotIn("$argon2", lst.stdout)
        tok = self.login("cli_user").json["token"]
        r = self.cli(["passwd", "cli_user"], "another-password-1\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.login("cli_user").status, 401)
        self.assertEqual(self.login("cli_user", "another-password-1").status, 200)
        self.assertEqual(self.pgs.scalar(
            "SELECT count(*) FROM staff_tokens WHERE token_hash = sha256(convert_to('%s', "
            "'UTF8')) AND revoked_at IS NOT NULL" % tok), "1")
        r = self.cli(["disable", "cli_user"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.login("cli_user", "another-password-1").status, 401)
        self.assertRegex(self.cli(["list"]).stdout, r"cli_user.*disabled")
        gen = self.cli(["add", "gen_user", "--role", "oversight"])
        self.assertEqual(gen.returncode, 0, gen.stderr)
        self.assertEqual(self.login("gen_user", gen.stdout.strip()).status, 200)
        bad = self.cli(["add", "x_user", "--role", "officer"])
        self.assertEqual(bad.returncode, 2, "an officer needs a department")
        bad = self.cli(["add", "x_user", "--role", "officer", "--department", "atlantis"],
                       PASSWORD + "\n")
        self.assertEqual(bad.returncode, 2, bad.stderr)

    # the loop stays free ---------------------------------------------------------------------
    def test_login_burst_does_not_slow_healthz(self):
        # Password hashing runs off the event loop: while 20 sign-ins are being hashed, the
        # loop keeps answering. Judged against the burst itself, not a wall-clock bound (the
        # latency figures are tests/bench/bench_login.sh's): had the hashes run on the loop,
        # they would run one after another, the burst would take 20 hashes' time, and a probe
        # would wait on average half a hash (p50 >= burst / 40). Off the loop a probe waits
        # for no hash: the p50 must stay under burst / 200.
        stop = threading.Event()
        times = []
        in_burst = []

        def probe():
            # its assertions reach the test through BackgroundThread.join
            while not stop.is_set():
                t = time.monotonic()
                r = self.rd.get("/healthz", timeout=60.0)
                times.append(time.monotonic() - t)
                in_burst.append(t)
                self.assertEqual(r.status, 200, "healthz during the sign-in burst: %r" % r)
                stop.wait(0.005)  # a probe every 5 ms, not a synchronisation

        # four accounts, five sign-ins each: no more checks at once than one name may have
        users = ["adm", "ovs", "sup_rev", "off_pol2"]
        self.pgs.psql("DELETE FROM staff_login_attempts WHERE username IN ('%s')"
                      % "', '".join(users))
        p = rbtest.BackgroundThread(probe).start()
        try:
            with concurrent.futures.ThreadPoolExecutor(20) as ex:
                t0 = time.monotonic()
                res = list(ex.map(lambda i: self.rd.post(
                    "/api/v1/staff/login", {"username": users[i % 4], "password": PASSWORD},
                    timeout=120.0).status, range(20)))
                t1 = time.monotonic()
        finally:
            stop.set()
        p.join(120.0)
        self.assertEqual(res, [200] * 20)
        burst = t1 - t0
        during = [d for d, t in zip(times, in_burst) if t0 <= t and t + d <= t1]
        p50 = statistics.median(during) if during else float("inf")
        rbtest.log("20 sign-ins took %.2fs; healthz p50 %.1f ms over %d probes inside it"
                   % (burst, p50 * 1000, len(during)))
        self.assertGreaterEqual(len(during), 5, "healthz answered only %d times in %.2fs of "
                                "sign-ins" % (len(during), burst))
        self.assertLess(p50, burst / 200, "healthz p50 %.1f ms during a %.2f s sign-in burst"
                        % (p50 * 1000, burst))


if __name__ == "__main__":
    rbtest.main()
