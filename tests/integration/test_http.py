"""The foundation's HTTP surface against a real PostgreSQL: /healthz, /metrics, /api/v1/meta,
and the JSON error shape for 404, 405 and 413."""
import rbtest


def has_value(labels, value):
    return value in labels.values()


class HttpTest(rbtest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgs = cls.class_pg()
        cls.rd = cls.class_rabtad(pg=cls.pgs)

    def test_healthz_answers_200_json_status_ok(self):
        r = self.rd.get("/healthz")
        self.assertEqual(r.status, 200, r)
        self.assertIn("application/json", r.headers.get("content-type", ""), r.headers)
        self.assertIsInstance(r.json, dict, r)
        self.assertEqual(r.json.get("status"), "ok", r)
        self.assertEqual(r.json.get("database"), "ok", r)

    def test_metrics_has_the_series_and_counts_our_requests(self):
        before = self.rd.metrics()
        n = 5
        for _ in range(n):
            self.assertEqual(self.rd.get("/healthz").status, 200)
        after = self.rd.metrics()

        names = {s[0] for s in after}
        self.assertIn("rabta_http_requests_total", names)
        self.assertIn("rabta_http_request_duration_seconds_bucket", names)
        self.assertTrue(any(x.startswith("rabta_db_pool_") for x in names),
                        "no rabta_db_pool_* gauge among %s" % sorted(names))

        def healthz_200(samples):
            return rbtest.metric_sum(
                [s for s in samples if has_value(s[1], "/healthz") and has_value(s[1], "200")],
                "rabta_http_requests_total")

        self.assertEqual(healthz_200(after) - healthz_200(before), n,
                         "rabta_http_requests_total for /healthz 200 did not grow by %d" % n)
        # The histogram saw them too: its +Inf bucket for /healthz grew by at least n.
        inf_before = rbtest.metric_sum([s for s in before if has_value(s[1], "/healthz")],
                                       "rabta_http_request_duration_seconds_bucket", le="+Inf")
        inf_after = rbtest.metric_sum([s for s in after if has_value(s[1], "/healthz")],
                                      "rabta_http_request_duration_seconds_bucket", le="+Inf")
        self.assertGreaterEqual(inf_after - inf_before, n)

    def test_body_over_max_body_is_413_json_with_request_id(self):
        # max_body is 1MiB in the test config; send 2 MiB to the future submission endpoint.
        r = self.rd.post_big("/api/v1/cases", 2 * 1024 * 1024)
        self.assertErrorJSON(r, 413)
        # And the server is still fine afterwards.
        self.assertEqual(self.rd.get("/healthz").status, 200)

    def test_unknown_path_is_404_json(self):
        r = self.rd.get("/no/such/path")
        self.assertErrorJSON(r, 404)

    def test_wrong_method_is_405_json(self):
        r = self.rd.request("DELETE", "/healthz")
        self.assertErrorJSON(r, 405)

    def test_request_ids_differ_between_requests(self):
        a = self.assertErrorJSON(self.rd.get("/no/such/path"), 404)
        b = self.assertErrorJSON(self.rd.get("/no/such/path"), 404)
        self.assertNotEqual(a["request_id"], b["request_id"])

    def test_meta_schema_version_is_the_highest_migration(self):
        r = self.rd.get("/api/v1/meta")
        self.assertEqual(r.status, 200, r)
        self.assertIsInstance(r.json, dict, r)
        self.assertIsInstance(r.json.get("version"), str, r)
        want = rbtest.highest_migration()
        self.assertEqual(r.json.get("schema_version"), want,
                         "schema_version %r, highest migrations/NNNN file is %d"
                         % (r.json.get("schema_version"), want))
        if want:
            applied = self.pgs.scalar("SELECT max(version) FROM rabta_migrations WHERE owner = 'core'")
            self.assertEqual(int(applied), want, "rabta_migrations disagrees with /api/v1/meta")


if __name__ == "__main__":
    rbtest.main()
