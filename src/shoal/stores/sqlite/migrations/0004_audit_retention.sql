-- The audit log's retention (`auth.audit_retention`) deletes the oldest entries first.
CREATE INDEX audit_at ON audit (at);
