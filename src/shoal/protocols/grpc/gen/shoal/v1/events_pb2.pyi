from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class SubscribeRequest(_message.Message):
    __slots__ = ("namespace", "kinds", "job_id")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    job_id: str
    def __init__(self, namespace: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ..., job_id: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("kind", "namespace", "at", "job_id", "queue", "task", "state", "worker_id", "attempt", "data", "dropped")
    class DataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    kind: str
    namespace: str
    at: float
    job_id: str
    queue: str
    task: str
    state: str
    worker_id: str
    attempt: int
    data: _containers.ScalarMap[str, str]
    dropped: int
    def __init__(self, kind: _Optional[str] = ..., namespace: _Optional[str] = ..., at: _Optional[float] = ..., job_id: _Optional[str] = ..., queue: _Optional[str] = ..., task: _Optional[str] = ..., state: _Optional[str] = ..., worker_id: _Optional[str] = ..., attempt: _Optional[int] = ..., data: _Optional[_Mapping[str, str]] = ..., dropped: _Optional[int] = ...) -> None: ...
