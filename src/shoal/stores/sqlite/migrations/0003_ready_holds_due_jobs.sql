-- The claim index holds queued jobs only. With scheduled jobs in it too, those of a higher
-- priority than the ready ones (delayed jobs, retries waiting out their backoff) came first
-- in each queue's range, and every claim read past all of them. A claim now takes queued jobs
-- from this index, and scheduled jobs (due, or due within its lookahead) from the start of
-- jobs_due (`_leases.SCHEDULED_SCAN`).
DROP INDEX jobs_ready;
CREATE INDEX jobs_ready ON jobs (namespace, queue, priority DESC, run_at, id)
    WHERE state = 'queued';
