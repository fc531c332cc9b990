-- 0003_ivr_not_before: a call is dialled by one process at a time, and never again while an
-- earlier dial may still be up (docs/ivr.md, "Outbound calls"). Each dial sets not_before to
-- the latest moment that dial can still be live (ring time, the answer's grace and the longest
-- call, with a margin); its end sets it to the policy's spacing (or NULL when the call is
-- over). A send of the call (its job, re-claimed after a lost lease, or run early by hand)
-- that finds not_before ahead waits for it instead of dialling.
ALTER TABLE ivr_calls ADD COLUMN not_before timestamptz;
