"""Payloads from the wire: proto3 cannot tell an empty payload from none."""

from __future__ import annotations

from shoal.protocols.grpc._codec import enqueue_from_pb
from shoal.protocols.grpc.gen.shoal.v1 import jobs_pb2


def test_no_payload_is_json_null_and_an_empty_binary_payload_stays_empty() -> None:
    assert enqueue_from_pb(jobs_pb2.EnqueueRequest(task="t")).payload == b"null"
    binary = jobs_pb2.EnqueueRequest(task="t", content_type="application/octet-stream")
    # stored as b"null": four bytes a binary task never sent
    assert enqueue_from_pb(binary).payload == b""
    assert enqueue_from_pb(binary).content_type == "application/octet-stream"
