-- 0058_shared_rate_limits: the per-client rates that guard guesses and anonymous writes
-- (server.routes: anonymous submissions, register/verify, status look-ups, staff sign-in) are
-- counted by every rabtad process on this database together (core/server/rate_shared.c), as
-- GCRA schedules: one row per rule and client, the time the next request would be due without
-- a burst. UNLOGGED: a crash of PostgreSQL forgets the schedules (every client starts with a
-- full burst), which costs less than writing each guess to the WAL. Rows whose time has passed
-- hold nothing and are swept every minute.
CREATE UNLOGGED TABLE rate_limit_schedules (
    rule   text        NOT NULL, -- "POST /api/v1/verify"
    client bytea       NOT NULL, -- the address key: IPv4 address or IPv6 /64 (base/addr.h)
    tat    timestamptz NOT NULL, -- theoretical arrival time of the next request
    PRIMARY KEY (rule, client)
);

-- Takes one request of client under rule, allowing per_second on average and bursts of
-- burst: 0 when allowed (and counted), else the seconds until a request would be. One
-- statement; concurrent callers for one client wait on its row, so N processes together
-- never allow more than the rate.
CREATE FUNCTION rabta_rate_take(p_rule text, p_client bytea, p_per_second float8, p_burst int)
RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz := clock_timestamp();
    step interval := make_interval(secs => 1 / p_per_second);
    ahead interval := make_interval(secs => greatest(p_burst, 1) / p_per_second);
    due timestamptz;
BEGIN
    INSERT INTO rate_limit_schedules AS s (rule, client, tat) VALUES (p_rule, p_client, t + step)
    ON CONFLICT (rule, client) DO UPDATE SET tat = greatest(s.tat, t) + step
        WHERE greatest(s.tat, t) + step <= t + ahead
    RETURNING s.tat INTO due;
    IF FOUND THEN
        RETURN 0;
    END IF;
    SELECT s.tat INTO due FROM rate_limit_schedules s
     WHERE s.rule = p_rule AND s.client = p_client;
    RETURN greatest(extract(epoch FROM due + step - t - ahead)::float8, 0.001);
END $$;
