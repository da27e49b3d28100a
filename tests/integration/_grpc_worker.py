"""A small worker over the shoal.v1 stream, using the generated stubs directly (no SDK).

Run by the integration tests as a subprocess; it prints one JSON object per event on standard
output. Tasks: `sleep` ({"seconds": s}), `echo` (returns the payload), `add` ({"a", "b"}),
`fail` (a non-retryable error). `--hang` stops heartbeating and running jobs once it holds one,
while keeping its connection open, as a hung process would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from typing import Any

import grpc
import grpc.aio

from shoal.protocols.grpc.gen.shoal.v1 import model_pb2, workers_pb2, workers_pb2_grpc

Msg = workers_pb2.WorkerMessage


def say(event: str, **data: Any) -> None:
    print(json.dumps({"event": event, "at": time.time(), **data}), flush=True)


async def run_task(task: str, payload: bytes) -> bytes:
    args = json.loads(payload or b"null")
    if task == "sleep":
        await asyncio.sleep(float(args["seconds"]))
        return json.dumps({"slept": args["seconds"]}).encode()
    if task == "echo":
        return payload
    if task == "add":
        return json.dumps(args["a"] + args["b"]).encode()
    if task == "fail":
        raise ValueError("asked to fail")
    raise LookupError(f"unknown task {task}")


class Worker:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.outbox: asyncio.Queue[Msg | None] = asyncio.Queue()
        self.running: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self.hung = False
        self.draining = False

    async def requests(self) -> Any:
        while (message := await self.outbox.get()) is not None:
            yield message

    def send(self, **kind: Any) -> None:
        self.outbox.put_nowait(Msg(**kind))

    async def main(self) -> None:
        opts = self.options
        async with grpc.aio.insecure_channel(opts.target) as channel:
            stub = workers_pb2_grpc.WorkerServiceStub(channel)
            hello = workers_pb2.Hello(
                queues=opts.queue,
                concurrency=opts.concurrency,
                language="python",
                host=socket.gethostname(),
                pid=os.getpid(),
            )
            self.send(hello=hello)
            self.send(credit=workers_pb2.Credit(credits=opts.concurrency))
            heartbeats: asyncio.Task[None] | None = None
            try:
                async for message in stub.Connect(self.requests()):
                    kind = message.WhichOneof("kind")
                    if kind == "welcome":
                        say("welcome", worker_id=message.welcome.worker_id)
                        interval = message.welcome.heartbeat_interval
                        heartbeats = asyncio.create_task(self.heartbeat(interval))
                    elif kind == "goodbye":
                        say("goodbye", reason=message.goodbye.reason)
                        break
                    else:
                        self.handle(kind, getattr(message, kind))
            except grpc.aio.AioRpcError as error:
                say("stream_error", code=error.code().name, details=error.details())
            finally:
                if heartbeats is not None:
                    heartbeats.cancel()
        say("exit")

    def handle(self, kind: str, body: Any) -> None:
        if kind == "assignments":
            for item in body.assignments:
                job = item.job
                say("started", job_id=job.id, token=item.token, attempt=job.attempt, task=job.task)
                task = asyncio.create_task(self.execute(job, item.token))
                self.running[job.id] = (item.token, task)
                if self.options.hang:
                    self.hung = True
        elif kind == "cancel":
            for job_id in body.job_ids:
                self.cancel(job_id)
        elif kind == "heartbeat_ack":
            if body.lost or body.cancel_requested:
                say("heartbeat_ack", lost=list(body.lost), cancel=list(body.cancel_requested))
            for job_id in body.cancel_requested:
                self.cancel(job_id)
        elif kind == "acks":
            for ack in body.acks:
                say("ack", job_id=ack.job_id, state=model_pb2.JobState.Name(ack.state))
        elif kind == "drain":
            say("drain", reason=body.reason)
            self.draining = True
            self.maybe_leave()
        elif kind == "error":
            say("error", status=body.status, code=body.code, field=body.field, job_id=body.job_id)

    def cancel(self, job_id: str) -> None:
        entry = self.running.get(job_id)
        if entry is not None and not entry[1].done():
            say("cancelling", job_id=job_id)
            entry[1].cancel()

    async def execute(self, job: Any, token: str) -> None:
        if self.hung:
            await asyncio.Event().wait()  # never runs, never reports: hung
        outcomes = workers_pb2.Outcomes()
        try:
            result = await run_task(job.task, job.payload)
        except asyncio.CancelledError:
            say("cancelled", job_id=job.id)
            error = model_pb2.JobError(type="Cancelled", message="cancelled", retryable=False)
            outcomes.failed.add(job_id=job.id, token=token, error=error)
        except Exception as exc:
            say("failed", job_id=job.id, error=repr(exc))
            error = model_pb2.JobError(type=type(exc).__name__, message=str(exc), retryable=False)
            outcomes.failed.add(job_id=job.id, token=token, error=error)
        else:
            say("finished", job_id=job.id, result=result.decode())
            outcomes.completed.add(job_id=job.id, token=token, result=result)
        self.running.pop(job.id, None)
        self.send(outcomes=outcomes)
        if not self.draining:
            self.send(credit=workers_pb2.Credit(credits=1))
        self.maybe_leave()

    def maybe_leave(self) -> None:
        if self.draining and not self.running:
            self.outbox.put_nowait(None)  # half-close: the server ends the session

    async def heartbeat(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if self.hung:
                return
            self.send(heartbeat=workers_pb2.Heartbeat())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--queue", action="append", default=None)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--hang", action="store_true")
    options = parser.parse_args()
    options.queue = options.queue or ["default"]
    asyncio.run(Worker(options).main())


if __name__ == "__main__":
    sys.exit(main())
