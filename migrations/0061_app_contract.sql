-- 0061_app_contract: what the app plugin (citizens' sign-in by one-time code, their own cases
-- and timelines) reads and writes of core data, published as part of the schema contract
-- (docs/plugins.md). The statements are the plugin's own until now, moved behind functions and
-- views unchanged, so core may change citizens, citizen_otps, citizen_tokens, cases and
-- case_events behind them.

-- Issues a sign-in code for a phone in one statement: the limits, the code, the SMS and the
-- job that sends it commit together. Arguments as the app plugin's POST /api/v1/register gives
-- them (plugins/app/app_auth.c): per phone (codes per window, the window, seconds between
-- codes, codes per day) and per client address (codes per window, the window; 0 codes: no
-- limit); request_token marks this request's own update of the address row. Answers one row:
-- whether a code was issued, else the limit that refused ('phone', 'address' or 'day') and
-- seconds until it allows one.
CREATE FUNCTION rabta_citizen_otp_issue(phone text, lang text, salt bytea, code_hash bytea,
    body text, ttl float8, attempts int, per_window int, window_s float8, spacing float8,
    address text, per_address int, address_window float8, request_token text, per_day int)
RETURNS TABLE (issued boolean, refused_by text, retry_after bigint)
LANGUAGE sql VOLATILE AS $$
WITH ph AS (SELECT sent_at FROM citizen_otp_limits WHERE phone = $1 FOR UPDATE),
 day AS (SELECT count(*) < $15 AS ok, min(created_at) AS oldest FROM (
   SELECT created_at FROM citizen_otps WHERE phone = $1
   AND created_at > now() - interval '1 day' ORDER BY id DESC LIMIT $15) d),
 phone_ok AS (SELECT coalesce((SELECT rabta_rate_allows(sent_at, $8, $9, $10) FROM ph), true)
   AND (SELECT ok FROM day) AS ok),
 addr AS (
  INSERT INTO citizen_otp_address_limits AS a (address, sent_at, taken_by)
  SELECT $11, ARRAY[clock_timestamp()], $14 FROM phone_ok
  WHERE ok AND $12 > 0
  ON CONFLICT (address) DO UPDATE SET (sent_at, taken_by) = (
    SELECT CASE WHEN x.ok THEN rabta_rate_push(a.sent_at, $12) ELSE a.sent_at END,
      CASE WHEN x.ok THEN $14 ELSE a.taken_by END
    FROM (SELECT rabta_rate_allows(a.sent_at, $12, $13, 0) AS ok) x)
  RETURNING sent_at, taken_by = $14 AS took),
 addr_ok AS (SELECT $12 = 0 OR coalesce((SELECT took FROM addr), false) AS ok),
 lim AS (
  INSERT INTO citizen_otp_limits AS l (phone, sent_at)
  SELECT $1, ARRAY[clock_timestamp()] FROM addr_ok WHERE ok AND (SELECT ok FROM phone_ok)
  ON CONFLICT (phone) DO UPDATE SET sent_at = rabta_rate_push(l.sent_at, $8)
  WHERE rabta_rate_allows(l.sent_at, $8, $9, $10)
  RETURNING phone),
 retire AS (
  UPDATE citizen_otps SET attempts_left = 0
  WHERE phone = $1 AND used_at IS NULL AND attempts_left > 0 AND expires_at > now()
    AND EXISTS (SELECT 1 FROM lim)),
 tidy AS (
  DELETE FROM citizen_otps WHERE phone = $1 AND expires_at < now() - interval '1 day'),
 msg AS (
  SELECT message_id AS id FROM rabta_message_queue((SELECT array_agg('sms'::text) FROM lim),
    (SELECT array_agg($1) FROM lim), (SELECT array_agg($5) FROM lim),
    template => (SELECT array_agg('otp'::text) FROM lim),
    language => (SELECT array_agg($2) FROM lim))),
 otp AS (
  INSERT INTO citizen_otps (phone, language, salt, code_hash, attempts_left, message_id,
    expires_at)
  SELECT $1, $2, $3, $4, $7, id, now() + make_interval(secs => $6) FROM msg
  RETURNING id),
 refused AS (
  SELECT CASE WHEN NOT (SELECT ok FROM day) THEN 'day'
    WHEN (SELECT ok FROM phone_ok) AND NOT (SELECT ok FROM addr_ok)
    THEN 'address' ELSE 'phone' END AS by)
