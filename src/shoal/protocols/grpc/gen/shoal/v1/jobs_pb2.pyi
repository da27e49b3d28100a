from shoal.protocols.grpc.gen.shoal.v1 import model_pb2 as _model_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EnqueueRequest(_message.Message):
    __slots__ = ("namespace", "queue", "task", "payload", "content_type", "priority", "delay", "run_at", "max_attempts", "backoff", "timeout", "idempotency_key", "dedupe_window", "tags", "parent_id")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    DELAY_FIELD_NUMBER: _ClassVar[int]
    RUN_AT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DEDUPE_WINDOW_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    queue: str
    task: str
    payload: bytes
    content_type: str
    priority: int
    delay: float
    run_at: float
    max_attempts: int
    backoff: _model_pb2.Backoff
    timeout: float
    idempotency_key: str
    dedupe_window: float
    tags: _containers.RepeatedScalarFieldContainer[str]
    parent_id: str
    def __init__(self, namespace: _Optional[str] = ..., queue: _Optional[str] = ..., task: _Optional[str] = ..., payload: _Optional[bytes] = ..., content_type: _Optional[str] = ..., priority: _Optional[int] = ..., delay: _Optional[float] = ..., run_at: _Optional[float] = ..., max_attempts: _Optional[int] = ..., backoff: _Optional[_Union[_model_pb2.Backoff, _Mapping]] = ..., timeout: _Optional[float] = ..., idempotency_key: _Optional[str] = ..., dedupe_window: _Optional[float] = ..., tags: _Optional[_Iterable[str]] = ..., parent_id: _Optional[str] = ...) -> None: ...

class EnqueueResponse(_message.Message):
    __slots__ = ("job", "created")
    JOB_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    job: _model_pb2.Job
    created: bool
    def __init__(self, job: _Optional[_Union[_model_pb2.Job, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class EnqueueManyRequest(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[EnqueueRequest]
    def __init__(self, jobs: _Optional[_Iterable[_Union[EnqueueRequest, _Mapping]]] = ...) -> None: ...

class EnqueueManyResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[EnqueueResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[EnqueueResponse, _Mapping]]] = ...) -> None: ...

class EnqueueStreamRequest(_message.Message):
    __slots__ = ("batches",)
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    batches: _containers.RepeatedCompositeFieldContainer[EnqueueBatch]
    def __init__(self, batches: _Optional[_Iterable[_Union[EnqueueBatch, _Mapping]]] = ...) -> None: ...

class EnqueueBatch(_message.Message):
    __slots__ = ("seq", "jobs")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    seq: int
    jobs: _containers.RepeatedCompositeFieldContainer[EnqueueRequest]
    def __init__(self, seq: _Optional[int] = ..., jobs: _Optional[_Iterable[_Union[EnqueueRequest, _Mapping]]] = ...) -> None: ...

class EnqueueStreamResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[EnqueueBatchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[EnqueueBatchResult, _Mapping]]] = ...) -> None: ...

class EnqueueBatchResult(_message.Message):
    __slots__ = ("seq", "jobs", "error")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    seq: int
    jobs: _containers.RepeatedCompositeFieldContainer[Enqueued]
    error: _model_pb2.Error
    def __init__(self, seq: _Optional[int] = ..., jobs: _Optional[_Iterable[_Union[Enqueued, _Mapping]]] = ..., error: _Optional[_Union[_model_pb2.Error, _Mapping]] = ...) -> None: ...

class Enqueued(_message.Message):
    __slots__ = ("id", "created", "state", "created_at", "run_at", "max_attempts", "backoff", "timeout", "job")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    RUN_AT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    id: str
    created: bool
    state: _model_pb2.JobState
    created_at: float
    run_at: float
    max_attempts: int
    backoff: str
    timeout: float
    job: _model_pb2.Job
    def __init__(self, id: _Optional[str] = ..., created: _Optional[bool] = ..., state: _Optional[_Union[_model_pb2.JobState, str]] = ..., created_at: _Optional[float] = ..., run_at: _Optional[float] = ..., max_attempts: _Optional[int] = ..., backoff: _Optional[str] = ..., timeout: _Optional[float] = ..., job: _Optional[_Union[_model_pb2.Job, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("namespace", "id")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    id: str
    def __init__(self, namespace: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("namespace", "queue", "state", "task", "tag", "created_after", "created_before", "cursor", "limit")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    queue: str
    state: _model_pb2.JobState
    task: str
    tag: str
    created_after: float
    created_before: float
    cursor: str
    limit: int
    def __init__(self, namespace: _Optional[str] = ..., queue: _Optional[str] = ..., state: _Optional[_Union[_model_pb2.JobState, str]] = ..., task: _Optional[str] = ..., tag: _Optional[str] = ..., created_after: _Optional[float] = ..., created_before: _Optional[float] = ..., cursor: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_cursor")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_model_pb2.Job]
    next_cursor: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[_model_pb2.Job, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("namespace", "id")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    id: str
    def __init__(self, namespace: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class RetryJobRequest(_message.Message):
    __slots__ = ("namespace", "id")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    id: str
    def __init__(self, namespace: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class DeleteJobRequest(_message.Message):
    __slots__ = ("namespace", "id")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    id: str
    def __init__(self, namespace: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class DeleteJobResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WaitForJobRequest(_message.Message):
    __slots__ = ("namespace", "id", "timeout")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    id: str
    timeout: float
    def __init__(self, namespace: _Optional[str] = ..., id: _Optional[str] = ..., timeout: _Optional[float] = ...) -> None: ...

class WaitForJobResponse(_message.Message):
    __slots__ = ("job", "finished")
    JOB_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    job: _model_pb2.Job
    finished: bool
    def __init__(self, job: _Optional[_Union[_model_pb2.Job, _Mapping]] = ..., finished: _Optional[bool] = ...) -> None: ...
