-- shoal SQLite schema, version 1. Times are REAL POSIX seconds; ids are UUIDv7 text, so they
-- sort in creation order and a keyset page is a range scan over an index ending in id.

CREATE TABLE jobs (
    id               TEXT    NOT NULL PRIMARY KEY,
    namespace        TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    task             TEXT    NOT NULL,
    payload          BLOB    NOT NULL,
    state            TEXT    NOT NULL,
    created_at       REAL    NOT NULL,
    run_at           REAL    NOT NULL,
    content_type     TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    attempt          INTEGER NOT NULL,
    max_attempts     INTEGER NOT NULL,
    backoff          TEXT    NOT NULL,
    timeout          REAL,
    idempotency_key  TEXT,
    tags             TEXT,            -- JSON array, NULL when there are none
    result           BLOB,
    error_type       TEXT,            -- NULL when there is no error
    error_message    TEXT,
    error_traceback  TEXT,
    error_retryable  INTEGER,
    started_at       REAL,
    finished_at      REAL,
    worker_id        TEXT,
    lease_token      TEXT,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL,
    progress         REAL,
    parent_id        TEXT,
    schedule_id      TEXT
);

-- Claims: the best waiting job of a queue is the first entry of this index.
CREATE INDEX jobs_ready ON jobs (namespace, queue, priority DESC, run_at, id)
    WHERE state IN ('queued', 'scheduled');
-- Idempotency keys are looked up per namespace; most jobs have none.
CREATE INDEX jobs_idempotency ON jobs (namespace, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Listings, newest first (keyset on id): all jobs, by queue, by state. The first two hold
-- only columns that never change, so they cost an insert per job and nothing per move.
CREATE INDEX jobs_recent ON jobs (namespace, id);
CREATE INDEX jobs_queue ON jobs (namespace, queue, id);
-- Running jobs are few (bounded by the workers' concurrency) and every job passes through
-- that state: keeping them out of the two indexes below spares each claim and completion a
-- move in both. Queries over them add the term "state <> 'running'", which SQLite needs
-- verbatim to use a partial index, and read running jobs through jobs_leases.
CREATE INDEX jobs_state ON jobs (namespace, state, id) WHERE state <> 'running';
-- Stats and queue lists: a covering scan, no table lookups.
CREATE INDEX jobs_counts ON jobs (namespace, queue, state, task) WHERE state <> 'running';
-- Leases: the reaper takes the oldest expiries. It also serves release_worker, the running
-- counts of stats and list_workers, and listings of running jobs: scans of few entries, which
-- carry what those need so that they read no table rows.
CREATE INDEX jobs_leases ON jobs (lease_expires_at, worker_id, namespace, queue, task, id)
    WHERE state = 'running';
-- The promoter: the next scheduled job.
CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'scheduled';
-- Retention: the oldest finished jobs.
CREATE INDEX jobs_finished ON jobs (finished_at)
    WHERE state IN ('succeeded', 'failed', 'cancelled');

CREATE TABLE paused_queues (
    namespace TEXT NOT NULL,
    queue     TEXT NOT NULL,
    PRIMARY KEY (namespace, queue)
) WITHOUT ROWID;

CREATE TABLE workers (
    id             TEXT    NOT NULL PRIMARY KEY,
    namespace      TEXT    NOT NULL,
    queues         TEXT    NOT NULL,  -- JSON array
    connected_at   REAL    NOT NULL,
    last_heartbeat REAL    NOT NULL,
    state          TEXT    NOT NULL,
    tasks          TEXT    NOT NULL,  -- JSON array
    concurrency    INTEGER NOT NULL,
    language       TEXT    NOT NULL,
    host           TEXT    NOT NULL,
    pid            INTEGER NOT NULL
);

CREATE TABLE schedules (
    namespace    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    spec         TEXT    NOT NULL,
    paused       INTEGER NOT NULL,
    next_fire_at REAL,
    last_fire_at REAL,
    created_at   REAL    NOT NULL,
    PRIMARY KEY (namespace, id)
);

CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE paused = 0;

CREATE TABLE leaders (
    name       TEXT NOT NULL PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at REAL NOT NULL
);
