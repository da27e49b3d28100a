"""The native framing's codec: bytes in any chunks, frames out, rules enforced."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.protocols.grpc.native.frames import (
    HEADER_SIZE,
    PREFACE,
    Frame,
    FrameDecoder,
    FramingError,
    Kind,
    encode,
)

WIRE_KINDS = [kind for kind in Kind if kind is not Kind.OVERSIZED]
frames = st.lists(
    st.builds(
        Frame,
        kind=st.sampled_from(WIRE_KINDS).map(int),
        call=st.integers(0, 2**32 - 1),
        body=st.binary(max_size=300),
    ),
    max_size=20,
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def _decode(decoder: FrameDecoder, chunks: list[bytes]) -> list[Frame]:
    out: list[Frame] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    return out


@settings(max_examples=300)
@given(frames, st.lists(st.integers(0, 8000), max_size=30))
def test_frames_come_out_as_they_went_in_however_the_bytes_are_cut(
    sent: list[Frame], cuts: list[int]
) -> None:
    wire = PREFACE + b"".join(encode(f.kind, f.call, f.body) for f in sent)
    assert _decode(FrameDecoder(max_body=1000), _chunks(wire, cuts)) == sent


@settings(max_examples=200)
@given(frames, st.integers(0, len(WIRE_KINDS) - 1), st.lists(st.integers(0, 8000), max_size=30))
def test_an_oversized_frame_fails_alone_and_the_next_frames_still_arrive(
    around: list[Frame], where: int, cuts: list[int]
) -> None:
    big = Frame(int(WIRE_KINDS[where]), 7, b"x" * 301)
    split = len(around) // 2
    wire = PREFACE + b"".join(
        encode(f.kind, f.call, f.body) for f in [*around[:split], big, *around[split:]]
    )
    got = _decode(FrameDecoder(max_body=300), _chunks(wire, cuts))
    assert got == [*around[:split], Frame(Kind.OVERSIZED, 7, b""), *around[split:]]


def test_the_preface_is_required() -> None:
    decoder = FrameDecoder(max_body=100)
    assert decoder.feed(PREFACE[:3]) == [] and not decoder.preface_seen
    with pytest.raises(FramingError, match="preface"):
        decoder.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(FramingError, match="preface"):
        FrameDecoder(max_body=100).feed(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")


def test_a_frame_of_an_unknown_kind_or_negative_length_breaks_the_connection() -> None:
    unknown = bytes([0, 0, 0, 5, 99, 0, 0, 0, 1])
    with pytest.raises(FramingError, match="malformed"):
        FrameDecoder(max_body=100).feed(PREFACE + unknown)
    too_short = bytes([0, 0, 0, 1, 2, 0, 0, 0, 1])  # length below the kind and call fields
    with pytest.raises(FramingError, match="malformed"):
        FrameDecoder(max_body=100).feed(PREFACE + too_short)
    oversized_marker = encode(Kind.OVERSIZED, 1)  # the decoder's own kind never travels
    with pytest.raises(FramingError, match="malformed"):
        FrameDecoder(max_body=100).feed(PREFACE + oversized_marker)


def test_the_header_layout_is_length_kind_call() -> None:
    frame = encode(Kind.MESSAGE, 0x01020304, b"ab")
    assert HEADER_SIZE == 9
    assert frame == bytes([0, 0, 0, 7, 2, 1, 2, 3, 4]) + b"ab"


def test_a_huge_declared_body_is_skipped_without_being_buffered() -> None:
    decoder = FrameDecoder(max_body=10)
    header = (2**31).to_bytes(4, "big") + bytes([Kind.MESSAGE]) + (3).to_bytes(4, "big")
    assert decoder.feed(PREFACE + header + b"y" * 1000) == [Frame(Kind.OVERSIZED, 3, b"")]
    assert len(decoder._buffer) == 0  # nothing of the skipped body is held
