"""Cases through the mobile-app API: a submission is validated, routed by the Lua rules,
numbered and stored (answered only after COMMIT); bad input gets a specific 4xx and stores
nothing; retries with an Idempotency-Key get the first answer; status look-ups reveal nothing
without the right phone digits."""
import hashlib
import json
import secrets

import rbtest


class CasesTest(rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()
        cls.rd = cls.class_rabtad(pg=cls.pgs)

    def citizen(self, phone="+923001234567"):
        """A signed-in citizen: returns the bearer token (stored hashed, as the server does)."""
        token = secrets.token_urlsafe(32)
        digest = hashlib.sha256(token.encode()).hexdigest()
        self.pgs.psql(
            "INSERT INTO citizens (phone) VALUES ('%s') ON CONFLICT (phone) DO NOTHING;"
            "INSERT INTO citizen_tokens (token_hash, citizen_id, expires_at) "
            "SELECT '\\x%s'::bytea, id, now() + interval '1 day' FROM citizens WHERE phone = '%s'"
            % (phone, digest, phone))
        return token

    def submit(self, body, token=None, headers=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        return self.rd.post("/api/v1/cases", body, headers=h)

    def count_cases(self):
        return int(self.pgs.scalar("SELECT count(*) FROM cases"))

    def test_complaint_is_stored_routed_and_numbered(self):
        tok = self.citizen()
        r = self.submit({"kind": "complaint", "service": "domicile_certificate", "district": "lahore",
                         "text": "My domicile certificate has been pending for two months",
                         "language": "en"}, tok)
        self.assertEqual(r.status, 201, r)
        tn = r.json["tracking_no"]
        self.assertRegex(tn, r"^RB-[0-9A-Z]{5}-[0-9A-Z]{5}-.$")
        self.assertEqual(r.json["status"], "routed")
        row = self.pgs.query("SELECT c.department_id, c.status, ci.phone FROM cases c "
                             "JOIN citizens ci ON ci.id = c.citizen_id "
                             "WHERE tracking_no = '%s'" % tn)[0]
        self.assertEqual(row[0], r.json["department"])
        self.assertEqual(row[1], "routed")
        self.assertEqual(row[2], "+923001234567")
        events = self.pgs.query("SELECT event FROM case_events e JOIN cases c ON c.id = e.case_id "
                                "WHERE tracking_no = '%s' ORDER BY e.id" % tn)
        self.assertEqual([e[0] for e in events], ["submitted", "routed"])

    def test_urdu_bribe_complaint_is_flagged_and_raised(self):
        tok = self.citizen("+923331112222")
        r = self.submit({"kind": "complaint", "service": "property_registration",
                         "district": "multan", "language": "ur",
                         "text": "پٹواری نے فرد کے لیے رشوت مانگی"}, tok)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["priority"], 1, r)
        data = json.loads(self.pgs.scalar(
            "SELECT e.data FROM case_events e JOIN cases c ON c.id = e.case_id "
            "WHERE c.tracking_no = '%s' AND e.event = 'routed'" % r.json["tracking_no"]))
        self.assertIn("corruption", data["flags"])

    def test_anonymous_submission_needs_no_sign_in(self):
        r = self.submit({"kind": "complaint", "anonymous": True, "district": "lahore",
                         "text": "Garbage has not been collected in our street for a week"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.pgs.scalar(
            "SELECT citizen_id IS NULL AND anonymous FROM cases WHERE tracking_no = '%s'"
            % r.json["tracking_no"]), "t")

    def test_signed_out_named_submission_is_401(self):
        before = self.count_cases()
        r = self.submit({"kind": "complaint", "text": "hello"})
        self.assertErrorJSON(r, 401, "unauthorized")
        self.assertEqual(self.count_cases(), before)

    def test_bad_input_gets_a_specific_4xx_and_stores_nothing(self):
        tok = self.citizen("+923004445555")
        before = self.count_cases()
        cases = [
            ("not json", 400, "invalid_json"),
            ("[1, 2]", 400, "invalid_json"),
            ({"kind": "complaint"}, 400, "missing_field"),
            ({"text": "x"}, 400, "missing_field"),
            ({"kind": "grievance", "text": "x"}, 422, "invalid_case"),
            ({"kind": "complaint", "text": 42}, 400, "invalid_field"),
            ({"kind": "complaint", "text": "x", "service": "no_such"}, 422, "invalid_case"),
            ({"kind": "complaint", "text": "x", "district": "atlantis"}, 422, "invalid_case"),
            ({"kind": "complaint", "text": "x", "lat": 31.5}, 422, "invalid_case"),
            ({"kind": "complaint", "text": "x", "lat": 91, "long": 10}, 422, "invalid_case"),
            ({"kind": "complaint", "text": "   "}, 422, "invalid_case"),
            ({"kind": "complaint", "text": "a\u0007b"}, 422, "invalid_case"),
            ({"kind": "complaint", "text": "x" * 5001}, 422, "invalid_case"),
            ({"kind": "feedback", "text": "x", "rating": 6}, 400, "invalid_field"),
            ({"kind": "complaint", "text": "x", "colour": "red"}, 400, "unknown_field"),
            ({"kind": "complaint", "text": "x", "anonymous": "yes"}, 400, "invalid_field"),
            ('{"kind": "complaint", "kind": "feedback", "text": "x"}', 400, "invalid_json"),
            (b'{"kind": "complaint", "text": "\xff\xfe"}', 400, "invalid_json"),
            ('{"kind": "complaint", "text": "a\\u0000b"}', 400, "invalid_json"),
        ]
        for body, status, code in cases:
            h = {"Authorization": "Bearer " + tok}
            if not isinstance(body, (dict, list)):
                h["Content-Type"] = "application/json"
            r = self.rd.post("/api/v1/cases", body, headers=h)
            self.assertErrorJSON(r, status, code)
        r = self.rd.post("/api/v1/cases", "kind=complaint", headers={
            "Content-Type": "application/x-www-form-urlencoded", "Authorization": "Bearer " + tok})
        self.assertErrorJSON(r, 415)
        self.assertEqual(self.count_cases(), before, "a refused submission was stored")

    def test_idempotency_key_replays_the_first_answer_and_refuses_a_different_body(self):
        tok = self.citizen("+923007778888")
        body = {"kind": "complaint", "service": "birth_certificate", "district": "lahore",
                "text": "Birth certificate not issued"}
        h = {"Idempotency-Key": "k-" + secrets.token_hex(8)}
        first = self.submit(body, tok, h)
        self.assertEqual(first.status, 201, first)
        before = self.count_cases()
        again = self.submit(body, tok, h)
        self.assertEqual(again.status, 201, again)
        self.assertEqual(again.json, first.json)
        self.assertEqual(self.count_cases(), before, "the retry stored a second case")
        other = self.submit(dict(body, text="something else"), tok, h)
        self.assertErrorJSON(other, 422, "idempotency_conflict")

    def test_status_lookup_needs_the_phone_digits_and_reveals_nothing_else(self):
        tok = self.citizen("+923451234987")
        r = self.submit({"kind": "information", "service": "arms_licence", "language": "en",
                         "text": "How long does an arms licence take?"}, tok)
        self.assertEqual(r.status, 201, r)
        tn = r.json["tracking_no"]
        ok = self.rd.get("/api/v1/cases/%s?phone_last4=4987" % tn)
        self.assertEqual(ok.status, 200, ok)
        self.assertEqual(ok.json["status"], "routed")
        for k in ok.json:
            self.assertNotIn(k, ("phone", "email", "text", "citizen", "name"))
        self.assertNotIn("923451234987", ok.text)
        wrong = self.rd.get("/api/v1/cases/%s?phone_last4=0000" % tn)
        self.assertErrorJSON(wrong, 404, "not_found")
        with_token = self.rd.get("/api/v1/cases/%s" % tn,
                                 headers={"Authorization": "Bearer " + tok})
        self.assertEqual(with_token.status, 200, with_token)
        other_tok = self.citizen("+923450000001")
        other = self.rd.get("/api/v1/cases/%s" % tn, headers={"Authorization": "Bearer " + other_tok})
        self.assertErrorJSON(other, 404, "not_found")  # someone else's token reveals nothing
        # A mistyped character is caught by the check symbol.
        chars = list(tn)
        i = 3
        chars[i] = "A" if chars[i] != "A" else "B"
        typo = self.rd.get("/api/v1/cases/%s?phone_last4=4987" % "".join(chars))
        self.assertErrorJSON(typo, 400, "invalid_tracking_number")
        self.assertIn("mistake", typo.json["error"]["message"])

    def test_photo_is_stored_with_the_case_and_bad_photos_are_refused(self):
        import base64
        tok = self.citizen("+923009990000")
        png = b"\x89PNG\r\n\x1a\n" + b"\0" * 200
        body = {"kind": "complaint", "service": "fard", "text": "broken road",
                "photo": {"content_type": "image/png", "data": base64.b64encode(png).decode()}}
        r = self.submit(body, tok)
        self.assertEqual(r.status, 201, r)
        row = self.pgs.query("SELECT a.content_type, length(a.bytes) FROM case_attachments a "
                             "JOIN cases c ON c.id = a.case_id WHERE c.tracking_no = '%s'"
                             % r.json["tracking_no"])
        self.assertEqual(row, [["image/png", str(len(png))]])
        before = self.count_cases()
        for photo, status, code in (
                ({"content_type": "image/png", "data": "!!!not base64!!!"}, 400, "invalid_field"),
                ({"content_type": "image/gif", "data": "R0lGODlh"}, 415, "unsupported_media_type"),
                ({"content_type": "image/jpeg", "data": base64.b64encode(png).decode()}, 422,
                 "invalid_case"),  # says JPEG, is PNG
                ({"content_type": "image/png", "data": base64.b64encode(b"hello world").decode()},
                 422, "invalid_case"),  # not an image at all
                ({"content_type": "image/png",
                  "data": base64.b64encode(png + b"\0" * (600 * 1024)).decode()}, 413, None),
                ("a string", 400, "invalid_field")):
            r = self.submit(dict(body, photo=photo), tok)
            self.assertErrorJSON(r, status, code)
        self.assertEqual(self.count_cases(), before, "a refused photo's case was stored")

if __name__ == "__main__":
    rbtest.main()
