"""`fast_init`: the same objects as the dataclass's own `__init__`, faster, still frozen."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from shoal.core._records import fast_init
from shoal.core.model import Job, JobState
from shoal.core.validation import EnqueueRequest


@dataclasses.dataclass(frozen=True, slots=True)
class _Plain:
    a: int
    b: str = "b"
    c: tuple[str, ...] = ()


@fast_init
@dataclasses.dataclass(frozen=True, slots=True)
class _Fast:
    a: int
    b: str = "b"
    c: tuple[str, ...] = ()


def test_objects_equal_those_of_the_generated_init() -> None:
    slow, fast = _Plain(1, c=("x",)), _Fast(1, c=("x",))
    assert dataclasses.astuple(fast) == dataclasses.astuple(slow) == (1, "b", ("x",))
    assert fast == _Fast(a=1, b="b", c=("x",))
    assert hash(fast) == hash(_Fast(1, "b", ("x",)))
    with pytest.raises(TypeError):
        _Fast()  # type: ignore[call-arg]  # a field without a default is required
    with pytest.raises(TypeError):
        _Fast(1, d=2)  # type: ignore[call-arg]  # no such field
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.a = 2  # type: ignore[misc]


def test_job_and_enqueue_request_keep_their_signatures_and_defaults() -> None:
    job = Job("id", "ns", "q", "t", b"{}", JobState.QUEUED, 1.0, 2.0, tags=("a",))
    assert job.attempt == 0 and job.content_type == "application/json" and job.tags == ("a",)
    assert dataclasses.replace(job, attempt=1).attempt == 1
    assert list(inspect.signature(Job).parameters) == [f.name for f in dataclasses.fields(Job)]
    request = EnqueueRequest("t")
    assert request.tags == () and request.payload == b"null"


def test_annotations_resolve_and_every_field_is_set() -> None:
    import typing

    hints = typing.get_type_hints(Job.__init__)
    assert hints["state"] is JobState
    values = {f.name: object() for f in dataclasses.fields(Job)}
    job = Job(**values)  # type: ignore[arg-type]
    assert all(getattr(job, name) is value for name, value in values.items())


@dataclasses.dataclass(frozen=True, slots=True)
class _Base:
    a: int


@fast_init
@dataclasses.dataclass(frozen=True, slots=True)
class _Derived(_Base):
    b: str = "b"


def test_a_subclass_sets_its_bases_fields() -> None:
    assert (_Derived(1).a, _Derived(1, "c").b) == (1, "c")


def test_refuses_what_it_cannot_build() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(slots=True)
    class Mutable:
        a: int

    for cls in (Factory, Mutable):
        with pytest.raises(TypeError):
            fast_init(cls)
