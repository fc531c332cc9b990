"""A signed-in citizen's own cases through the mobile-app API (plugins/app/app_citizen.c): the
list (newest first, paginated), the timeline (internal staff notes hidden), comments (which
answer a case awaiting the citizen), and the rating that closes a case or reopens and
escalates it. Every state change follows core/cases/case_state.c and is refused with 409 otherwise;
someone else's case does not exist (404); a revoked token is 401.

The citizen signs in through the real flow (register → code from the SMS → verify)."""
import json

import rbtest
from test_app_auth import SignIn


class AppCasesTest(SignIn, rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()
        cls.rd = cls.class_rabtad(pg=cls.pgs)

    # helpers --------------------------------------------------------------------------------
    def submit(self, token, kind="complaint", text="Street lights on our road are out",
               **extra):
        body = dict({"kind": kind, "text": text, "district": "lahore", "language": "en"},
                    **extra)
        r = self.rd.post("/api/v1/cases", body, headers=self.auth(token))
        self.assertEqual(r.status, 201, r)
        return r.json["tracking_no"]

    def staff_sets(self, tn, status, note=None, internal=False):
        """What a department officer does: a status change with its event."""
        data = "'{\"internal\": true}'::jsonb" if internal else "NULL"
        self.pgs.psql(
            "WITH c AS (SELECT id, status FROM cases WHERE tracking_no = '%s'),"
            " u AS (UPDATE cases SET status = '%s' FROM c WHERE cases.id = c.id RETURNING c.*)"
            " INSERT INTO case_events (case_id, actor_type, actor_id, event, from_status,"
            "  to_status, note, data) SELECT id, 'staff', 'officer1', 'status', status, '%s', %s,"
            " %s FROM u" % (tn, status, status, "'%s'" % note if note else "NULL", data))

    def staff_note(self, tn, note, internal):
        data = "'{\"internal\": true}'::jsonb" if internal else "'{\"internal\": false}'::jsonb"
        self.pgs.psql("INSERT INTO case_events (case_id, actor_type, actor_id, event, note, data) "
                      "SELECT id, 'staff', 'officer1', 'note', '%s', %s FROM cases "
                      "WHERE tracking_no = '%s'" % (note, data, tn))

    def case_row(self, tn, cols="status"):
        """The row's columns as text (NULL reads as "")."""
        return self.pgs.query("SELECT %s FROM cases WHERE tracking_no = '%s'" % (cols, tn))[0]

    def events(self, tn):
        return [tuple(r) for r in self.pgs.query(
            "SELECT e.event, coalesce(e.from_status, ''), coalesce(e.to_status, ''), "
            "e.actor_type FROM case_events e JOIN cases c ON c.id = e.case_id "
            "WHERE c.tracking_no = '%s' ORDER BY e.id" % tn)]

    def timeline(self, tn, token):
        return self.rd.get("/api/v1/cases/%s/timeline" % tn, headers=self.auth(token))

    def comment(self, tn, token, body):
        return self.rd.post("/api/v1/cases/%s/comments" % tn, body, headers=self.auth(token))

    def rate(self, tn, token, body):
        return self.rd.post("/api/v1/cases/%s/rating" % tn, body, headers=self.auth(token))

    # tests ----------------------------------------------------------------------------------
    def test_full_flow_from_sign_in_to_rating(self):
        phone, token = self.sign_in()
        tn = self.submit(token, text="The water supply in G-block has been cut for four days")

        lst = self.rd.get("/api/v1/me/cases", headers=self.auth(token))
        self.assertEqual(lst.status, 200, lst)
        self.assertEqual([c["tracking_no"] for c in lst.json["cases"]], [tn])
        item = lst.json["cases"][0]
        self.assertEqual(set(item), {"tracking_no", "kind", "status", "service", "department",
                                     "created_at", "updated_at", "resolve_due_at", "sla"})
        self.assertEqual((item["kind"], item["status"]), ("complaint", "routed"))
        self.assertIsNone(lst.json["next_before"])

        tl = self.timeline(tn, token)
        self.assertEqual(tl.status, 200, tl)
        self.assertEqual(tl.json["case"]["tracking_no"], tn)
        self.assertEqual([e["event"] for e in tl.json["events"]], ["submitted", "routed"])
        self.assertEqual(tl.json["events"][1]["to_status"], "routed")
        self.assertNotIn(phone[1:], tl.text)

        # A plain comment changes nothing else.
        c = self.comment(tn, token, {"text": "Any news? The tanker has not come either."})
        self.assertEqual(c.status, 201, c)
        self.assertEqual((c.json["status"], c.json["replied"]), ("routed", False))
        # The department asks; the citizen's comment is the reply: in_progress again.
        self.staff_sets(tn, "in_progress")
        self.staff_sets(tn, "awaiting_citizen", note="Which street exactly?")
        c = self.comment(tn, token, {"text": "Street 7, near the mosque"})
        self.assertEqual(c.status, 201, c)
        self.assertEqual((c.json["status"], c.json["replied"]), ("in_progress", True))
        self.assertEqual(self.case_row(tn), ["in_progress"])
        # Both rows come from one statement; their order between themselves is not defined.
        self.assertEqual(sorted(self.events(tn)[-2:]), [
            ("citizen_reply", "awaiting_citizen", "in_progress", "citizen"),
            ("comment", "", "", "citizen")])
        tl = self.timeline(tn, token)
        notes = [e["note"] for e in tl.json["events"] if e["event"] == "comment"]
        self.assertEqual(notes, ["Any news? The tanker has not come either.",
                                 "Street 7, near the mosque"])
        self.assertIn("Which street exactly?", [e["note"] for e in tl.json["events"]])

        # Resolved; the citizen is not happy: reopened and escalated.
        self.staff_sets(tn, "resolved", note="Pipe repaired")
        r = self.rate(tn, token, {"rating": 2, "comment": "Still no water"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["status"], r.json["escalated"], r.json["satisfied"]),
                         ("reopened", True, False))
        self.assertEqual(self.case_row(tn, "status, escalation_level, rating"),
                         ["reopened", "1", "2"])
        self.assertEqual(sorted(self.events(tn)[-2:]), [
            ("escalation.requested", "", "", "citizen"),
            ("reopened", "resolved", "reopened", "citizen")])
        note = self.pgs.scalar("SELECT note FROM case_events e JOIN cases c ON c.id = e.case_id "
                               "WHERE c.tracking_no = '%s' AND event = 'reopened'" % tn)
        self.assertEqual(note, "Still no water")

        # Resolved again; now satisfied: closed.
        self.staff_sets(tn, "in_progress")
        self.staff_sets(tn, "resolved", note="New pipe laid")
        r = self.rate(tn, token, {"rating": 5})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["status"], r.json["escalated"]), ("closed", False))
        self.assertEqual(self.case_row(tn, "status, escalation_level, rating, "
                                           "closed_at IS NOT NULL"), ["closed", "1", "5", "t"])
        self.assertEqual(self.events(tn)[-1], ("rated", "resolved", "closed", "citizen"))
        data = json.loads(self.pgs.scalar(
            "SELECT data FROM case_events e JOIN cases c ON c.id = e.case_id "
            "WHERE c.tracking_no = '%s' AND event = 'rated'" % tn))
        self.assertEqual(data, {"rating": 5, "satisfied": True})
        lst = self.rd.get("/api/v1/me/cases", headers=self.auth(token))
        self.assertEqual(lst.json["cases"][0]["status"], "closed")

    def test_rating_follows_the_state_machine(self):
        _, token = self.sign_in()
        tn = self.submit(token)
        r = self.rate(tn, token, {"rating": 4})
        err = self.assertErrorJSON(r, 409, "invalid_transition")
        self.assertIn("cannot rate a case that is already with a department", err["message"])
        self.staff_sets(tn, "in_progress")
        err = self.assertErrorJSON(self.rate(tn, token, {"rating": 1}), 409, "invalid_transition")
        self.assertIn("cannot reopen a case that is in progress", err["message"])
        self.assertEqual(self.case_row(tn, "status, rating, escalation_level"),
                         ["in_progress", "", "0"])
        # The explicit answer wins over the stars.
        self.staff_sets(tn, "resolved")
        r = self.rate(tn, token, {"rating": 4, "satisfied": False})
        self.assertEqual(r.json["status"], "reopened", r)
        # A rejected case cannot be rated.
        self.staff_sets(tn, "rejected")
        self.assertErrorJSON(self.rate(tn, token, {"rating": 5}), 409, "invalid_transition")
        # A closed case can be rated again, or reopened.
        tn2 = self.submit(token)
        self.staff_sets(tn2, "closed")
        self.assertEqual(self.rate(tn2, token, {"rating": 3}).json["status"], "closed")
        self.assertEqual(self.rate(tn2, token, {"rating": 1}).json["status"], "reopened")

    def test_information_and_feedback_kinds(self):
        _, token = self.sign_in()
        info = self.submit(token, kind="information", text="How long does a domicile take?")
        self.staff_sets(info, "answered", note="Two weeks")
        r = self.rate(info, token, {"rating": 1, "satisfied": False})
        self.assertEqual((r.status, r.json["status"]), (200, "reopened"), r)
        fb = self.submit(token, kind="feedback", text="The staff were rude", rating=2)
        self.staff_sets(fb, "resolved")
        r = self.rate(fb, token, {"rating": 1})
        # Feedback cannot be reopened (core/cases/case_state.c): the rating closes it.
        self.assertEqual((r.status, r.json["status"], r.json["escalated"]),
                         (200, "closed", False), r)
        self.assertEqual(self.case_row(fb, "escalation_level, rating"), ["0", "1"])

    def test_internal_staff_notes_are_hidden_from_the_timeline(self):
        _, token = self.sign_in()
        tn = self.submit(token)
        self.staff_note(tn, "Visible: a team is on the way", internal=False)
        self.staff_note(tn, "Internal: the contractor is the ministers cousin", internal=True)
        self.staff_sets(tn, "in_progress", note="Internal: assign to Bilal", internal=True)
        tl = self.timeline(tn, token)
        self.assertEqual(tl.status, 200, tl)
        notes = [e["note"] for e in tl.json["events"]]
        self.assertIn("Visible: a team is on the way", notes)
        self.assertNotIn("Internal", tl.text)
        self.assertNotIn("officer1", tl.text, "staff usernames are not shown")
        self.assertEqual(tl.json["case"]["status"], "in_progress")
        # The status change itself is public: shown, without its internal note.
        change = [e for e in tl.json["events"] if e["to_status"] == "in_progress"]
        self.assertEqual(len(change), 1, tl.json["events"])
        self.assertIsNone(change[0]["note"])
        self.assertNotIn("note", [e["event"] for e in tl.json["events"]
                                  if e["note"] is None and e["actor"] == "staff"])
        for e in tl.json["events"]:
            self.assertEqual(set(e), {"at", "event", "actor", "from_status", "to_status", "note"})

    def test_list_is_newest_first_and_paginated(self):
        _, token = self.sign_in()
        _, other = self.sign_in()
        mine = [self.submit(token, text="Case number %d" % i) for i in range(5)]
        foreign = self.submit(other)
        seen, before, pages = [], None, 0
        while True:
            path = "/api/v1/me/cases?limit=2" + ("&before=" + before if before else "")
            r = self.rd.get(path, headers=self.auth(token))
            self.assertEqual(r.status, 200, r)
            pages += 1
            self.assertLessEqual(len(r.json["cases"]), 2)
            seen += [c["tracking_no"] for c in r.json["cases"]]
            before = r.json["next_before"]
            if not before:
                break
        self.assertEqual(pages, 3)
        self.assertEqual(seen, list(reversed(mine)))
        self.assertNotIn(foreign, seen)
        r = self.rd.get("/api/v1/me/cases", headers=self.auth(token))
        self.assertEqual(len(r.json["cases"]), 5)
        for bad in ("0", "101", "abc", "-1", "2.5", ""):
            self.assertErrorJSON(self.rd.get("/api/v1/me/cases?limit=" + bad,
                                             headers=self.auth(token)), 400, "invalid_query")
        self.assertErrorJSON(self.rd.get("/api/v1/me/cases?before=nonsense",
                                         headers=self.auth(token)), 400, "invalid_cursor")
        self.assertErrorJSON(self.rd.get("/api/v1/me/cases?before=" + foreign,
                                         headers=self.auth(token)), 400, "invalid_cursor")
        self.assertErrorJSON(self.rd.get("/api/v1/me/cases"), 401, "unauthorized")

    def test_someone_elses_case_does_not_exist(self):
        _, owner = self.sign_in()
        _, other = self.sign_in()
        tn = self.submit(owner)
        self.staff_sets(tn, "resolved")
        before = self.events(tn)
        self.assertErrorJSON(self.timeline(tn, other), 404, "not_found")
        self.assertErrorJSON(self.comment(tn, other, {"text": "hello"}), 404, "not_found")
        self.assertErrorJSON(self.rate(tn, other, {"rating": 1}), 404, "not_found")
        self.assertEqual(self.events(tn), before, "someone else changed the case")
        self.assertEqual(self.case_row(tn, "status, rating"), ["resolved", ""])
        # Unknown numbers and anonymous cases look the same.
        anon = self.rd.post("/api/v1/cases", {"kind": "complaint", "anonymous": True,
                                              "text": "Potholes everywhere"}).json["tracking_no"]
        self.assertErrorJSON(self.timeline(anon, owner), 404, "not_found")
        self.assertErrorJSON(self.timeline("RB-not-a-number", owner), 400,
                             "invalid_tracking_number")

    def test_signed_out_and_revoked_tokens_are_401(self):
        _, token = self.sign_in()
        tn = self.submit(token)
        self.staff_sets(tn, "resolved")
        self.assertEqual(self.rd.post("/api/v1/logout", headers=self.auth(token)).status, 204)
        for r in (self.timeline(tn, token), self.comment(tn, token, {"text": "x"}),
                  self.rate(tn, token, {"rating": 5}),
                  self.rd.get("/api/v1/me/cases", headers=self.auth(token)),
                  self.rd.get("/api/v1/cases/%s/timeline" % tn),
                  self.rd.post("/api/v1/cases/%s/comments" % tn, {"text": "x"}),
                  self.rd.get("/api/v1/me/cases", headers={"Authorization": "Bearer short"})):
            self.assertErrorJSON(r, 401, "unauthorized")
        self.assertEqual(self.case_row(tn, "status, rating"), ["resolved", ""])

    def test_comment_text_rules(self):
        _, token = self.sign_in()
        tn = self.submit(token)
        n = len(self.events(tn))
        cases = [
            ({"text": "x" * 5001}, 422, "invalid_text"),
            ({"text": "ب" * 5001}, 422, "invalid_text"),
            ({"text": "a\u0007b"}, 422, "invalid_text"),
            ({"text": "a\u202eb"}, 422, "invalid_text"),
            ({"text": "   \n "}, 422, "invalid_text"),
            ({"text": ""}, 422, "invalid_text"),
            ({}, 400, "missing_field"),
            ({"text": 5}, 400, "invalid_field"),
            ({"text": "x", "attachment": "a.png"}, 400, "unknown_field"),
            ("not json", 400, "invalid_json"),
            (b'{"text": "\xff"}', 400, "invalid_json"),
            ('{"text": "a\\u0000b"}', 400, "invalid_json"),
            ('{"text": "\\ud800"}', 400, "invalid_json"),
        ]
        for body, status, code in cases:
            h = self.auth(token)
            if not isinstance(body, dict):
                h["Content-Type"] = "application/json"
            r = self.rd.post("/api/v1/cases/%s/comments" % tn, body, headers=h)
            err = self.assertErrorJSON(r, status, code)
            if body == {"text": "x" * 5001}:
                self.assertIn("5001 characters; at most 5000", err["message"])
        self.assertEqual(len(self.events(tn)), n, "a refused comment was stored")
        # At the limit, in Urdu (code points, not bytes), with lines and tabs: accepted.
        long_ur = ("ب" * 4990) + "\nسطر\tدو"
        self.assertEqual(len(long_ur), 4997)
        r = self.comment(tn, token, {"text": long_ur})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.rd.post("/api/v1/cases/%s/comments" % tn, "text=hi", headers=dict(
            self.auth(token), **{"Content-Type": "text/plain"})).status, 415)

    def test_rating_input_rules(self):
        _, token = self.sign_in()
        tn = self.submit(token)
        self.staff_sets(tn, "resolved")
        cases = [
            ({}, 400, "missing_field"),
            ({"rating": 0}, 400, "invalid_field"),
            ({"rating": 6}, 400, "invalid_field"),
            ({"rating": 4.5}, 400, "invalid_field"),
            ({"rating": "5"}, 400, "invalid_field"),
            ({"rating": 5, "satisfied": "yes"}, 400, "invalid_field"),
            ({"rating": 5, "stars": 5}, 400, "unknown_field"),
            ({"rating": 5, "comment": "y" * 5001}, 422, "invalid_text"),
            ({"rating": 5, "comment": "a\u0001"}, 422, "invalid_text"),
            (b'{"rating": 5, "comment": "\xc0\xaf"}', 400, "invalid_json"),
            ("{", 400, "invalid_json"),
        ]
        for body, status, code in cases:
            h = self.auth(token)
            if not isinstance(body, dict):
                h["Content-Type"] = "application/json"
            r = self.rd.post("/api/v1/cases/%s/rating" % tn, body, headers=h)
            self.assertErrorJSON(r, status, code)
        self.assertEqual(self.case_row(tn, "status, rating"), ["resolved", ""])
        self.assertErrorJSON(self.rate("RB-XYZ", token, {"rating": 5}), 400,
                             "invalid_tracking_number")
        self.assertErrorJSON(self.rate("RB-00000-00000-0", token, {"rating": 5}), 404,
                             "not_found")  # well-formed, no such case


if __name__ == "__main__":
    rbtest.main()
