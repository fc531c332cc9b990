-- 0040_ivr: what core offers the IVR channel (plugin ivr_asterisk, docs/ivr.md): audio
-- attachments and the status-by-phone function. The plugin's own tables (ivr_calls,
-- ivr_attempts) are in plugins/ivr_asterisk/migrations/.

-- A voice complaint keeps its recording as the case's attachment (intake checks the bytes).
ALTER TABLE case_attachments DROP CONSTRAINT case_attachments_content_type_check;
ALTER TABLE case_attachments ADD CONSTRAINT case_attachments_content_type_check
    CHECK (content_type IN ('image/jpeg', 'image/png', 'audio/wav'));

-- The schema contract for "status by phone": a citizen's latest cases by their E.164 phone.
CREATE FUNCTION rabta_cases_by_phone(p_phone text, p_limit int)
RETURNS TABLE (tracking_no text, kind text, status text, created_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.tracking_no, c.kind, c.status, c.created_at
    FROM citizens z JOIN cases c ON c.citizen_id = z.id
    WHERE z.phone = p_phone
    ORDER BY c.created_at DESC, c.id DESC
    LIMIT greatest(p_limit, 0)
$$;
