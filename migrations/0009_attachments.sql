-- 0009_attachments: a photo with a case, stored in the same transaction as the case.
CREATE TABLE case_attachments (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id       bigint NOT NULL REFERENCES cases (id),
    content_type  text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png')),
    bytes         bytea NOT NULL CHECK (length(bytes) BETWEEN 1 AND 10485760),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_attachments_case ON case_attachments (case_id);
