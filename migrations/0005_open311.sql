-- 0005_open311: API keys for machine clients (Open311 GeoReport v2, plugins/open311).
--
-- A key is 32 random bytes shown once by `rabtad apikey add NAME`; only its SHA-256 is
-- stored, so a stolen database does not yield usable keys. A revoked key stays as a row (its
-- name cannot be reused while it exists) so that history can still say who submitted what.
CREATE TABLE api_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9._@-]{1,64}$'),
    key_hash    bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
