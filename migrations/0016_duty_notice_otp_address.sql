-- 0016_duty_notice_otp_address: the inbox plugin's duty-officer notice (plugins/inbox) and a
-- per-client-address limit on one-time codes (plugins/app/app_auth.c, docs/api.md).

-- One message per case event, template and recipient (was: per case event). A new case's
-- 'routed' event now has two messages, the citizen's notice.routed and the duty officer's
-- duty.new_case, and a retried job that writes either finds its own message already there.
DROP INDEX messages_event;
CREATE UNIQUE INDEX messages_event_template ON messages (event_id, template, to_address)
    WHERE event_id IS NOT NULL;

-- Rate limits over a window, shared by the per-phone and per-address limits of one-time
-- codes. sent_at holds the times of the latest codes, oldest first, at most `per` of them.
-- A new code is allowed when the newest is at least `gap` seconds old and fewer than `per`
-- codes were sent in the last `win` seconds. NULL (no row yet) allows. The time is
-- clock_timestamp(), not now(): a request that waited for the row's lock must compare with
-- (and append) the time it got it, else a code taken by a request that began later but got
-- the lock first would look like one from its future.
CREATE FUNCTION rabta_rate_allows(sent_at timestamptz[], per int, win float8, gap float8)
RETURNS boolean LANGUAGE sql VOLATILE AS $$
    SELECT sent_at IS NULL OR (
        (gap <= 0
         OR sent_at[cardinality(sent_at)] <= clock_timestamp() - make_interval(secs => gap))
        AND (cardinality(sent_at) < per
             OR sent_at[cardinality(sent_at) + 1 - per]
                <= clock_timestamp() - make_interval(secs => win)))
$$;

-- Seconds until rabta_rate_allows would allow again (at least 1).
CREATE FUNCTION rabta_rate_wait(sent_at timestamptz[], per int, win float8, gap float8)
RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT ceil(greatest(1,
        extract(epoch FROM sent_at[cardinality(sent_at)] + make_interval(secs => gap)
                           - clock_timestamp()),
        CASE WHEN cardinality(sent_at) >= per THEN
            extract(epoch FROM sent_at[cardinality(sent_at) + 1 - per]
                               + make_interval(secs => win) - clock_timestamp())
             ELSE 0 END))::bigint
$$;

-- sent_at with clock_timestamp() appended, keeping the latest `per` times.
CREATE FUNCTION rabta_rate_push(sent_at timestamptz[], per int)
RETURNS timestamptz[] LANGUAGE sql VOLATILE AS $$
    SELECT (sent_at || clock_timestamp())[greatest(1, cardinality(sent_at) + 2 - per):]
$$;

-- Per-client-address limit of codes: the same shape as citizen_otp_limits, keyed by the TCP
-- peer's address (an IPv6 client by its /64). Every request the phone allows goes through an
-- INSERT ... ON CONFLICT DO UPDATE of its address's row, which locks it, so concurrent requests
-- from one address are counted exactly, by every rabtad process on the database; the update
-- appends to sent_at only when the limit allows, and then sets taken_by to the request's own
-- random token, so RETURNING tells the request whether it got a code and, if not, the newest
-- sent_at to compute its Retry-After from.
CREATE TABLE citizen_otp_address_limits (
    address   text PRIMARY KEY CHECK (length(address) BETWEEN 1 AND 64),
    sent_at   timestamptz[] NOT NULL CHECK (cardinality(sent_at) >= 1),
    taken_by  text NOT NULL
);
