"""Citizens' sign-in through the mobile-app API (plugins/app/app_auth.c): a one-time code goes
out as an SMS (a queued `messages` row and its `message.send.sms` job, written atomically with the
code), is stored only hashed, expires, has a bounded number of attempts even against
parallel guesses, is rate-limited per phone, and buys a bearer token that logout revokes.

The test reads the code from the SMS body in `messages`, exactly what the SMS gateway sends."""
import hashlib
import http.client
import json
import re
import secrets
import threading

import rbtest


def new_phone():
    """A fresh Pakistani mobile number in E.164 (each test uses its own: limits are per phone)."""
    return "+92300%07d" % secrets.randbelow(10 ** 7)


class SignIn:
    """Mixin: register / code from the SMS / verify against self.rd and self.pgs."""

    def register(self, phone, **extra):
        return self.rd.post("/api/v1/register", dict({"phone": phone}, **extra))

    def verify(self, phone, code):
        return self.rd.post("/api/v1/verify", {"phone": phone, "code": code})

    def sms(self, phone):
        """The newest SMS to phone: (id, body, template, language, status)."""
        rows = self.pgs.query("SELECT id, body, template, language, status FROM messages "
                              "WHERE to_address = '%s' ORDER BY id DESC LIMIT 1" % phone)
        self.assertTrue(rows, "no SMS was queued for %s" % phone)
        return rows[0]

    def code_from_sms(self, phone):
        body = self.sms(phone)[1]
        m = re.search(r"\b(\d{6})\b", body)
        self.assertIsNotNone(m, "no 6-digit code in the SMS %r" % body)
        return m.group(1)

    def shift_limits(self, phone, seconds):
        """Moves the phone's rate-limit history `seconds` into the past (time passing)."""
        self.pgs.psql("UPDATE citizen_otp_limits SET sent_at = ARRAY(SELECT t - interval '%d "
                      "seconds' FROM unnest(sent_at) t) WHERE phone = '%s'" % (seconds, phone))

    def sign_in(self, phone=None):
        """The whole flow; returns (phone, token)."""
        phone = phone or new_phone()
        r = self.register(phone)
        self.assertEqual(r.status, 202, r)
        v = self.verify(phone, self.code_from_sms(phone))
        self.assertEqual(v.status, 200, v)
        return phone, v.json["token"]

    def auth(self, token):
        return {"Authorization": "Bearer " + token}