SELECT EXISTS (SELECT 1 FROM otp), r.by::text,
  (CASE WHEN r.by = 'day' THEN ceil(extract(epoch from
      (SELECT oldest FROM day) + interval '1 day' - now()))
    WHEN r.by = 'address' THEN rabta_rate_wait((SELECT sent_at FROM addr), $12, $13, 0)
    ELSE rabta_rate_wait(coalesce((SELECT sent_at FROM ph),
      array_fill(clock_timestamp(), ARRAY[$8])), $8, $9, $10)
  END)::bigint
FROM refused r
$$;

-- Spends one attempt of the phone's newest live code; answers it (no row: none left) with
-- what to compare the guess with: SHA-256(salt || code).
CREATE FUNCTION rabta_citizen_otp_attempt(phone text)
RETURNS TABLE (code_id bigint, salt bytea, code_hash bytea, attempts_left int)
LANGUAGE sql VOLATILE AS $$
UPDATE citizen_otps SET attempts_left = attempts_left - 1
WHERE id = (SELECT id FROM citizen_otps WHERE phone = $1 AND used_at IS NULL
            AND expires_at > now() AND attempts_left > 0 ORDER BY id DESC LIMIT 1)
  AND used_at IS NULL AND expires_at > now() AND attempts_left > 0
RETURNING id, salt, code_hash, attempts_left::int
$$;

-- The code was right: uses it up, finds or creates the citizen (the phone verified) and
-- stores the token's SHA-256, valid for ttl seconds. No row: the code was used meanwhile.
CREATE FUNCTION rabta_citizen_sign_in(code_id bigint, token_hash bytea, ttl float8)
RETURNS TABLE (citizen_id bigint, expires_at timestamptz)
LANGUAGE sql VOLATILE AS $$
WITH o AS (
  UPDATE citizen_otps SET used_at = now()
  WHERE id = $1 AND used_at IS NULL AND expires_at > now()
  RETURNING phone, language),
 c AS (
  INSERT INTO citizens (phone, language, verified_at) SELECT phone, language, now() FROM o
  ON CONFLICT (phone) DO UPDATE
    SET verified_at = coalesce(citizens.verified_at, excluded.verified_at)
  RETURNING id),
 t AS (
  INSERT INTO citizen_tokens (token_hash, citizen_id, expires_at)
  SELECT $2, id, now() + make_interval(secs => $3) FROM c
  RETURNING citizen_id, expires_at)
SELECT citizen_id, expires_at FROM t
$$;

-- Revokes a live token by its SHA-256: one row when it was live, none otherwise.
CREATE FUNCTION rabta_citizen_sign_out(token_hash bytea)
RETURNS TABLE (revoked boolean)
LANGUAGE sql VOLATILE AS $$
UPDATE citizen_tokens SET revoked_at = now()
WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()
RETURNING true
$$;

-- Cases as their citizen may see them (the citizen's id, never their phone or name): for
-- "my cases" lists and a case's page. sla: rabta_sla_view (0013).
CREATE VIEW rabta_citizen_cases AS
    SELECT id, citizen_id, tracking_no, kind, status, service_id, department_id, created_at,
           updated_at, resolve_due_at, rating,
           rabta_sla_view(status, resolve_due_at, paused_at) AS sla
    FROM cases WHERE citizen_id IS NOT NULL;

-- A case's events as its own citizen may see them (the public, through Open311, sees fewer:
-- rabta_case_public_events, 0028): an internal event without a status change (a
-- staff note) is left out, one with a status change is shown without its note; actions on
-- officials (official.action) never. Who acted is only the kind of actor.
CREATE VIEW rabta_citizen_case_events AS
    SELECT case_id, id, at, event, actor_type, from_status, to_status,
           CASE WHEN internal THEN NULL ELSE note END AS note
    FROM (SELECT *, coalesce(data->>'internal', '') = 'true' AS internal FROM case_events) e
    WHERE (NOT internal OR to_status IS NOT NULL) AND event <> 'official.action';
