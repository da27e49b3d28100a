"""The JSON shapes of schedules, and their conversions from and to core's schedule port."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shoal.core.schedules import ScheduleInput, ScheduleView

from .models import EnqueueOut, decode_body, encode_body

__all__ = [
    "BackfillIn",
    "BackfillOut",
    "ScheduleIn",
    "ScheduleOut",
    "SchedulesOut",
    "UpcomingOut",
]


class ScheduleIn(BaseModel):
    """A schedule: exactly one of `every_ms`, `cron` (5 fields, or 6 with seconds first) or
    `at` (POSIX time) says when it fires.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    task: str = Field(min_length=1, max_length=200)
    queue: str = Field("default", min_length=1, max_length=200)
    id: str | None = Field(None, min_length=1, max_length=200)
    every_ms: int | None = Field(None, ge=1, le=10**12)
    cron: str | None = Field(None, min_length=1, max_length=200)
    timezone: str = Field("UTC", min_length=1, max_length=100)
    at: float | None = Field(None, ge=0, le=1e11)
    payload: Any = Field(None, description="The jobs' payload as JSON.")
    payload_base64: str | None = Field(None, description="The payload as base64 instead.")
    content_type: str | None = Field(None, min_length=1, max_length=200)
    priority: int = Field(0, ge=-(2**31) + 1, le=2**31 - 1)
    max_attempts: int | None = Field(None, ge=1, le=1000)
    timeout: float | None = Field(None, gt=0, le=1e9)
    tags: list[str] = Field(default_factory=list, max_length=32)
    overlap: Literal["allow", "skip", "cancel_previous"] = "allow"
    catch_up: Literal["skip", "one", "all"] = "one"
    catch_up_limit: int = Field(100, ge=1, le=10_000)
    jitter_ms: int = Field(0, ge=0, le=86_400_000)
    start_at: float | None = Field(None, ge=0, le=1e11)
    end_at: float | None = Field(None, ge=0, le=1e11)
    paused: bool = False

    def to_input(self, namespace: str, schedule_id: str | None = None) -> ScheduleInput:
        """The port's input (`InvalidArgument` for a payload that cannot be read)."""
        payload, content_type = decode_body(
            self.payload,
            self.payload_base64,
            self.content_type,
            field="payload_base64",
            given="payload" in self.model_fields_set,
        )
        fields = self.model_dump(exclude={"payload", "payload_base64", "content_type", "tags"})
        fields["id"] = schedule_id or self.id
        return ScheduleInput(
            **fields,
            namespace=namespace,
            payload=payload,
            content_type=content_type,
            tags=tuple(self.tags),
        )


class ScheduleOut(BaseModel):
    """A schedule, its state, and when it fires next (POSIX seconds)."""

    id: str
    namespace: str
    queue: str
    task: str
    kind: Literal["interval", "cron", "once"]
    every_ms: int | None
    cron: str | None
    timezone: str
    at: float | None
    paused: bool
    overlap: str
    catch_up: str
    catch_up_limit: int
    jitter_ms: int
    priority: int
    max_attempts: int | None
    timeout: float | None
    tags: list[str]
    payload: Any = None
    payload_base64: str | None = None
    content_type: str
    created_at: float
    start_at: float | None
    end_at: float | None
    next_fire_at: float | None
    last_fire_at: float | None
    last_job_id: str | None

    @classmethod
    def of(cls, view: ScheduleView) -> ScheduleOut:
        """The API shape of a schedule."""
        payload, payload_b64 = encode_body(view.payload, view.content_type)
        fields = {name: getattr(view, name) for name in view.__dataclass_fields__}
        fields.update(
            tags=list(view.tags),
            payload=payload,
            payload_base64=payload_b64,
            overlap=view.overlap.value,
            catch_up=view.catch_up.value,
        )
        return cls(**fields)


class SchedulesOut(BaseModel):
    """Schedules by id."""

    schedules: list[ScheduleOut]


class BackfillIn(BaseModel):
    """A past range of slots to fire now, one job per slot that has none."""

    model_config = ConfigDict(extra="forbid", strict=True)

    start: float = Field(ge=0, le=1e11, description="POSIX time of the range's start.")
    end: float = Field(ge=0, le=1e11, description="POSIX time of its end (not in the future).")


class BackfillOut(BaseModel):
    """One result per slot of the range; `created` is false where the slot had its job."""

    results: list[EnqueueOut]


class UpcomingOut(BaseModel):
    """The next fire times (POSIX seconds)."""

    fires: list[float]
