"""What the jobs table's indexes cost: a job's life in raw sqlite3, on shoal's own row, under
four index sets, one job per transaction and 100 per transaction.

    .venv/bin/python -m bench.index_bench [--jobs 20000] [--rounds 3]

Each job is inserted queued, claimed (running, with a lease) and completed, with the statements
a store would run; the table gives microseconds per job, best of `--rounds`. The sets: the
nine indexes of the schema today; the same on a table WITHOUT ROWID, keyed by the id; only
those a store needs while jobs wait and run (ready, leases, due, and the state and counts
indexes of finished jobs); none but the id's. It is the measurement behind bench/README.md's
"index experiment": trimming the set buys little, because every index a claim moves a job in
or out of costs about as much as another, and dropping the rowid buys nothing.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from importlib import resources
from pathlib import Path

from shoal.core.ids import new_job_id

_SCHEMA = resources.files("shoal.stores.sqlite").joinpath("migrations/0001_initial.sql")
_TERMINAL = "WHERE state IN ('succeeded', 'failed', 'cancelled')"
#: The hot set's indexes of finished jobs (the schema's own cover every state but running).
_FINISHED = {
    "state_t": f"CREATE INDEX jobs_state ON jobs (namespace, state, id) {_TERMINAL};",
    "counts_t": f"CREATE INDEX jobs_counts ON jobs (namespace, queue, state, task) {_TERMINAL};",
}
_HOT = ("jobs_ready", "jobs_idempotency", "jobs_leases", "jobs_due")
_INSERT = f"INSERT INTO jobs VALUES ({', '.join('?' * 30)})"
_CLAIM = (
    "UPDATE jobs SET state = 'running', worker_id = 'w', lease_token = 't',"
    " lease_expires_at = ?, started_at = ?, attempt = attempt + 1 WHERE id = ?"
)
_COMPLETE = "UPDATE jobs SET state = 'succeeded', result = ?, finished_at = ? WHERE id = ?"


def _schemas() -> dict[str, str]:
    text = _SCHEMA.read_text()
    table = text[: text.index("-- Claims")]
    statements = [
        part[part.index("CREATE INDEX") :] + ";"
        for part in text.split(";")
        if "CREATE INDEX jobs_" in part
    ]
    indexes = {statement.split()[2]: statement for statement in statements}
    hot = [indexes[name] for name in _HOT]
    today = table + "\n".join(indexes.values())
    return {
        "today's nine": today,
        # The id's own b-tree is the table: one b-tree fewer per insert, a longer key in the rest.
        "today's nine, WITHOUT ROWID": today.replace("\n);", "\n) WITHOUT ROWID;", 1),
        "the hot ones only": table + "\n".join([*hot, *_FINISHED.values()]),
        "none but the id": table,
    }


def _row(now: float) -> tuple[object, ...]:
    return (
        new_job_id(), "default", "q", "noop", b"[]", "queued", now, now,
        "application/json", 0, 0, 3, "exponential:base=1", *([None] * 13), 0, None, None, None,
    )  # fmt: skip


def life(schema: str, jobs: int, per_transaction: int) -> list[float]:
    """Microseconds per job to insert, claim and complete `jobs` jobs."""
    with tempfile.TemporaryDirectory(prefix="shoal-index-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "x.db", isolation_level=None)
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -65536"):
            conn.execute(f"PRAGMA {pragma}")
        conn.executescript(schema)
        now = time.time()
        rows = [_row(now) for _ in range(jobs)]
        steps = [
            (_INSERT, rows),
            (_CLAIM, [(now + 15, now, row[0]) for row in rows]),
            (_COMPLETE, [(b"null", now, row[0]) for row in rows]),
        ]
        spent = []
        for sql, params in steps:
            started = time.perf_counter()
            for first in range(0, jobs, per_transaction):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(sql, params[first : first + per_transaction])
                conn.execute("COMMIT")
            spent.append((time.perf_counter() - started) / jobs * 1e6)
        conn.close()
    return spent


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("| indexes | one per transaction: insert, claim, complete (us) | 100 per tx: total |")
    print("|---|---|---:|")
    for name, schema in _schemas().items():
        single = [
            min(v) for v in zip(*(life(schema, args.jobs // 10, 1) for _ in range(3)), strict=True)
        ]
        batched = min(sum(life(schema, args.jobs, 100)) for _ in range(args.rounds))
        print(f"| {name} | {', '.join(f'{v:.0f}' for v in single)} | {batched:.0f} |", flush=True)


if __name__ == "__main__":
    main()
