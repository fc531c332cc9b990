"""The durable jobs queue, end to end: real rabtad processes, a real PostgreSQL, and the test
plugin good.so, which enqueues jobs (POST /test/jobs) and handles kinds "test.record" (records
each run in test_job_runs) and "test.fail" (fails every time, retry in 0.2 s)."""
import os
import re
import time

import rbtest

GOOD = os.path.join(rbtest.TEST_PLUGIN_DIR, "good.so")

RUNS_TABLE = """
CREATE TABLE IF NOT EXISTS test_job_runs (
    job_id bigint NOT NULL, attempt int NOT NULL, payload jsonb, kind text,
    worker int, at timestamptz NOT NULL, late interval)
"""


class JobsTest(rbtest.TestCase):
    def setUp(self):
        super().setUp()
        self.pgs = self.pg()
        self.pgs.psql(RUNS_TABLE)

    def server(self, name="rabtad", jobs=None, start=True, good=None):
        rd = self.rabtad(pg=self.pgs, name=name)
        plugin = {"name": "good", "path": GOOD}
        if good:
            plugin["config"] = good
        rd.config["plugins"] = rd.config["plugins"] + [plugin]
        rd.config["jobs"] = dict({"backoff_base": "200ms", "backoff_max": "1s"}, **(jobs or {}))
        if start:
            rd.start()
        return rd

    def enqueue(self, rd, kind="test.record", delay=0, dedup=None, payload=None):
        path = "/test/jobs?kind=%s&delay=%s" % (kind, delay)
        if dedup:
            path += "&dedup=" + dedup
        r = rd.post(path, payload or {"n": 1})
        self.assertEqual(r.status, 200, r)
        return r.json["id"]

    def runs(self, where="true"):
        return int(self.pgs.scalar("SELECT count(*) FROM test_job_runs WHERE " + where))

    def wait_queue_empty(self, what, timeout=20):
        rbtest.wait_until(lambda: self.pgs.scalar("SELECT count(*) FROM jobs") == "0", timeout,
                          what=what)

    def lateness(self, jid):
        """Seconds from the job's run_at to its run, as the database saw them (good.so)."""
        return float(self.pgs.scalar("SELECT extract(epoch from late) FROM test_job_runs "
                                     "WHERE job_id = %d" % jid))

    def jobs_cli(self, rd, *args):
        return rbtest.run_rabtad(["jobs", "-c", rd.config_path] + list(args))

    def test_due_job_runs_once_and_leaves_the_queue(self):
        rd = self.server()
        jid = self.enqueue(rd, payload={"hello": "سلام"})
        # Once its row has left the queue nothing can run it again: then count its runs.
        rbtest.wait_until(lambda: self.runs("job_id = %d" % jid) == 1, 20, what="the job's run")
        self.wait_queue_empty("the finished job to leave the queue")
        self.assertEqual(self.runs("job_id = %d" % jid), 1, "ran more than once")
        self.assertEqual(self.pgs.scalar("SELECT payload->>'hello' FROM test_job_runs"), "سلام")

    def test_delayed_job_runs_at_its_time_not_before(self):
        # Nothing but the timer can run it within the wait: the runner's only other wake-up
        # is hourly (jobs.c, arm_timer). How late it ran is a benchmark's business
        # (tests/bench/bench_sla.sh), not this test's.
        rd = self.server()
        jid = self.enqueue(rd, delay=2)
        rbtest.wait_until(lambda: self.runs("job_id = %d" % jid) == 1, 60, what="the delayed run")
        late = self.lateness(jid)
        rbtest.log("the delayed job ran %.3f s after its time" % late)
        self.assertGreaterEqual(late, 0, "ran before its time")

    def test_an_earlier_job_added_later_wakes_the_timer(self):
        # The timer is armed an hour ahead (its longest), so only the wake-up by the new
        # job can run that job within the wait.
        rd = self.server()
        late = self.enqueue(rd, delay=3600)
        soon = self.enqueue(rd, delay=0.5)
        rbtest.wait_until(lambda: self.runs("job_id = %d" % soon) == 1, 60, what="the early job")
        self.assertGreaterEqual(self.lateness(soon), 0, "ran before its time")
        self.assertEqual(self.runs("job_id = %d" % late), 0)

    def test_a_job_queued_by_another_process_wakes_this_one(self):
        # rabtad's own sessions learn of the jobs they queue by a notice, not NOTIFY (which
        # would serialise their commits: migration 0018); the other processes hear of them
        # through the one NOTIFY relayed by the process that queued them. Here the queuing
        # process handles no jobs at all, and the runner's timer is armed an hour ahead (its
        # longest), so only the NOTIFY can make it run the job within the wait.
        runner = self.server(name="runner")
        late = self.enqueue(runner, delay=3600)
        queuer = self.rabtad(pg=self.pgs, name="queuer")
        queuer.config["plugins"] = queuer.config["plugins"] + [
            {"name": "good", "path": GOOD, "config": {"enqueue_only": True}}]
        queuer.start()
        soon = self.enqueue(queuer, delay=0.5)
        rbtest.wait_until(lambda: self.runs("job_id = %d" % soon) == 1, 60,
                          what="the runner to run the job the other process queued")
        self.assertEqual(self.runs("job_id = %d" % late), 0)

    def test_dedup_key_keeps_one_pending_job(self):
        rd = self.server()
        first = self.enqueue(rd, delay=1, dedup="sla:case-1:ack")
        self.assertIsNotNone(first)
        second = self.enqueue(rd, delay=1, dedup="sla:case-1:ack")
        self.assertIsNone(second, "a second job with a pending dedup key was stored")
        rbtest.wait_until(lambda: self.runs() == 1, 20, what="the deduplicated run")
        self.wait_queue_empty("the deduplicated job to leave the queue")
        self.assertEqual(self.runs(), 1)

    def test_failing_job_backs_off_then_dies_and_cli_retries_or_cancels_it(self):
        rd = self.server()
        # Queued with its max_attempts in one statement (an UPDATE after the enqueue raced
        # the runs already under way); a psql session's insert wakes the runner by NOTIFY.
        jid = int(self.pgs.scalar("INSERT INTO jobs (kind, max_attempts) VALUES ('test.fail', 3) "
                                  "RETURNING id"))
        rbtest.wait_until(
            lambda: self.pgs.scalar("SELECT state FROM jobs WHERE id = %d" % jid) == "dead", 10,
            what="the failing job to become dead")
        row = self.pgs.query("SELECT attempts, last_error FROM jobs WHERE id = %d" % jid)[0]
        self.assertEqual(row[0], "3")
        self.assertIn("failing on purpose (attempt 3)", row[1])

        out = self.jobs_cli(rd, "list", "--state", "dead")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("test.fail", out.stdout)
        self.assertIn(str(jid), out.stdout)

        out = self.jobs_cli(rd, "retry", str(jid))
        self.assertEqual(out.returncode, 0, out.stderr)
        rbtest.wait_until(
            lambda: self.pgs.scalar("SELECT attempts FROM jobs WHERE id = %d" % jid) == "3" and
            self.pgs.scalar("SELECT state FROM jobs WHERE id = %d" % jid) == "dead", 10,
            what="the retried job to run its attempts again")

        out = self.jobs_cli(rd, "cancel", str(jid))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.pgs.scalar("SELECT state FROM jobs WHERE id = %d" % jid),
                         "cancelled")
        out = self.jobs_cli(rd, "cancel", str(jid))
        self.assertEqual(out.returncode, 1)
        self.assertIn("is cancelled", out.stderr)

    def test_cli_refuses_bad_arguments(self):
        rd = self.server(start=False)
        rd.write_config()
        for args, needle in ((["retry", "abc"], "ID is a job number"),
                             (["retry"], "ID is a job number"),
                             (["frobnicate"], "unknown jobs command"),
                             (["list", "--state", "sleeping"], "expected queued")):
            out = self.jobs_cli(rd, *args)
            self.assertEqual(out.returncode, 2, (args, out.stderr))
            self.assertIn(needle, out.stderr, args)
        out = self.jobs_cli(rd, "retry", "999999")
        self.assertEqual(out.returncode, 1)
        self.assertIn("there is no job 999999", out.stderr)

    def test_missed_jobs_run_at_next_start(self):
        rd = self.server()
        rd.stop()
        # Due while no process was running.
        self.pgs.psql("INSERT INTO jobs (kind, run_at) SELECT 'test.record', "
                      "now() - make_interval(secs => g) FROM generate_series(1, 50) g")
        rd2 = self.server(name="again")
        rbtest.wait_until(lambda: self.runs() == 50, 10, what="the 50 missed jobs")
        self.assertEqual(self.runs("attempt = 1"), 50)
        rd2.stop()

    def test_lost_run_is_requeued_after_its_lease(self):
        # A run whose worker died (state running, lock older than the lease) runs again.
        self.server(jobs={"lease": "2s"})
        self.pgs.psql("INSERT INTO jobs (kind, state, attempts, locked_by, locked_at) VALUES "
                      "('test.record', 'running', 1, 'gone:1', now() - interval '10 minutes')")
        rbtest.wait_until(lambda: self.runs("attempt = 2") == 1, 10,
                          what="the lost run to run again")

    def paced_starts(self):
        return [float(x) for x in self.pgs.psql(
            "SELECT extract(epoch from at) FROM test_job_runs WHERE kind = 'test.paced' "
            "ORDER BY at").split()]

    def assert_paced(self, at, rate, burst, who="the paced runs"):
        """The pace of the starts `at` (the database's clock_timestamp() of each run, in
        order), checked against the configured rate and burst. Never faster than the pace
        (fixed limits: they hold on any machine); "not far slower" and "the burst went at once"
        are measured against the run's own timestamps, not against a wall-clock limit, so a
        loaded machine (a sanitizer build on a busy host) does not fail them. The schedule is
        virtual (GCRA): a turn fired late does not push the next ones back, so the median gap
        stays near 1 / rate under load while a slower pace moves it."""
        n = len(at)
        span, paced = at[-1] - at[0], (n - burst) / rate
        self.assertGreater(span, paced - 0.15, "%s went faster than the rate" % who)
        for i in range(n):  # in any one second: at most rate + burst
            self.assertLessEqual(sum(1 for t in at[i:] if t - at[i] < 1.0), rate + burst, who)
        gaps = sorted(b - a for a, b in zip(at[burst - 1:], at[burst:]))
        median = gaps[len(gaps) // 2]
        self.assertLess(median, 1.5 / rate, "%s: median gap %.3f s, the rate is %g a second: "
                        "a third slower or more" % (who, median, rate))
        if burst > 1:  # the burst's runs came closer together than the paced ones
            lead = (at[burst - 1] - at[0]) / (burst - 1)
            self.assertLess(lead, median / 2, "the burst did not go at once: %.3f s apart, "
                            "the paced runs %.3f s" % (lead, median))

    def test_a_paced_kind_starts_at_its_rate_and_its_backlog_waits_untouched(self):
        # rate 10/s, burst 5: the first 5 at once, then one every 0.1 s: 30 runs take
        # (30 - 5) / 10 = 2.5 s. Runs are claimed at most a second ahead of their turn; the
        # rest of the backlog is never claimed, re-queued or written while it waits (attempts
        # stays 0), and other kinds do not wait behind it. The times are those of the runs'
        # inserts (clock_timestamp()); assert_paced checks them.
        rate, burst, n = 10, 5, 30
        self.server(good={"pace_rate": rate, "pace_burst": burst})
        self.pgs.psql("INSERT INTO jobs (kind, payload) SELECT 'test.paced', "
                      "jsonb_build_object('g', g) FROM generate_series(1, %d) g" % n)
        t0 = time.monotonic()
        self.pgs.psql("INSERT INTO jobs (kind) VALUES ('test.record')")
        most_claimed, touched = 0, 0
        while self.runs("kind = 'test.paced'") < n and time.monotonic() - t0 < 120:
            row = self.pgs.psql(
                "SELECT count(*) FILTER (WHERE state = 'running'), "
                "count(*) FILTER (WHERE state = 'queued' AND (attempts > 0 OR last_error "
                "IS NOT NULL)) FROM jobs WHERE kind = 'test.paced'").split("|")
            most_claimed = max(most_claimed, int(row[0]))
            touched = max(touched, int(row[1]))
            time.sleep(0.05)
        self.assertEqual(self.runs("kind = 'test.paced'"), n)
        self.assertEqual(self.runs("kind = 'test.paced' AND attempt = 1"), n,
                         "a paced run was re-queued")
        other = self.pgs.scalar("SELECT extract(epoch from at) FROM test_job_runs "
                                "WHERE kind = 'test.record'")
        self.assertTrue(other, "the other kind's job did not run")
        self.assertEqual(touched, 0, "queued paced jobs were written while they waited")
        self.assertLessEqual(most_claimed, rate * 1 + burst + 1, "claimed more than a second ahead")
        at = self.paced_starts()
        self.assertLess(float(other), at[n // 2], "another kind waited behind the paced backlog")
        self.assert_paced(at, rate, burst)
        self.assertEqual(self.pgs.scalar("SELECT count(*) FROM jobs"), "0")

    def test_a_paced_kind_holds_its_rate_across_processes(self):
        # Two processes with the same pace share its schedule (table job_paces): together
        # they start 10 runs a second, not 10 each. Without the shared schedule the 40 runs
        # would take ~1.9 s instead of (40 - 2) / 10 = 3.8 s.
        rate, burst, n = 10, 2, 40
        servers = [self.server(name="q%d" % i, good={"pace_rate": rate, "pace_burst": burst})
                   for i in range(2)]
        self.pgs.psql("INSERT INTO jobs (kind, payload) SELECT 'test.paced', "
                      "jsonb_build_object('g', g) FROM generate_series(1, %d) g" % n)
        rbtest.wait_until(lambda: self.runs("kind = 'test.paced'") >= n, 120,
                          what="all paced runs")
        self.wait_queue_empty("the paced jobs to leave the queue")
        self.assertEqual(self.runs("kind = 'test.paced'"), n, "a paced job ran twice")
        for srv in servers:  # both took part
            m = re.search(r"^rabta_jobs_started_total (\d+)", srv.get("/metrics").body.decode(),
                          re.M)
            self.assertTrue(m and int(m.group(1)) > 0, "%s started no run" % srv.name)
        at = self.paced_starts()
        self.assert_paced(at, rate, burst, "the two processes together")
        for srv in servers:
            self.assertEqual(srv.stop(), 0)

    def test_paced_runs_waiting_at_stop_go_back_to_the_queue_and_run_once(self):
        rd = self.server(good={"pace_rate": 4, "pace_burst": 1})
        self.pgs.psql("INSERT INTO jobs (kind, payload) SELECT 'test.paced', "
                      "jsonb_build_object('g', g) FROM generate_series(1, 40) g")
        rbtest.wait_until(lambda: self.runs("kind = 'test.paced'") >= 3, 60,
                          what="the first paced runs")
        self.assertEqual(rd.stop(), 0)
        done = self.runs("kind = 'test.paced'")
        self.assertLess(done, 40)
        # Those claimed and waiting for their turn were put back: none left running, none
        # charged an attempt.
        self.assertEqual(self.pgs.scalar("SELECT count(*) FROM jobs WHERE state <> 'queued'"),
                         "0")
        self.assertEqual(int(self.pgs.scalar("SELECT count(*) FROM jobs WHERE attempts = 0")),
                         40 - done)
        self.server(name="again", good={"pace_rate": 200, "pace_burst": 10})
        rbtest.wait_until(lambda: self.runs("kind = 'test.paced'") >= 40, 30,
                          what="the rest of the paced runs")
        self.wait_queue_empty("the paced jobs to leave the queue")
        self.assertEqual(int(self.pgs.scalar(
            "SELECT count(DISTINCT payload->>'g') FROM test_job_runs WHERE kind = 'test.paced'")),
            40)
        self.assertEqual(self.runs("kind = 'test.paced'"), 40, "a paced job ran twice")
        self.assertEqual(self.runs("kind = 'test.paced' AND attempt = 1"), 40)

    def test_a_bad_pace_is_refused_at_start(self):
        rd = self.server(good={"pace_rate": 1e9}, start=False)
        rd.start(wait=False)
        self.assertNotEqual(rd.wait(), 0)
        self.assertIn("good", rd.log_tail())

    def test_three_processes_run_each_job_exactly_once(self):
        servers = [self.server(name="p%d" % i, jobs={"batch": 50}) for i in range(3)]
        n = 3000
        # Spread over the next two seconds so all three processes wake for them.
        self.pgs.psql("INSERT INTO jobs (kind, run_at, payload) SELECT 'test.record', "
                      "now() + make_interval(secs => (g %% 20) / 10.0), "
                      "jsonb_build_object('g', g) FROM generate_series(1, %d) g" % n)
        rbtest.wait_until(lambda: self.runs() >= n, 60, interval=0.2, what="all runs")
        self.wait_queue_empty("every job to leave the queue")
        self.assertEqual(self.runs(), n, "some job ran twice")
        self.assertEqual(int(self.pgs.scalar("SELECT count(DISTINCT job_id) FROM test_job_runs")),
                         n)
        self.assertEqual(self.pgs.scalar("SELECT count(*) FROM jobs"), "0")
        for s in servers:
            self.assertEqual(s.stop(), 0)


if __name__ == "__main__":
    rbtest.main()
