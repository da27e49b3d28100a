from shoal.protocols.grpc.gen.shoal.v1 import model_pb2 as _model_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScheduleSpec(_message.Message):
    __slots__ = ("namespace", "id", "queue", "task", "every_ms", "cron", "at", "timezone", "payload", "content_type", "priority", "max_attempts", "timeout", "tags", "overlap", "catch_up", "catch_up_limit", "jitter_ms", "start_at", "end_at", "paused")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    EVERY_MS_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FIELD_NUMBER: _ClassVar[int]
    CATCH_UP_FIELD_NUMBER: _ClassVar[int]
    CATCH_UP_LIMIT_FIELD_NUMBER: _ClassVar[int]
    JITTER_MS_FIELD_NUMBER: _ClassVar[int]
    START_AT_FIELD_NUMBER: _ClassVar[int]
    END_AT_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    id: str
    queue: str
    task: str
    every_ms: int
    cron: str
    at: float
    timezone: str
    payload: bytes
    content_type: str
    priority: int
    max_attempts: int
    timeout: float
    tags: _containers.RepeatedScalarFieldContainer[str]
    overlap: str
    catch_up: str
    catch_up_limit: int
    jitter_ms: int
    start_at: float
    end_at: float
    paused: bool
    def __init__(self, namespace: _Optional[str] = ..., id: _Optional[str] = ..., queue: _Optional[str] = ..., task: _Optional[str] = ..., every_ms: _Optional[int] = ..., cron: _Optional[str] = ..., at: _Optional[float] = ..., timezone: _Optional[str] = ..., payload: _Optional[bytes] = ..., content_type: _Optional[str] = ..., priority: _Optional[int] = ..., max_attempts: _Optional[int] = ..., timeout: _Optional[float] = ..., tags: _Optional[_Iterable[str]] = ..., overlap: _Optional[str] = ..., catch_up: _Optional[str] = ..., catch_up_limit: _Optional[int] = ..., jitter_ms: _Optional[int] = ..., start_at: _Optional[float] = ..., end_at: _Optional[float] = ..., paused: _Optional[bool] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ("spec", "created_at", "next_fire_at", "last_fire_at", "last_job_id")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIRE_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_FIRE_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    spec: ScheduleSpec
    created_at: float
    next_fire_at: float
    last_fire_at: float
    last_job_id: str
    def __init__(self, spec: _Optional[_Union[ScheduleSpec, _Mapping]] = ..., created_at: _Optional[float] = ..., next_fire_at: _Optional[float] = ..., last_fire_at: _Optional[float] = ..., last_job_id: _Optional[str] = ...) -> None: ...

class ScheduleRef(_message.Message):
    __slots__ = ("namespace", "id")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    id: str
    def __init__(self, namespace: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class ListSchedulesRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class ListSchedulesResponse(_message.Message):
    __slots__ = ("schedules",)
    SCHEDULES_FIELD_NUMBER: _ClassVar[int]
    schedules: _containers.RepeatedCompositeFieldContainer[Schedule]
    def __init__(self, schedules: _Optional[_Iterable[_Union[Schedule, _Mapping]]] = ...) -> None: ...

class DeleteScheduleResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
