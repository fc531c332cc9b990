"""`rabtad route -c FILE --dry-run JSON` prints one routing decision from the sample rules,
stores nothing, and refuses bad input with exit 2."""
import json
import os

import rbtest

CONFIG = os.path.join(rbtest.SOURCE_DIR, "config", "rabta.yaml")


def route(case):
    return rbtest.run_rabtad(["route", "-c", CONFIG, "--dry-run",
                              case if isinstance(case, str) else json.dumps(case)])


class RouteCliTest(rbtest.TestCase):
    def test_urdu_bribe_complaint_is_corruption_priority_one(self):
        out = route({"service": "fard", "district": "lahore", "text": "پٹواری نے رشوت مانگی"})
        self.assertEqual(out.returncode, 0, out.stderr)
        d = json.loads(out.stdout)
        self.assertEqual(d["department"], "revenue")
        self.assertEqual(d["priority"], 1)
        self.assertIn("corruption", d["flags"])
        self.assertFalse(d["triage"])

    def test_service_decides_the_department(self):
        d = json.loads(route({"service": "vehicle_registration", "text": "late"}).stdout)
        self.assertEqual(d["department"], "excise")

    def test_bad_input_exits_2_with_a_reason(self):
        for arg, needle in (("not json", "expected a JSON object"), ("[1]", "not an object"),
                            ({"text": 5}, "field \"text\""), ({"colour": "red"}, "\"colour\"")):
            out = route(arg)
            self.assertEqual(out.returncode, 2, (arg, out.stdout))
            self.assertIn(needle, out.stderr)
        out = rbtest.run_rabtad(["route", "-c", CONFIG])
        self.assertEqual(out.returncode, 2)


if __name__ == "__main__":
    rbtest.main()
