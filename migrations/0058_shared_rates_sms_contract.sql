-- 0058_shared_rates_sms_contract: two parts.
-- (1) The per-client rates that guard guesses and anonymous writes (server.routes: anonymous
-- submissions, register/verify, status look-ups, staff sign-in) are counted by every rabtad process on this database together (core/server/rate_shared.c), as
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

-- (2) The schema contract (docs/plugins.md) grows by what the SMS plugin's MO handling read
-- from core's tables directly (plugins/sms_kannel/sms_mo.c): citizens by phone, idempotency
-- keys, the case waiting for a rating, and a phone's opt-out (STOP/START). The reads are
-- STABLE single SELECTs, not STRICT: PostgreSQL inlines them into the calling query, so the
-- plans stay those of the statements they replace.

-- The citizen who has this phone (no row: none).
CREATE FUNCTION rabta_citizen_by_phone(phone text)
RETURNS TABLE (id bigint, language text, opted_out_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.id, c.language, c.opted_out_at FROM citizens c WHERE c.phone = $1
$$;

-- The case an idempotency key of scope stored (no row: the key is unused), with the hash of
-- the request that used it.
CREATE FUNCTION rabta_idempotency_key(scope text, key text)
RETURNS TABLE (case_id bigint, request_hash text)
LANGUAGE sql STABLE AS $$
    SELECT k.case_id, k.request_hash FROM idempotency_keys k WHERE k.scope = $1 AND k.key = $2
$$;

-- The case of this phone's citizen that waits for a rating (resolved or answered, and its
-- notice asked for one), the newest; no row: none.
CREATE FUNCTION rabta_rating_pending(phone text)
RETURNS TABLE (id bigint, tracking_no text, citizen_id bigint, language text)
LANGUAGE sql STABLE AS $$
    SELECT c.id, c.tracking_no, c.citizen_id, c.language
    FROM citizens ci JOIN cases c ON c.citizen_id = ci.id
    WHERE ci.phone = $1 AND c.status IN ('resolved', 'answered')
      AND EXISTS (SELECT 1 FROM messages n WHERE n.case_id = c.id
                  AND n.template IN ('notice.resolve', 'notice.answer'))
    ORDER BY c.updated_at DESC, c.id DESC LIMIT 1
$$;

-- STOP (stop true) and START (false) of phones, parallel arrays: the citizen of each phone
-- (added with language when there is none) opts out (kept from the first STOP) or back in.
-- One phone twice: the last element wins. Returns each phone's citizen.
CREATE FUNCTION rabta_citizen_opt_out(phone text[], language text[], stop boolean[])
RETURNS TABLE (id bigint, phone text)
LANGUAGE sql AS $$
    INSERT INTO citizens AS c (phone, language, opted_out_at)
    SELECT DISTINCT ON (t.phone) t.phone, t.language, CASE WHEN t.stop THEN now() END
    FROM unnest($1, $2, $3) WITH ORDINALITY AS t(phone, language, stop, n)
    ORDER BY t.phone, t.n DESC
    ON CONFLICT (phone) DO UPDATE SET opted_out_at =
        CASE WHEN excluded.opted_out_at IS NOT NULL THEN coalesce(c.opted_out_at, now()) END
    RETURNING c.id, c.phone
$$;

-- The outreach survey that awaits this phone's answer by SMS, or that took the SMS whose
-- gateway id is ref already (no row: none): the test of the host's survey_answer, for a
-- channel that checks many messages in one statement before handing the few that answer a
-- survey to survey_answer one by one.
CREATE FUNCTION rabta_survey_awaiting(phone text, ref text)
RETURNS TABLE (id bigint)
LANGUAGE sql STABLE AS $$
    SELECT t.id FROM transactions t
    WHERE t.phone = $1 AND (t.state = 'sms' OR t.sms_ref = $2)
    LIMIT 1
$$;
