"""The native framing as pure functions over bytes (docs/native-protocol.md).

A connection starts with `PREFACE` from each side, then carries frames:

    length: u32 big-endian   bytes after this field (5 + len(body))
    kind:   u8               CALL, MESSAGE, HALF_CLOSE, STATUS, CANCEL, WINDOW
    call:   u32 big-endian   the call the frame belongs to (chosen by the client)
    body:   bytes            CALL: a `CallHeader`; MESSAGE: a message of the called method;
                             STATUS: a `CallStatus`; WINDOW: a u32 increment;
                             HALF_CLOSE and CANCEL: empty

Both the server (`protocols.grpc.native`) and the SDK's channel use this module; neither does
any I/O here, so it is tested with hypothesis alone.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple

__all__ = [
    "HEADER_SIZE",
    "PREFACE",
    "Frame",
    "FrameDecoder",
    "FramingError",
    "Kind",
    "encode",
    "encode_window",
    "window_increment",
]

#: What each side sends first: names the protocol and its version.
PREFACE = b"SHOAL/1\n"
_HEADER = struct.Struct(">IBI")
#: Bytes of a frame before its body.
HEADER_SIZE = _HEADER.size
#: `length` counts the kind and call fields too.
_FIXED = HEADER_SIZE - 4


class Kind(IntEnum):
    """What a frame is (`OVERSIZED` never travels: the decoder reports a skipped frame)."""

    #: Decoder only: a frame of this call was larger than allowed; its body was skipped.
    OVERSIZED = 0

    #: Client: open a call (body: `CallHeader`).
    CALL = 1
    #: Either side: one message of the call.
    MESSAGE = 2
    #: Client: no more messages on this call.
    HALF_CLOSE = 3
    #: Server: the call is over (body: `CallStatus`).
    STATUS = 4
    #: Client: abandon the call.
    CANCEL = 5
    #: Client: the server may send this many more messages of the call (body: u32).
    WINDOW = 6


_KINDS = frozenset(int(kind) for kind in Kind if kind is not Kind.OVERSIZED)


class Frame(NamedTuple):
    """One decoded frame."""

    kind: int
    call: int
    body: bytes


class FramingError(Exception):
    """The peer broke the framing; the connection cannot go on."""


def encode(kind: int, call: int, body: bytes = b"") -> bytes:
    """One frame's bytes."""
    return _HEADER.pack(len(body) + _FIXED, kind, call) + body


_WINDOW = struct.Struct(">I")


def encode_window(call: int, increment: int) -> bytes:
    """A WINDOW frame: the server may send `increment` more messages of the call."""
    return encode(Kind.WINDOW, call, _WINDOW.pack(increment))


def window_increment(body: bytes) -> int:
    """A WINDOW frame's increment. `FramingError` if the body is not one u32."""
    if len(body) != _WINDOW.size:
        raise FramingError(f"a WINDOW frame carries 4 bytes, not {len(body)}")
    increment: int = _WINDOW.unpack(body)[0]
    return increment


class FrameDecoder:
    """Bytes in, frames out: `feed` whatever arrived, get the frames it completed.

    The first bytes must be `PREFACE`. A frame whose body exceeds `max_body` is never
    buffered: its body is skipped as it arrives and an `OVERSIZED` frame of its call is
    reported instead, so that one call fails (as gRPC fails a message over its limit) and the
    connection goes on.
    """

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self._buffer = bytearray()
        self.preface_seen = False
        #: Bytes of an oversized body still to skip.
        self._skipping = 0

    def feed(self, data: bytes) -> list[Frame]:
        """The frames completed by `data`, in order. `FramingError` if the peer broke the rules."""
        if self._skipping:
            skipped = min(self._skipping, len(data))
            self._skipping -= skipped
            data = data[skipped:]
        buffer = self._buffer
        buffer += data
        if not self.preface_seen:
            if len(buffer) < len(PREFACE):
                if not PREFACE.startswith(buffer):
                    raise FramingError("not a shoal native connection (bad preface)")
                return []
            if buffer[: len(PREFACE)] != PREFACE:
                raise FramingError("not a shoal native connection (bad preface)")
            del buffer[: len(PREFACE)]
            self.preface_seen = True
        frames: list[Frame] = []
        offset, size = 0, len(buffer)
        unpack = _HEADER.unpack_from
        while size - offset >= HEADER_SIZE:
            length, kind, call = unpack(buffer, offset)
            body_size = length - _FIXED
            if body_size < 0 or kind not in _KINDS:
                raise FramingError(f"malformed frame header (kind {kind}, length {length})")
            end = offset + HEADER_SIZE + body_size
            if body_size > self.max_body:
                frames.append(Frame(Kind.OVERSIZED, call, b""))
                self._skipping = max(end - size, 0)
                offset = min(end, size)
                continue
            if end > size:
                break
            frames.append(Frame(kind, call, bytes(buffer[offset + HEADER_SIZE : end])))
            offset = end
        if offset:
            del buffer[:offset]
        return frames
