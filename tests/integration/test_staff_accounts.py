"""Administrators manage staff accounts through the staff API (docs/api.md "Staff accounts"):
an added account signs in with the password the answer showed once (or the one given), its
contact details are where escalations reach it, a new password revokes its sessions, a disabled
account's token stops working and it cannot sign in; everyone but an administrator is refused;
bad input is a 4xx with a sentence, and nothing is stored."""
import subprocess
import unittest

import rbtest

PASSWORD = "admin-pass-word-1"


class StaffAccountsTest(rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()
        cls.rd = cls.class_rabtad(pg=cls.pgs)
        for name, args in (("adm", ["--role", "admin"]),
                           ("sup", ["--role", "supervisor", "--department", "police"]),
                           ("ovs", ["--role", "oversight"])):
            r = subprocess.run([rbtest.RABTAD, "staff", "-c", cls.rd.config_path, "add", name] +
                               args, input=PASSWORD + "\n", universal_newlines=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            assert r.returncode == 0, r.stderr

    def login(self, username, password=PASSWORD):
        return self.rd.post("/api/v1/staff/login", {"username": username, "password": password})

    def bearer(self, username, password=PASSWORD):
        r = self.login(username, password)
        self.assertEqual(r.status, 200, r)
        return {"Authorization": "Bearer " + r.json["token"]}

    def count(self, username):
        return int(self.pgs.scalar("SELECT count(*) FROM staff WHERE username = '%s'" % username))

    def test_added_account_signs_in_with_the_password_shown_once(self):
        adm = self.bearer("adm")
        r = self.rd.post("/api/v1/staff/accounts",
                         {"username": "new.off", "role": "officer", "department": "police",
                          "display_name": "Nadia Khan", "districts": ["lahore", "kasur"],
                          "phone": "0300 7654321", "email": "nadia@police.example.pk"},
                         headers=adm)
        self.assertEqual(r.status, 201, r)
        pw = r.json["password"]
        self.assertRegex(pw, r"^[A-Za-z0-9_-]{20}$")
        r = self.login("new.off", pw)
        self.assertEqual((r.status, r.json.get("role"), r.json.get("department")),
                         (200, "officer", "police"), r)
        me = self.rd.get("/api/v1/staff/me", headers={"Authorization": "Bearer " + r.json["token"]})
        self.assertEqual((me.json["phone"], me.json["email"], me.json["districts"]),
                         ("+923007654321", "nadia@police.example.pk", ["lahore", "kasur"]))
        listed = self.rd.get("/api/v1/staff/accounts", headers=adm).json["accounts"]
        row = [a for a in listed if a["username"] == "new.off"][0]
        self.assertEqual((row["role"], row["state"], row["disabled"]), ("officer", "active", False))
        self.assertNotIn("password", str(listed))
        again = self.rd.post("/api/v1/staff/accounts",
                             {"username": "new.off", "role": "oversight"}, headers=adm)
        self.assertErrorJSON(again, 409, "exists")

    def test_given_password_new_password_and_disable(self):
        adm = self.bearer("adm")
        r = self.rd.post("/api/v1/staff/accounts", {"username": "temp.ovs", "role": "oversight",
                                                    "password": "chosen-pass-1"}, headers=adm)
        self.assertEqual(r.status, 201, r)
        self.assertNotIn("password", r.json, "a given password is not echoed")
        old = self.bearer("temp.ovs", "chosen-pass-1")
        # used once, so this process holds the token in its cache (RB_STAFF_CACHE_TTL)
        self.assertEqual(self.rd.get("/api/v1/staff/me", headers=old).status, 200)
        r = self.rd.post("/api/v1/staff/accounts/temp.ovs/password", headers=adm)
        self.assertEqual(r.status, 200, r)
        new_pw = r.json["password"]
        self.assertEqual(self.login("temp.ovs", "chosen-pass-1").status, 401)
        self.assertEqual(self.rd.get("/api/v1/staff/me", headers=old).status, 401,
                         "a new password ends the old sessions at once on this process")
        tok = self.bearer("temp.ovs", new_pw)
        self.assertEqual(self.rd.get("/api/v1/staff/me", headers=tok).status, 200)
        r = self.rd.post("/api/v1/staff/accounts/temp.ovs/disable", headers=adm)
        self.assertEqual((r.status, r.json), (200, {"username": "temp.ovs", "disabled": True}))
        self.assertEqual(self.login("temp.ovs", new_pw).status, 401)
        self.assertEqual(self.rd.get("/api/v1/staff/me", headers=tok).status, 401,
                         "a disabled account's session stops at once on this process")
        self.assertErrorJSON(self.rd.post("/api/v1/staff/accounts/adm/disable", headers=adm),
                             409, "own_account")
        self.assertErrorJSON(self.rd.post("/api/v1/staff/accounts/nobody/disable", headers=adm),
                             404, "not_found")
        self.assertErrorJSON(self.rd.post("/api/v1/staff/accounts/nobody/password", headers=adm),
                             404, "not_found")

    def test_only_administrators(self):
        for who in ("sup", "ovs"):
            h = self.bearer(who)
            self.assertErrorJSON(self.rd.get("/api/v1/staff/accounts", headers=h), 403,
                                 "forbidden")
            r = self.rd.post("/api/v1/staff/accounts", {"username": "x.%s" % who,
                                                        "role": "admin"}, headers=h)
            self.assertErrorJSON(r, 403, "forbidden")
            self.assertEqual(self.count("x.%s" % who), 0)
            self.assertErrorJSON(self.rd.post("/api/v1/staff/accounts/adm/disable", headers=h),
                                 403, "forbidden")
            self.assertErrorJSON(self.rd.post("/api/v1/staff/accounts/adm/password", headers=h),
                                 403, "forbidden")
        self.assertErrorJSON(self.rd.get("/api/v1/staff/accounts"), 401, "unauthorized")

    def test_bad_accounts_are_refused_with_a_sentence(self):
        adm = self.bearer("adm")
        cases = [
            ({"username": "a b", "role": "oversight"}, 400, "invalid_field", "username is"),
            ({"username": "x1", "role": "king"}, 422, "invalid_account", "role is one of"),
            ({"username": "x2", "role": "officer"}, 422, "invalid_account",
             "an officer needs department"),
            ({"username": "x3", "role": "admin", "department": "police"}, 422,
             "invalid_account", "covers every department"),
            ({"username": "x4", "role": "officer", "department": "nope"}, 422,
             "invalid_account", 'no department "nope"'),
            ({"username": "x5", "role": "officer", "department": "police",
              "districts": ["atlantis"]}, 422, "invalid_account", 'no district "atlantis"'),
            ({"username": "x6", "role": "oversight", "phone": "call me"}, 422,
             "invalid_account", 'phone "call me" is not a phone number'),
            ({"username": "x7", "role": "oversight", "email": "nobody"}, 422,
             "invalid_account", "is not an e-mail address"),
            ({"username": "x8", "role": "oversight", "password": "short"}, 400,
             "invalid_field", "password is a string of 8"),
            ({"username": "x9", "role": 7}, 400, "invalid_field", "are strings"),
        ]
        for body, status, code, text in cases:
            r = self.rd.post("/api/v1/staff/accounts", body, headers=adm)
            self.assertErrorJSON(r, status, code)
            self.assertIn(text, r.json["error"]["message"], body)
            self.assertEqual(self.count(body["username"]), 0, body)


if __name__ == "__main__":
    rbtest.main()
