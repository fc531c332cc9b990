#!/usr/bin/env python3
"""Writes the registry and transactions for tests/bench/bench_feedback.sh:
   feedback_gen.py DIR N_TRANSACTIONS
DIR/offices.csv (10 licensing centres in each of the sample's districts, police services),
DIR/officials.csv (3 per office) and DIR/transactions.csv (N rows, unique references,
completed in the last hour, so their first outreach step is not due during the benchmark)."""
import datetime
import os
import random
import sys

SERVICES = ["driving_licence_issue", "driving_licence_renewal", "learner_permit",
            "character_certificate", "fir_registration"]


def districts(src):
    out = []
    with open(os.path.join(src, "config", "districts.yaml")) as f:
        for line in f:
            if line.startswith("- id: "):
                out.append(line.split(":", 1)[1].strip())
    return out


def main():
    d, n = sys.argv[1], int(sys.argv[2])
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    offices = ["%s-%d" % (dist, i) for dist in districts(src) for i in range(10)]
    with open(os.path.join(d, "offices.csv"), "w") as f:
        f.write("id,name_en,name_ur,department,district,services,supervisor\n")
        for o in offices:
            f.write("%s,Licensing Centre %s,,police,%s,%s,sup.%s\n"
                    % (o, o, o.rsplit("-", 1)[0], ";".join(SERVICES), o))
    with open(os.path.join(d, "officials.csv"), "w") as f:
        f.write("id,name,designation,office,phone\n")
        for o in offices:
            for k in range(3):
                f.write("%s.%d,Official %d of %s,Clerk,%s,\n" % (o, k, k, o, o))
    rng = random.Random(16)
    now = datetime.datetime.utcnow()
    stamps = [(now - datetime.timedelta(seconds=s)).strftime("%Y-%m-%d %H:%M:%SZ")
              for s in range(0, 3600, 7)]
    with open(os.path.join(d, "transactions.csv"), "w") as f:
        f.write("reference,office,service,official,citizen_name,phone,completed_at\n")
        for i in range(n):
            o = offices[rng.randrange(len(offices))]
            f.write("B-%d,%s,%s,%s.%d,Citizen %d,0300%07d,%s\n"
                    % (i, o, SERVICES[i % 5], o, i % 3, i, rng.randrange(10000000),
                       stamps[i % len(stamps)]))


if __name__ == "__main__":
    main()
