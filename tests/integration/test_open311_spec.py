"""Open311 to the letter (docs/open311.md, "The specification's errors and limits"): one test
per row of the table, each the GeoReport v2 error or field rule it names, against the real
binary with a configured jurisdiction_id; a refusal stores nothing."""
import urllib.parse
import xml.etree.ElementTree as ET

import rbtest
import test_open311
from test_open311 import FORM, V2

JURISDICTION = "punjab.gov.pk"


class SpecServer(test_open311.Open311Server):
    @classmethod
    def configure(cls, config):
        cls.open311_config(config, jurisdiction_id=JURISDICTION)

    def post(self, fields, fmt="json", path="requests"):
        body = urllib.parse.urlencode(fields, doseq=True)
        return self.rd.post("%s/%s.%s" % (V2, path, fmt), body, headers=FORM)

    def fields(self, **over):
        f = {"api_key": self.key, "service_code": "fard",
             "description": "Fard not issued after three visits", "lat": "31.52",
             "long": "74.35"}
        f.update(over)
        return {k: v for k, v in f.items() if v is not None}

    def error(self, r, status, fmt="json", code=None):
        """r is HTTP status with Open311's error body (code: the body's code, default the
        status); returns the description."""
        self.assertEqual(r.status, status, "expected HTTP %d, got %r" % (status, r))
        if fmt == "xml":
            doc = ET.fromstring(r.body)
            self.assertEqual(doc.tag, "errors", r)
            self.assertEqual(doc.findtext("error/code"), str(code or status), r)
            return doc.findtext("error/description")
        self.assertIsInstance(r.json, list, r)
        self.assertEqual(r.json[0]["code"], code or status, r)
        self.assertTrue(r.json[0]["description"], r)
        return r.json[0]["description"]

    def cases(self):
        return int(self.pgs.scalar("SELECT count(*) FROM cases"))


