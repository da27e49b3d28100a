-- The audit log's retention (`auth.audit_retention`) deletes the oldest entries first.
CREATE INDEX shoal_audit_at ON shoal_audit (at);
