-- The claim index holds queued jobs only. With scheduled jobs in it too, those of a higher
-- priority than the ready ones (delayed jobs, retries waiting out their backoff) came first
-- in each queue's range, and every claim read past all of them. A claim now takes queued jobs
-- from this index and the oldest due scheduled jobs, which the promoter has yet to move, from
-- shoal_jobs_scheduled.
--
-- The new index is built before the old one is dropped: the build blocks writes to the table
-- (not reads) while it reads the table once; the drop then holds its exclusive lock only to
-- the commit. Upgrade every replica together: an older replica's claim cannot use the new
-- index and sorts its queues' waiting jobs instead.
CREATE INDEX shoal_jobs_queued ON shoal_jobs (namespace, queue, priority DESC, run_at, id)
    WHERE state = 'queued';
DROP INDEX shoal_jobs_ready;