class Open311SpecTest(SpecServer, rbtest.TestCase):
    # Errors ----------------------------------------------------------------------------------
    def test_row_jurisdiction_id_not_found_is_404_everywhere(self):
        before = self.cases()
        q = "?jurisdiction_id=lahore.gov.pk"
        for path in ("/services.json", "/services/fard.json", "/requests.json",
                     "/requests/RB-7KQ2M-XW4PD-9.json", "/tokens/RB-7KQ2M-XW4PD-9.json"):
            self.assertIn("jurisdiction_id", self.error(self.rd.get(V2 + path + q), 404), path)
        self.error(self.post(self.fields(jurisdiction_id="lahore.gov.pk")), 404)
        self.error(self.rd.get(V2 + "/services.xml" + q), 404, "xml")
        self.assertEqual(self.cases(), before)

    def test_row_jurisdiction_id_not_provided_is_served_one_jurisdiction(self):
        for path in ("/services.json", "/services/fard.json", "/requests.json"):
            self.assertEqual(self.rd.get(V2 + path).status, 200, path)
            r = self.rd.get(V2 + path + "?jurisdiction_id=" + JURISDICTION)
            self.assertEqual(r.status, 200, path)
        self.assertEqual(self.post(self.fields()).status, 201)
        self.assertEqual(self.post(self.fields(jurisdiction_id="")).status, 201)

    def test_row_service_code_not_found_is_404(self):
        before = self.cases()
        self.error(self.rd.get(V2 + "/services/no_such.json"), 404)
        self.error(self.rd.get(V2 + "/services/no_such.xml"), 404, "xml")
        desc = self.error(self.post(self.fields(service_code="no_such")), 404)
        self.assertIn("service_code", desc)
        self.error(self.post(self.fields(service_code="no_such"), "xml"), 404, "xml")
        self.assertEqual(self.cases(), before)

    def test_row_service_code_not_provided_is_400(self):
        before = self.cases()
        self.assertIn("service_code", self.error(self.rd.get(V2 + "/services/.json"), 400))
        self.error(self.rd.get(V2 + "/services/.xml"), 400, "xml")
        for f in (self.fields(service_code=None), self.fields(service_code="")):
            self.assertIn("service_code", self.error(self.post(f), 400))
        self.assertEqual(self.cases(), before)

    def test_row_token_and_request_id_not_found_is_404_not_provided_400(self):
        for kind in ("tokens", "requests"):
            self.error(self.rd.get("%s/%s/RB-7KQ2M-XW4PD-9.json" % (V2, kind)), 404)
            self.error(self.rd.get("%s/%s/not-an-id.xml" % (V2, kind)), 404, "xml")
            self.error(self.rd.get("%s/%s/.json" % (V2, kind)), 400)
        self.assertIn("token", self.error(self.rd.get(V2 + "/tokens/.json"), 400))

    def test_row_missing_or_invalid_api_key_is_403(self):
        before = self.cases()
        revoked = self.make_key("spec-revoked")
        self.pgs.psql("UPDATE api_keys SET revoked_at = now() WHERE name = 'spec-revoked'")
        for key in (None, "", "rbk_unknown", revoked):
            self.assertIn("api_key", self.error(self.post(self.fields(api_key=key)), 403))
            self.error(self.post(self.fields(api_key=key), "xml"), 403, "xml")
        self.assertEqual(self.cases(), before)

    def test_row_invalid_url_is_404_for_what_does_not_exist_400_for_a_bad_query(self):
        self.error(self.rd.get(V2 + "/nothing.json"), 404)
        self.error(self.rd.get(V2 + "/nothing.xml"), 404, "xml")
        self.error(self.rd.get(V2 + "/requests.xml?start_date=%zz"), 400, "xml")

    # Field rules ------------------------------------------------------------------------------
    def test_row_description_at_most_4000_characters(self):
        before = self.cases()
        self.assertIn("4000", self.error(self.post(self.fields(description="x" * 4001)), 400))
        self.assertEqual(self.cases(), before)
        urdu = "ب" * 4000  # 4,000 characters, 8,000 bytes
        r = self.post(self.fields(description=urdu))
        self.assertEqual(r.status, 201, r)
        got = self.rd.get("%s/requests/%s.json" % (V2, r.json[0]["service_request_id"]))
        self.assertEqual(got.json[0]["description"], urdu)

    def test_row_description_plain_text_without_html(self):
        before = self.cases()
        for text in ("<b>bribe</b> asked", "see <a href=x>here</a>", "<!-- x --> text",
                     "<script>alert(1)</script>"):
            self.assertIn("HTML", self.error(self.post(self.fields(description=text)), 400))
        self.assertEqual(self.cases(), before)
        r = self.post(self.fields(description="Fee 500 < 1000 asked\nand <3 hours wait >"))
        self.assertEqual(r.status, 201, r)

    def test_row_description_optional(self):
        name = [s["service_name"] for s in self.rd.get(V2 + "/services.json").json
                if s["service_code"] == "fard"][0]
        for f in (self.fields(description=None), self.fields(description="")):
            r = self.post(f)
            self.assertEqual(r.status, 201, r)
            sid = r.json[0]["service_request_id"]
            text = self.pgs.scalar("SELECT text FROM cases WHERE tracking_no = '%s'" % sid)
            self.assertEqual(text, name, "the case's text is not the service's name")

    def test_row_location_is_lat_long_or_address_string_or_address_id(self):
        alone = [{"lat": "31.5", "long": "74.3"}, {"address_string": "Mall Road, Lahore"},
                 {"address_id": "LHR-0042"}]
        for where in alone:
            f = self.fields(lat=None, long=None)
            f.update(where)
            r = self.post(f)
            self.assertEqual(r.status, 201, "%s: %r" % (where, r))
        before = self.cases()
        self.assertIn("location", self.error(self.post(self.fields(lat=None, long=None)), 400))
        self.error(self.post(self.fields(long=None)), 400)  # lat without long
        self.assertEqual(self.cases(), before)

    def test_row_an_empty_optional_argument_is_as_if_not_passed(self):
        empty = self.fields(email="", phone="", first_name="", last_name="", media_url="",
                            address_string="", account_id="", device_id="",
                            jurisdiction_id="")
        r = self.post(empty)
        self.assertEqual(r.status, 201, r)
        sid = r.json[0]["service_request_id"]
        self.assertEqual(self.pgs.scalar(
            "SELECT anonymous FROM cases WHERE tracking_no = '%s'" % sid), "t")
        for q in ("status=", "service_code=", "start_date=&end_date=", "service_request_id="):
            a = self.rd.get("%s/requests.json?%s" % (V2, q))
            b = self.rd.get(V2 + "/requests.json")
            self.assertEqual(a.status, 200, q)
            self.assertEqual(a.json, b.json, "%s is not the same as leaving it out" % q)

    def test_row_search_spans_at_most_90_days(self):
        r = self.rd.get(V2 + "/requests.json?start_date=2024-01-01T00:00:00Z"
                             "&end_date=2024-06-01T00:00:00Z")
        self.assertIn("90 days", self.error(r, 400))
        r = self.rd.get(V2 + "/requests.json?start_date=2024-01-01T00:00:00Z"
                             "&end_date=2024-03-30T00:00:00Z")
        self.assertEqual(r.status, 200, r)

    def test_row_content_types_are_the_specifications(self):
        r = self.rd.get(V2 + "/services.xml")
        self.assertEqual(r.headers.get("content-type"), "text/xml; charset=utf-8")
        self.assertTrue(r.body.startswith(b'<?xml version="1.0" encoding="utf-8"?>'), r)
        r = self.rd.get(V2 + "/services.json")
        self.assertEqual(r.headers.get("content-type"), "application/json; charset=utf-8")
        r = self.rd.get(V2 + "/nothing.json")
        self.assertEqual(r.headers.get("content-type"), "application/json; charset=utf-8")


class Open311GeneralErrorTest(SpecServer, rbtest.TestCase):
    """The spec's "General Service Error (any failure during processing, e.g. the CRM is
    down)": HTTP 400, the body's code the specific one (503), Retry-After."""

    def test_row_general_service_error_is_400_with_the_specific_code(self):
        self.assertEqual(self.post(self.fields()).status, 201)  # the key is good
        before = self.cases()
        self.pgs.stop(mode="fast")
        try:
            for fmt in ("json", "xml"):
                r = rbtest.http_request(self.rd.port, "GET", V2 + "/requests." + fmt,
                                        timeout=60)
                self.assertIn("try again", self.error(r, 400, fmt, code=503))
                self.assertEqual(r.headers.get("retry-after"), "1", r.headers)
                body = urllib.parse.urlencode(self.fields())
                r = rbtest.http_request(self.rd.port, "POST", V2 + "/requests." + fmt, body,
                                        headers=FORM, timeout=60)
                self.error(r, 400, fmt, code=503)
                self.assertEqual(r.headers.get("retry-after"), "1", r.headers)
        finally:
            self.pgs.start()
        rbtest.wait_until(lambda: self.post(self.fields(description="after")).status == 201,
                          60, what="Open311 to store again once PostgreSQL is back")
        self.assertEqual(self.cases(), before + 1, "a refused request was stored")


if __name__ == "__main__":
    rbtest.main()
