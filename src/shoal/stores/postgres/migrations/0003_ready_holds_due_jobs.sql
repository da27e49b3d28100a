-- The claim index holds queued jobs only. With scheduled jobs in it too, those of a higher
-- priority than the ready ones (delayed jobs, retries waiting out their backoff) came first
-- in each queue's range, and every claim read past all of them. A claim now takes queued jobs
-- from this index and scheduled jobs already due from shoal_jobs_scheduled, which the
-- promoter keeps short: both scans are bounded by the claim's limit and the promoter's lag.
DROP INDEX shoal_jobs_ready;
CREATE INDEX shoal_jobs_ready ON shoal_jobs (namespace, queue, priority DESC, run_at, id)
    WHERE state = 'queued';
