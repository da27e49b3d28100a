-- shoal on PostgreSQL: jobs, paused queues, workers, schedules, leader leases.
-- Times are POSIX seconds (double precision), as in the job model.

-- Names and ids compare byte-wise ("C"): the order Python sorts them in, and faster.
CREATE TABLE shoal_jobs (
    id               text COLLATE "C" PRIMARY KEY,
    namespace        text COLLATE "C" NOT NULL,
    queue            text COLLATE "C" NOT NULL,
    task             text COLLATE "C" NOT NULL,
    payload          bytea NOT NULL,
    content_type     text NOT NULL,
    state            text NOT NULL CHECK (state IN
                       ('scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled')),
    created_at       double precision NOT NULL,
    run_at           double precision NOT NULL,
    priority         integer NOT NULL,
    attempt          integer NOT NULL,
    max_attempts     integer NOT NULL,
    backoff          text NOT NULL,
    timeout          double precision,
    idempotency_key  text COLLATE "C",
    tags             text[] NOT NULL,
    result           bytea,
    error_type       text,
    error_message    text,
    error_traceback  text,
    error_retryable  boolean,
    started_at       double precision,
    finished_at      double precision,
    worker_id        text,
    lease_token      text,
    lease_expires_at double precision,
    cancel_requested boolean NOT NULL DEFAULT false,
    progress         double precision,
    parent_id        text,
    schedule_id      text
) WITH (
    -- Every job row is updated several times (claim, heartbeats, outcome): free room on each
    -- page lets PostgreSQL keep the new version on the same page (HOT when no indexed column
    -- changes), and aggressive per-table autovacuum keeps the churned table small.
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.05,
    autovacuum_vacuum_cost_delay = 0
);

-- Claims: the ready jobs of a queue in claim order. Partial, so it holds only waiting jobs and
-- stays small however many finished jobs the table keeps.
CREATE INDEX shoal_jobs_ready ON shoal_jobs (namespace, queue, priority DESC, run_at, id)
    WHERE state IN ('queued', 'scheduled');
-- Promotion of delayed jobs and the next due time.
CREATE INDEX shoal_jobs_scheduled ON shoal_jobs (run_at) WHERE state = 'scheduled';
-- A worker's running jobs, and the reaper's scan of running jobs (few: at most the workers'
-- concurrency). lease_expires_at and progress are deliberately in no index, so that
-- heartbeats and progress updates are HOT updates: no index writes, pruned within the page.
CREATE INDEX shoal_jobs_running ON shoal_jobs (worker_id) WHERE state = 'running';
-- Retention.
CREATE INDEX shoal_jobs_finished ON shoal_jobs (finished_at)
    WHERE state IN ('succeeded', 'failed', 'cancelled');
-- Listing (newest first per namespace, per queue) and idempotency keys.
CREATE INDEX shoal_jobs_listing ON shoal_jobs (namespace, id DESC);
CREATE INDEX shoal_jobs_queue ON shoal_jobs (namespace, queue, state);
CREATE INDEX shoal_jobs_idempotency ON shoal_jobs (namespace, idempotency_key, id DESC)
    WHERE idempotency_key IS NOT NULL;

-- Only paused queues have a row; resuming deletes it.
CREATE TABLE shoal_paused_queues (
    namespace text COLLATE "C" NOT NULL,
    queue     text COLLATE "C" NOT NULL,
    PRIMARY KEY (namespace, queue)
);

CREATE TABLE shoal_workers (
    id             text COLLATE "C" PRIMARY KEY,
    namespace      text COLLATE "C" NOT NULL,
    queues         text[] NOT NULL,
    connected_at   double precision NOT NULL,
    last_heartbeat double precision NOT NULL,
    state          text NOT NULL,
    tasks          text[] NOT NULL,
    concurrency    integer NOT NULL,
    language       text NOT NULL,
    host           text NOT NULL,
    pid            integer NOT NULL
);

CREATE TABLE shoal_schedules (
    namespace    text COLLATE "C" NOT NULL,
    id           text COLLATE "C" NOT NULL,
    spec         text NOT NULL,
    paused       boolean NOT NULL,
    next_fire_at double precision,
    last_fire_at double precision,
    created_at   double precision NOT NULL,
    PRIMARY KEY (namespace, id)
);
CREATE INDEX shoal_schedules_due ON shoal_schedules (next_fire_at) WHERE NOT paused;

-- Leader leases: the row says who leads until when; the holder also keeps an advisory lock on
-- a connection of its own, which PostgreSQL drops the moment that process dies.
CREATE TABLE shoal_leaders (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at double precision NOT NULL,
    -- True while the holder also holds the lease's advisory lock: then a free lock means the
    -- holder's connection (its process) is gone, and the lease may be taken at once.
    locked     boolean NOT NULL DEFAULT false
);
