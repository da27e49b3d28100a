"""Metadata as the native framing carries it: `MetadataEntry` messages, values in bytes.

As in gRPC, keys ending in `-bin` hold binary values and the others text; both the server (a
call's metadata, a status's trailing metadata) and the SDK's channel (the reverse) convert here.
"""

from __future__ import annotations

from collections.abc import Iterable

from shoal.protocols.grpc.gen.shoal.v1 import native_pb2

__all__ = ["Pairs", "from_entries", "to_entries"]

Pairs = tuple[tuple[str, str | bytes], ...]


def to_entries(pairs: Iterable[tuple[str, str | bytes]]) -> list[native_pb2.MetadataEntry]:
    """Entries for `(key, value)` pairs (text values in UTF-8)."""
    return [
        native_pb2.MetadataEntry(key=key, value=value.encode() if isinstance(value, str) else value)
        for key, value in pairs
    ]


def from_entries(entries: Iterable[native_pb2.MetadataEntry]) -> Pairs:
    """`(key, value)` pairs: bytes for `-bin` keys, text for the others."""
    return tuple(
        (e.key, e.value if e.key.endswith("-bin") else e.value.decode("utf-8", "replace"))
        for e in entries
    )
