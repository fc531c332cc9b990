-- 0042_public_notices: notices and documents the bureau's administrators publish on the
-- citizens' portal (plugins/web, docs/web.md "Notices"). The web plugin reaches them only
-- through the functions and the view below (its schema contract), never the table itself.

CREATE TABLE public_notices (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    department_id text,                  -- NULL: the bureau's own notice
    title_en      text NOT NULL CHECK (length(title_en) BETWEEN 1 AND 200),
    title_ur      text NOT NULL CHECK (length(title_ur) BETWEEN 1 AND 200),
    body_en       text NOT NULL CHECK (length(body_en) <= 5000),
    body_ur       text NOT NULL CHECK (length(body_ur) <= 5000),
    document      bytea CHECK (octet_length(document) <= 1048576),
    document_type text CHECK (document_type IN ('application/pdf', 'image/jpeg', 'image/png')),
    document_name text CHECK (length(document_name) <= 200),
    published_by  text NOT NULL,         -- the administrator's username
    published_at  timestamptz NOT NULL DEFAULT now(),
    withdrawn_by  text,
    withdrawn_at  timestamptz,
    CHECK ((document IS NULL) = (document_type IS NULL))
);
CREATE INDEX public_notices_published ON public_notices (published_at DESC)
    WHERE withdrawn_at IS NULL;

-- The notices in force, newest first (without the document's bytes).
CREATE VIEW rabta_public_notices AS
    SELECT id, department_id, title_en, title_ur, body_en, body_ur,
           document IS NOT NULL AS has_document, document_type, document_name,
           published_by, published_at
    FROM public_notices WHERE withdrawn_at IS NULL;

-- Publishes a notice; returns its id.
CREATE FUNCTION rabta_notice_publish(p_department text, p_title_en text, p_title_ur text,
                                     p_body_en text, p_body_ur text, p_document bytea,
                                     p_document_type text, p_document_name text, p_by text)
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO public_notices (department_id, title_en, title_ur, body_en, body_ur, document,
                                document_type, document_name, published_by)
    VALUES (p_department, p_title_en, p_title_ur, p_body_en, p_body_ur, p_document,
            p_document_type, p_document_name, p_by)
    RETURNING id
$$;

-- Withdraws a notice; returns its id, or no row when there is no such notice in force.
CREATE FUNCTION rabta_notice_withdraw(p_id bigint, p_by text)
RETURNS SETOF bigint LANGUAGE sql AS $$
    UPDATE public_notices SET withdrawn_at = now(), withdrawn_by = p_by
    WHERE id = p_id AND withdrawn_at IS NULL
    RETURNING id
$$;

-- A notice's document (type, name, bytes), or no row.
CREATE FUNCTION rabta_notice_document(p_id bigint)
RETURNS TABLE (document_type text, document_name text, document bytea)
LANGUAGE sql STABLE AS $$
    SELECT document_type, document_name, document FROM public_notices
    WHERE id = p_id AND withdrawn_at IS NULL AND document IS NOT NULL
$$;