class AppAuthTest(SignIn, rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()
        cls.rd = cls.class_rabtad(pg=cls.pgs)

    def count(self, table):
        return int(self.pgs.scalar("SELECT count(*) FROM %s" % table))

    def test_register_queues_the_sms_and_its_job_with_a_hashed_code(self):
        phone = new_phone()
        r = self.register(phone)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json, {"expires_in": 300})
        msg_id, body, template, language, status = self.sms(phone)
        self.assertEqual((template, language, status), ("otp", "ur", "queued"))
        self.assertIn("کوڈ", body, "the default SMS is in Urdu")
        code = self.code_from_sms(phone)
        self.assertEqual(self.pgs.scalar("SELECT channel FROM messages WHERE id = %s" % msg_id),
                         "sms")
        job = self.pgs.query("SELECT kind, payload FROM jobs WHERE payload->>'message_id' = '%s'"
                             % msg_id)
        self.assertEqual(len(job), 1, "exactly one message.send.sms job for the SMS")
        self.assertEqual(job[0][0], "message.send.sms")
        self.assertEqual(json.loads(job[0][1]), {"message_id": int(msg_id)})
        row = self.pgs.query(
            "SELECT encode(salt, 'hex'), encode(code_hash, 'hex'), attempts_left, message_id, "
            "round(extract(epoch FROM expires_at - created_at)), used_at IS NULL "
            "FROM citizen_otps WHERE phone = '%s'" % phone)
        self.assertEqual(len(row), 1)
        salt, digest, attempts, mid, ttl, unused = row[0]
        self.assertEqual(digest, hashlib.sha256(bytes.fromhex(salt) + code.encode()).hexdigest(),
                         "the code is stored as sha256(salt || code)")
        self.assertNotEqual(digest, hashlib.sha256(code.encode()).hexdigest())
        self.assertEqual((attempts, mid, ttl, unused), ("5", msg_id, "300", "t"))
        dump = self.pgs.scalar("SELECT row_to_json(o)::text FROM citizen_otps o "
                               "WHERE phone = '%s'" % phone)
        self.assertNotIn(code, dump, "the code is stored in clear")

    def test_english_sms_and_local_phone_form(self):
        digits = "%07d" % secrets.randbelow(10 ** 7)
        r = self.register("0301-" + digits, language="en")
        self.assertEqual(r.status, 202, r)
        phone = "+92301" + digits
        _, body, _, language, _ = self.sms(phone)
        self.assertEqual(language, "en")
        self.assertRegex(body, r"^Your Rabta code is \d{6}\. It expires in 5 minutes\.")
        v = self.verify("0301 " + digits, self.code_from_sms(phone))
        self.assertEqual(v.status, 200, v)

    def test_verify_gives_a_token_stored_hashed_that_signs_the_citizen_in(self):
        phone = new_phone()
        self.assertEqual(self.register(phone).status, 202)
        code = self.code_from_sms(phone)
        v = self.verify(phone, code)
        self.assertEqual(v.status, 200, v)
        token = v.json["token"]
        self.assertRegex(token, r"^[A-Za-z0-9_-]{43}$", "32 random bytes, base64url")
        self.assertRegex(v.json["expires_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        row = self.pgs.query(
            "SELECT c.phone, c.verified_at IS NOT NULL, "
            "  round(extract(epoch FROM t.expires_at - t.created_at) / 86400) "
            "FROM citizen_tokens t JOIN citizens c ON c.id = t.citizen_id "
            "WHERE t.token_hash = '\\x%s'" % hashlib.sha256(token.encode()).hexdigest())
        self.assertEqual(row, [[phone, "t", "30"]])
        me = self.rd.get("/api/v1/me/cases", headers=self.auth(token))
        self.assertEqual(me.status, 200, me)
        again = self.verify(phone, code)
        self.assertErrorJSON(again, 401, "code_invalid")  # a code works once

    def test_verify_finds_the_citizen_who_already_exists(self):
        phone = new_phone()
        self.pgs.psql("INSERT INTO citizens (phone, language) VALUES ('%s', 'en')" % phone)
        cid = self.pgs.scalar("SELECT id FROM citizens WHERE phone = '%s'" % phone)
        _, token = self.sign_in(phone)
        self.assertEqual(self.pgs.scalar(
            "SELECT citizen_id FROM citizen_tokens WHERE token_hash = '\\x%s'"
            % hashlib.sha256(token.encode()).hexdigest()), cid)
        self.assertEqual(self.pgs.scalar("SELECT count(*) FROM citizens WHERE phone = '%s'"
                                         % phone), "1")
        self.assertEqual(self.pgs.scalar("SELECT verified_at IS NOT NULL AND language = 'en' "
                                         "FROM citizens WHERE id = %s" % cid), "t")

    def test_urdu_digits_are_accepted_in_the_code(self):
        phone = new_phone()
        self.register(phone)
        code = self.code_from_sms(phone)
        urdu = "".join(chr(0x06F0 + int(d)) for d in code)
        v = self.verify(phone, urdu)
        self.assertEqual(v.status, 200, v)

    def test_wrong_codes_count_down_and_then_the_code_is_dead(self):
        phone = new_phone()
        self.register(phone)
        code = self.code_from_sms(phone)
        wrong = "%06d" % ((int(code) + 1) % 10 ** 6)
        for left in (4, 3, 2, 1):
            r = self.verify(phone, wrong)
            err = self.assertErrorJSON(r, 401, "wrong_code")
            self.assertIn("%d attempt" % left, err["message"])
        r = self.verify(phone, wrong)
        err = self.assertErrorJSON(r, 401, "wrong_code")
        self.assertIn("ask for a new one", err["message"])
        right = self.verify(phone, code)
        self.assertErrorJSON(right, 401, "code_invalid")  # even the right code, now
        self.assertEqual(self.pgs.scalar("SELECT attempts_left FROM citizen_otps WHERE phone = "
                                         "'%s'" % phone), "0")

    def test_parallel_guesses_cannot_exceed_the_attempts(self):
        phone = new_phone()
        self.register(phone)
        code = self.code_from_sms(phone)
        wrong = ["%06d" % ((int(code) + i) % 10 ** 6) for i in range(1, 21)]
        results = []
        lock = threading.Lock()

        def guess(c):
            r = self.verify(phone, c)
            with lock:
                results.append(r)
        threads = [threading.Thread(target=guess, args=(c,)) for c in wrong]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = [r.json["error"]["code"] for r in results]
        self.assertEqual(codes.count("wrong_code"), 5, codes)
        self.assertEqual(codes.count("code_invalid"), 15, codes)

    def test_expired_code_is_refused(self):
        phone = new_phone()
        self.register(phone)
        code = self.code_from_sms(phone)
        self.pgs.psql("UPDATE citizen_otps SET expires_at = now() - interval '1 second' "
                      "WHERE phone = '%s'" % phone)
        r = self.verify(phone, code)
        err = self.assertErrorJSON(r, 401, "code_invalid")
        self.assertIn("expired", err["message"])
        self.assertEqual(self.count("citizen_tokens WHERE citizen_id IN (SELECT id FROM "
                                    "citizens WHERE phone = '%s')" % phone), 0)

    def test_a_new_code_retires_the_previous_one(self):
        phone = new_phone()
        self.register(phone)
        first = self.code_from_sms(phone)
        self.shift_limits(phone, 31)
        self.assertEqual(self.register(phone).status, 202)
        second = self.code_from_sms(phone)
        if first != second:
            self.assertErrorJSON(self.verify(phone, first), 401, "wrong_code")
        self.assertEqual(self.verify(phone, second).status, 200)

    def test_rate_limit_per_phone(self):
        phone = new_phone()
        self.assertEqual(self.register(phone).status, 202)
        sms_before = self.count("messages WHERE to_address = '%s'" % phone)
        r = self.register(phone)
        err = self.assertErrorJSON(r, 429, "rate_limited")
        m = re.search(r"try again in (\d+) seconds? *$", err["message"])
        self.assertTrue(m, err)
        self.assertIn("for this phone", err["message"])
        self.assertTrue(25 <= int(m.group(1)) <= 30, err)
        self.assertEqual((r.headers.get("retry-after"), err.get("retry_after")),
                         (m.group(1), int(m.group(1))),
                         "the seconds are in the Retry-After header and the JSON error")
        self.assertEqual(self.count("messages WHERE to_address = '%s'" % phone), sms_before,
                         "a refused request still queued an SMS")
        self.assertEqual(self.count("citizen_otps WHERE phone = '%s'" % phone), 1)
        # 30 s later: the second and third codes; then the fourth within 15 minutes is refused.
        for _ in range(2):
            self.shift_limits(phone, 31)
            self.assertEqual(self.register(phone).status, 202)
        self.shift_limits(phone, 31)
        r = self.register(phone)
        err = self.assertErrorJSON(r, 429, "rate_limited")
        wait = int(re.search(r"try again in (\d+) second", err["message"]).group(1))
        self.assertTrue(900 - 3 * 31 - 5 <= wait <= 900 - 3 * 31 + 1, err)
        self.assertEqual((r.headers.get("retry-after"), err.get("retry_after")),
                         (str(wait), wait))
        self.assertEqual(self.count("messages WHERE to_address = '%s'" % phone), 3)
        # Once the oldest code is 15 minutes old, one more may go.
        self.shift_limits(phone, wait)
        self.assertEqual(self.register(phone).status, 202)
        # Other phones are not affected.
        self.assertEqual(self.register(new_phone()).status, 202)

    def test_daily_cap_per_phone(self):
        """10 codes a day for one phone (otp_per_day), however the 15-minute windows fall."""
        phone = new_phone()
        for i in range(10):
            if i:
                self.shift_limits(phone, 901)
            self.assertEqual(self.register(phone).status, 202, "code %d of the day" % (i + 1))
        self.shift_limits(phone, 901)
        r = self.register(phone)
        err = self.assertErrorJSON(r, 429, "rate_limited")
        self.assertIn("for this phone today", err["message"])
        self.assertTrue(86400 - 60 <= err["retry_after"] <= 86400, err)
        self.assertEqual(self.count("citizen_otps WHERE phone = '%s'" % phone), 10)
        # a day later the oldest no longer counts
        self.pgs.psql("UPDATE citizen_otps SET created_at = created_at - interval '1 day 1 s'"
                      " WHERE id = (SELECT min(id) FROM citizen_otps WHERE phone = '%s')" % phone)
        self.assertEqual(self.register(phone).status, 202)

    def test_register_answers_the_same_for_known_and_unknown_phones(self):
        known = new_phone()
        self.pgs.psql("INSERT INTO citizens (phone, verified_at) VALUES ('%s', now())" % known)
        a = self.register(known)
        b = self.register(new_phone())
        self.assertEqual((a.status, a.body), (b.status, b.body))

    def test_logout_revokes_the_token(self):
        _, token = self.sign_in()
        _, other = self.sign_in()
        r = self.rd.post("/api/v1/logout", headers=self.auth(token))
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.pgs.scalar(
            "SELECT revoked_at IS NOT NULL FROM citizen_tokens WHERE token_hash = '\\x%s'"
            % hashlib.sha256(token.encode()).hexdigest()), "t")
        self.assertErrorJSON(self.rd.get("/api/v1/me/cases", headers=self.auth(token)), 401,
                             "unauthorized")
        self.assertErrorJSON(self.rd.post("/api/v1/logout", headers=self.auth(token)), 401,
                             "unauthorized")
        self.assertEqual(self.rd.get("/api/v1/me/cases", headers=self.auth(other)).status, 200)
        self.assertErrorJSON(self.rd.post("/api/v1/logout"), 401, "unauthorized")
        self.assertErrorJSON(self.rd.post("/api/v1/logout", headers={"Authorization": "Basic x"}),
                             401, "unauthorized")

    def test_token_revoked_in_the_database_by_another_process(self):
        _, token = self.sign_in()
        self.pgs.psql("UPDATE citizen_tokens SET revoked_at = now() WHERE token_hash = '\\x%s'"
                      % hashlib.sha256(token.encode()).hexdigest())
        # No request has cached it yet in this process, so it is refused at once.
        self.assertErrorJSON(self.rd.get("/api/v1/me/cases", headers=self.auth(token)), 401)

    def test_bad_input_gets_a_specific_4xx_and_stores_nothing(self):
        phone = new_phone()
        otps, msgs, jobs = (self.count("citizen_otps"), self.count("messages"),
                            self.count("jobs"))
        register = [
            ("not json", 400, "invalid_json"),
            ("[1]", 400, "invalid_json"),
            ({}, 400, "missing_field"),
            ({"phone": 923001234567}, 400, "invalid_field"),
            ({"phone": "12"}, 422, "invalid_phone"),
            ({"phone": "not a phone"}, 422, "invalid_phone"),
            ({"phone": phone, "language": "fr"}, 400, "invalid_field"),
            ({"phone": phone, "name": "Ali"}, 400, "unknown_field"),
            (b'{"phone": "+92300\xff"}', 400, "invalid_json"),
            ('{"phone": "%s", "phone": "%s"}' % (phone, phone), 400, "invalid_json"),
        ]
        verify = [
            ("{", 400, "invalid_json"),
            ({"phone": phone}, 400, "missing_field"),
            ({"code": "123456"}, 400, "missing_field"),
            ({"phone": phone, "code": 123456}, 400, "invalid_field"),
            ({"phone": phone, "code": "12345"}, 400, "invalid_field"),
            ({"phone": phone, "code": "1234567"}, 400, "invalid_field"),
            ({"phone": phone, "code": "12a456"}, 400, "invalid_field"),
            ({"phone": "0", "code": "123456"}, 422, "invalid_phone"),
            ({"phone": phone, "code": "123456", "x": 1}, 400, "unknown_field"),
            (b'{"phone": "%s", "code": "\xc3\x28"}' % phone.encode(), 400, "invalid_json"),
        ]
        for path, cases in (("/api/v1/register", register), ("/api/v1/verify", verify)):
            for body, status, code in cases:
                h = {} if isinstance(body, (dict, list)) else {"Content-Type": "application/json"}
                r = self.rd.post(path, body, headers=h)
                self.assertErrorJSON(r, status, code)
            r = self.rd.post(path, "phone=%s" % phone,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
            self.assertErrorJSON(r, 415, "unsupported_media_type")
        self.assertEqual((self.count("citizen_otps"), self.count("messages"), self.count("jobs")),
                         (otps, msgs, jobs), "a refused request stored something")

    def test_malformed_code_costs_no_attempt(self):
        phone = new_phone()
        self.register(phone)
        self.assertErrorJSON(self.verify(phone, "abc"), 400, "invalid_field")
        self.assertEqual(self.pgs.scalar("SELECT attempts_left FROM citizen_otps WHERE phone = "
                                         "'%s'" % phone), "5")

    def test_verify_without_any_code_reveals_nothing(self):
        r = self.verify(new_phone(), "123456")
        self.assertErrorJSON(r, 401, "code_invalid")


def register_from(port, source, phone):
    """POST /api/v1/register from the loopback address source (e.g. "127.0.0.2")."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10.0,
                                      source_address=(source, 0))
    try:
        conn.request("POST", "/api/v1/register", body=json.dumps({"phone": phone}),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        return rbtest.Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


class AppAuthAddressLimitTest(SignIn, rbtest.TestCase):
    """Codes per client address (otp_per_address per otp_address_window), counted in
    PostgreSQL: one address asking codes for many phones is refused with 429 + Retry-After;
    another address is not affected; the per-phone limit still applies."""

    PER_ADDRESS = 3

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()
        cls.rd = cls.class_rabtad(pg=cls.pgs, start=False)
        cls.rd.config["plugins"] = [
            dict(p, config={"otp_per_address": cls.PER_ADDRESS, "otp_address_window": "10m"})
            if p["name"] == "app" else p for p in cls.rd.config["plugins"]]
        cls.rd.start()

    def sms_count(self, phones):
        return int(self.pgs.scalar("SELECT count(*) FROM messages WHERE to_address IN (%s)"
                                   % ",".join("'%s'" % p for p in phones)))

    def assertAddressRefusal(self, r):
        err = self.assertErrorJSON(r, 429, "rate_limited")
        self.assertIn("from this address", err["message"])
        secs = err.get("retry_after")
        self.assertIsInstance(secs, int, err)
        # (601: a request that waited for the row sees codes taken after it began)
        self.assertTrue(590 <= secs <= 601, "about the 10-minute window: %r" % err)
        self.assertEqual(r.headers.get("retry-after"), str(secs))
        self.assertIn("try again in %d seconds" % secs, err["message"])

    def test_a_burst_from_one_address_over_many_phones_is_cut_at_the_limit(self):
        source = "127.0.0.3"
        phones = [new_phone() for _ in range(12)]
        results = {}
        lock = threading.Lock()

        def ask(phone):
            r = register_from(self.rd.port, source, phone)
            with lock:
                results[phone] = r
        threads = [threading.Thread(target=ask, args=(p,)) for p in phones]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ok = [p for p in phones if results[p].status == 202]
        refused = [p for p in phones if results[p].status != 202]
        self.assertEqual(len(ok), self.PER_ADDRESS, [results[p] for p in phones])
        for p in refused:
            self.assertAddressRefusal(results[p])
        self.assertEqual(self.sms_count(ok), self.PER_ADDRESS)
        self.assertEqual(self.sms_count(refused), 0, "a refused request queued an SMS")
        self.assertEqual(self.pgs.scalar(
            "SELECT cardinality(sent_at) FROM citizen_otp_address_limits WHERE address = '%s'"
            % source), str(self.PER_ADDRESS))
        # A refusal by the address is not counted against the phone: from another address
        # the same phone gets its code at once.
        r = register_from(self.rd.port, "127.0.0.4", refused[0])
        self.assertEqual(r.status, 202, r)
        # Once the window has passed, the address may ask again.
        self.pgs.psql("UPDATE citizen_otp_address_limits SET sent_at = ARRAY(SELECT t - "
                      "interval '601 seconds' FROM unnest(sent_at) t) WHERE address = '%s'"
                      % source)
        self.assertEqual(register_from(self.rd.port, source, new_phone()).status, 202)

    def test_another_address_is_not_affected_and_the_phone_limit_still_applies(self):
        phones = [new_phone() for _ in range(self.PER_ADDRESS + 1)]
        for p in phones[:self.PER_ADDRESS]:
            self.assertEqual(register_from(self.rd.port, "127.0.0.5", p).status, 202)
        self.assertAddressRefusal(register_from(self.rd.port, "127.0.0.5", phones[-1]))
        # 127.0.0.6 has its own count.
        phone = new_phone()
        self.assertEqual(register_from(self.rd.port, "127.0.0.6", phone).status, 202)
        # ... and the same phone again at once is refused by the per-phone limit (30 s).
        r = register_from(self.rd.port, "127.0.0.6", phone)
        err = self.assertErrorJSON(r, 429, "rate_limited")
        self.assertIn("for this phone", err["message"])
        self.assertTrue(25 <= err["retry_after"] <= 30, err)
        self.assertEqual(r.headers.get("retry-after"), str(err["retry_after"]))
        # The phone's refusal is not counted against the address: 2 of 3 codes used so far.
        self.assertEqual(register_from(self.rd.port, "127.0.0.6", new_phone()).status, 202)
        self.assertEqual(register_from(self.rd.port, "127.0.0.6", new_phone()).status, 202)
        self.assertAddressRefusal(register_from(self.rd.port, "127.0.0.6", new_phone()))


class AppAuthConfigTest(SignIn, rbtest.TestCase):
    """The limits come from the plugin's config block."""

    def test_configured_limits_apply(self):
        self.pgs = self.pg()
        self.rd = self.rabtad(pg=self.pgs)
        self.rd.config["plugins"] = [
            dict(p, config={"otp_ttl": "2m", "otp_attempts": 2, "otp_interval": "0s",
                            "otp_per_window": 2, "token_ttl": "1d"})
            if p["name"] == "app" else p for p in self.rd.config["plugins"]]
        self.rd.start()
        phone = new_phone()
        r = self.register(phone, language="en")
        self.assertEqual(r.json, {"expires_in": 120})
        self.assertIn("expires in 2 minutes", self.sms(phone)[1])
        self.assertEqual(self.register(phone).status, 202, "no interval between codes")
        self.assertErrorJSON(self.register(phone), 429, "rate_limited")
        code = self.code_from_sms(phone)
        wrong = "%06d" % ((int(code) + 1) % 10 ** 6)
        self.assertIn("1 attempt left", self.verify(phone, wrong).json["error"]["message"])
        v = self.verify(phone, code)
        self.assertEqual(v.status, 200, v)
        self.assertEqual(self.pgs.scalar(
            "SELECT round(extract(epoch FROM expires_at - created_at)) FROM citizen_tokens "
            "WHERE token_hash = '\\x%s'" % hashlib.sha256(v.json["token"].encode()).hexdigest()),
            "86400")

    def test_bad_config_is_refused_at_start(self):
        pgs = self.pg()
        rd = self.rabtad(pg=pgs)
        rd.config["plugins"] = [dict(p, config={"otp_attempts": 0}) if p["name"] == "app" else p
                                for p in rd.config["plugins"]]
        rd.start(wait=False)
        code = rd.wait(30.0)
        self.assertIn(code, (1, 2), "rabtad with otp_attempts: 0 exited %r" % code)
        self.assertIn("otp_attempts", rd.log_text())

if __name__ == "__main__":
    rbtest.main()
