-- The claim index holds queued jobs only. With scheduled jobs in it too, those of a higher
-- priority than the ready ones (delayed jobs, retries waiting out their backoff) came first
-- in each queue's range, and every claim read past all of them. A claim now takes queued jobs
-- from this index, and scheduled jobs (due, or due within its lookahead) from the window below.
--
-- The new index is built before the old one is dropped: the build blocks writes to the table
-- (not reads) while it reads the table once; the drop then holds its exclusive lock only to
-- the commit. Upgrade every replica together: an older replica's claim cannot use the new
-- index and sorts its queues' waiting jobs instead.
CREATE INDEX shoal_jobs_queued ON shoal_jobs (namespace, queue, priority DESC, run_at, id)
    WHERE state = 'queued';
DROP INDEX shoal_jobs_ready;

-- The `size` scheduled jobs with the earliest run_at, of every queue: what a claim considers
-- of the scheduled jobs, so that it reads no more however many wait (after a restart, in a
-- burst). In a function of its own for its plan settings: before the table has statistics,
-- the planner would rather read every scheduled job by bitmap and sort them.
CREATE FUNCTION shoal_earliest_scheduled(size integer)
    RETURNS TABLE (id text, namespace text, queue text, task text, run_at double precision)
    LANGUAGE sql STABLE
    SET enable_bitmapscan = off SET enable_seqscan = off SET enable_sort = off
AS $$
    SELECT id, namespace, queue, task, run_at FROM shoal_jobs
    WHERE state = 'scheduled' ORDER BY run_at LIMIT size
$$;
