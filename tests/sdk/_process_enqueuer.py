"""An app in local mode whose worker runs tasks in processes, and a task that enqueues: the
task's process imports this module, so the app exists there too, unstarted.
"""

from __future__ import annotations

from shoal.sdk import App, WorkerConfig

app = App("memory://", worker=WorkerConfig(pool="process", concurrency=1))


@app.task(name="double", retries=0)
def double(value: int) -> int:
    return 2 * value


@app.task(name="enqueue_double", retries=0)
def enqueue_double(value: int) -> str:
    return double.enqueue(value).id
