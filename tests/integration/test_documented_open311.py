"""docs/open311.md's sentences no other file proves, with the real binary and a real
PostgreSQL, the open311 plugin configured with a `jurisdiction_id`:

- every endpoint but discovery answers 404 (Open311's error shape, in the format asked for)
  to another `jurisdiction_id`, and serves its own or none;
- a search without ids answers at most 1000 requests, newest first (1,005 stored: a large
  fixture written with SQL);
- the service list is read at every request: a reload shows a renamed service at once, and
  discovery's `changeset` moves to the time of that load."""
import glob
import hashlib
import os
import secrets
import shutil
import signal
import time
import urllib.parse
import xml.etree.ElementTree as ET

import rbtest

V2 = "/open311/v2"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JURISDICTION = "punjab.gov.pk"


class DocumentedOpen311Test(rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.services = os.path.join(cls.class_tmp(), "services")
        os.makedirs(cls.services)
        for f in glob.glob(os.path.join(rbtest.SOURCE_DIR, "config", "services", "*.yaml")):
            shutil.copy(f, cls.services)
        cls.pgs = cls.class_pg()
        cls.rd = cls.class_rabtad(pg=cls.pgs, start=False)
        cls.rd.config["services"] = os.path.join(cls.services, "*.yaml")
        cls.rd.config["plugins"] = [
            {"name": "staff_inbox"}, {"name": "open311",
                                "config": {"jurisdiction_id": JURISDICTION}}]
        cls.rd.start()
        cls.key = "rbk_" + secrets.token_urlsafe(32)  # stored as `rabtad apikey add` does
        cls.pgs.psql("INSERT INTO api_keys (name, key_hash) VALUES ('docs', '\\x%s'::bytea)"
                     % hashlib.sha256(cls.key.encode()).hexdigest())

    def post(self, path, fields):
        return self.rd.post(V2 + path, urllib.parse.urlencode(fields), headers=FORM)

    def file_request(self, **extra):
        r = self.post("/requests.json", dict({"api_key": self.key, "service_code": "fard",
                                              "description": "The patwari wants money",
                                              "lat": "31.5204", "long": "74.3587"},
                                             **extra))
        self.assertEqual(r.status, 201, r)
        return r.json[0]["service_request_id"]

    def test_another_jurisdiction_is_404_everywhere_ours_and_none_are_served(self):
        sid = self.file_request()
        self.file_request(jurisdiction_id=JURISDICTION)
        gets = ["/services.json", "/services/fard.json", "/requests.json",
                "/requests/%s.json" % sid, "/tokens/%s.json" % sid,
                "/servicerequestupdates.json"]
        for path in gets:
            sep = "&" if "?" in path else "?"
            for j, want in (("lahore.gov.pk", 404), (JURISDICTION, 200), (None, 200)):
                q = path + (sep + "jurisdiction_id=" + j if j else "")
                r = self.rd.get(V2 + q)
                self.assertEqual(r.status, want, "GET %s: %r" % (q, r))
                if want == 404:
                    self.assertEqual(r.json[0]["code"], 404, r)
                    self.assertIn(JURISDICTION, r.json[0]["description"])
        d = self.rd.get("/open311/discovery.json?jurisdiction_id=lahore.gov.pk")
        self.assertEqual(d.status, 200, "discovery takes no jurisdiction: %r" % d)
        xml = self.rd.get(V2 + "/services.xml?jurisdiction_id=lahore.gov.pk")
        self.assertEqual(xml.status, 404, xml)
        self.assertEqual(ET.fromstring(xml.body).findtext("error/code"), "404")
        before = self.pgs.scalar("SELECT count(*) FROM cases")
        r = self.post("/requests.json", {"api_key": self.key, "service_code": "fard",
                                         "description": "Elsewhere", "lat": "31.5", "long": "74.3",
                                         "jurisdiction_id": "lahore.gov.pk"})
        self.assertEqual(r.status, 404, r)
        r = self.post("/servicerequestupdates.json", {
            "api_key": self.key, "service_request_id": sid, "description": "More",
            "update_id": "u-1", "updated_datetime": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                  time.gmtime()),
            "jurisdiction_id": "lahore.gov.pk"})
        self.assertEqual(r.status, 404, r)
        self.assertEqual(self.pgs.scalar("SELECT count(*) FROM cases"), before,
                         "nothing stored for another jurisdiction")

    def test_a_search_answers_at_most_1000_newest_first(self):
        self.pgs.psql(
            "INSERT INTO cases (tracking_no, kind, status, channel, service_id, department_id,"
            " district_id, text, created_at)"
            " SELECT 'CAP-' || lpad(i::text, 4, '0'), 'complaint', 'routed', 'open311', 'fard',"
            " 'revenue', 'lahore', 'bulk ' || i, now() - interval '1 hour' + i * interval '1 s'"
            " FROM generate_series(1, 1005) i")
        r = self.rd.get(V2 + "/requests.json?service_code=fard")
        self.assertEqual(r.status, 200, r)
        ids = [x["service_request_id"] for x in r.json]
        cap = [i for i in ids if i.startswith("CAP-")]
        self.assertEqual(len(ids), 1000, "a search without ids answers at most 1000")
        self.assertEqual(cap[:3], ["CAP-1005", "CAP-1004", "CAP-1003"], "newest first")
        self.assertNotIn("CAP-0001", ids, "the oldest fall off the page")
        stamps = [x["requested_datetime"] for x in r.json]
        self.assertEqual(stamps, sorted(stamps, reverse=True))

    def test_a_reload_shows_at_once_and_moves_the_changeset(self):
        d1 = self.rd.get("/open311/discovery.json")
        self.assertEqual(d1.status, 200, d1)
        names = {s["service_code"]: s["service_name"]
                 for s in self.rd.get(V2 + "/services.json").json}
        self.assertEqual(names["fard"], "Fard (record of rights) issuance")
        path = os.path.join(self.services, "fard.yaml")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace('en: "Fard (record of rights) issuance"',
                                 'en: "Fard (land record) copy"'))
        # the changeset has whole seconds: let one pass so the new load's time differs
        t = time.time()
        rbtest.wait_until(lambda: time.time() >= int(t) + 1.05, 5.0, what="the next second")
        since = self.rd.log_offset()
        self.rd.send_signal(signal.SIGHUP)
        self.rd.wait_for_log(r"reloaded", timeout=15.0, since=since)
        names = {s["service_code"]: s["service_name"]
                 for s in self.rd.get(V2 + "/services.json").json}
        self.assertEqual(names["fard"], "Fard (land record) copy", "the reload shows at once")
        d2 = self.rd.get("/open311/discovery.json")
        self.assertGreater(d2.json["changeset"], d1.json["changeset"],
                           "discovery's changeset moves to the time of the last load")


if __name__ == "__main__":
    rbtest.main()
