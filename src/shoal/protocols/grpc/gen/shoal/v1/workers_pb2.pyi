from shoal.protocols.grpc.gen.shoal.v1 import model_pb2 as _model_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkerMessage(_message.Message):
    __slots__ = ("hello", "credit", "heartbeat", "outcomes", "progress", "release")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    CREDIT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    credit: Credit
    heartbeat: Heartbeat
    outcomes: Outcomes
    progress: Progress
    release: Release
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., credit: _Optional[_Union[Credit, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., outcomes: _Optional[_Union[Outcomes, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., release: _Optional[_Union[Release, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("namespace", "queues", "tasks", "concurrency", "language", "host", "pid", "lease_ttl", "lookahead", "previous_session_secret", "held")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_FIELD_NUMBER: _ClassVar[int]
    LOOKAHEAD_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SESSION_SECRET_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    queues: _containers.RepeatedScalarFieldContainer[str]
    tasks: _containers.RepeatedScalarFieldContainer[str]
    concurrency: int
    language: str
    host: str
    pid: int
    lease_ttl: float
    lookahead: float
    previous_session_secret: str
    held: _containers.RepeatedCompositeFieldContainer[_model_pb2.Lease]
    def __init__(self, namespace: _Optional[str] = ..., queues: _Optional[_Iterable[str]] = ..., tasks: _Optional[_Iterable[str]] = ..., concurrency: _Optional[int] = ..., language: _Optional[str] = ..., host: _Optional[str] = ..., pid: _Optional[int] = ..., lease_ttl: _Optional[float] = ..., lookahead: _Optional[float] = ..., previous_session_secret: _Optional[str] = ..., held: _Optional[_Iterable[_Union[_model_pb2.Lease, _Mapping]]] = ...) -> None: ...

class Credit(_message.Message):
    __slots__ = ("credits",)
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    credits: int
    def __init__(self, credits: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("leases",)
    LEASES_FIELD_NUMBER: _ClassVar[int]
    leases: _containers.RepeatedCompositeFieldContainer[_model_pb2.Lease]
    def __init__(self, leases: _Optional[_Iterable[_Union[_model_pb2.Lease, _Mapping]]] = ...) -> None: ...

class Completion(_message.Message):
    __slots__ = ("job_id", "token", "result")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    token: str
    result: bytes
    def __init__(self, job_id: _Optional[str] = ..., token: _Optional[str] = ..., result: _Optional[bytes] = ...) -> None: ...

class Failure(_message.Message):
    __slots__ = ("job_id", "token", "error", "retry_delay")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETRY_DELAY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    token: str
    error: _model_pb2.JobError
    retry_delay: float
    def __init__(self, job_id: _Optional[str] = ..., token: _Optional[str] = ..., error: _Optional[_Union[_model_pb2.JobError, _Mapping]] = ..., retry_delay: _Optional[float] = ...) -> None: ...

class Outcomes(_message.Message):
    __slots__ = ("completed", "failed")
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    completed: _containers.RepeatedCompositeFieldContainer[Completion]
    failed: _containers.RepeatedCompositeFieldContainer[Failure]
    def __init__(self, completed: _Optional[_Iterable[_Union[Completion, _Mapping]]] = ..., failed: _Optional[_Iterable[_Union[Failure, _Mapping]]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("job_id", "token", "progress")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    token: str
    progress: float
    def __init__(self, job_id: _Optional[str] = ..., token: _Optional[str] = ..., progress: _Optional[float] = ...) -> None: ...

class Release(_message.Message):
    __slots__ = ("leases",)
    LEASES_FIELD_NUMBER: _ClassVar[int]
    leases: _containers.RepeatedCompositeFieldContainer[_model_pb2.Lease]
    def __init__(self, leases: _Optional[_Iterable[_Union[_model_pb2.Lease, _Mapping]]] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("welcome", "assignments", "heartbeat_ack", "acks", "cancel", "drain", "goodbye", "error")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_ACK_FIELD_NUMBER: _ClassVar[int]
    ACKS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    GOODBYE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    assignments: Assignments
    heartbeat_ack: HeartbeatAck
    acks: Acks
    cancel: Cancel
    drain: Drain
    goodbye: Goodbye
    error: _model_pb2.Error
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., assignments: _Optional[_Union[Assignments, _Mapping]] = ..., heartbeat_ack: _Optional[_Union[HeartbeatAck, _Mapping]] = ..., acks: _Optional[_Union[Acks, _Mapping]] = ..., cancel: _Optional[_Union[Cancel, _Mapping]] = ..., drain: _Optional[_Union[Drain, _Mapping]] = ..., goodbye: _Optional[_Union[Goodbye, _Mapping]] = ..., error: _Optional[_Union[_model_pb2.Error, _Mapping]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("worker_id", "heartbeat_interval", "lease_ttl", "session_secret", "max_message_bytes", "max_payload_bytes", "max_credits")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_FIELD_NUMBER: _ClassVar[int]
    SESSION_SECRET_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_PAYLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_CREDITS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    heartbeat_interval: float
    lease_ttl: float
    session_secret: str
    max_message_bytes: int
    max_payload_bytes: int
    max_credits: int
    def __init__(self, worker_id: _Optional[str] = ..., heartbeat_interval: _Optional[float] = ..., lease_ttl: _Optional[float] = ..., session_secret: _Optional[str] = ..., max_message_bytes: _Optional[int] = ..., max_payload_bytes: _Optional[int] = ..., max_credits: _Optional[int] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("job", "token")
    JOB_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    job: _model_pb2.Job
    token: str
    def __init__(self, job: _Optional[_Union[_model_pb2.Job, _Mapping]] = ..., token: _Optional[str] = ...) -> None: ...

class Assignments(_message.Message):
    __slots__ = ("assignments",)
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    assignments: _containers.RepeatedCompositeFieldContainer[Assignment]
    def __init__(self, assignments: _Optional[_Iterable[_Union[Assignment, _Mapping]]] = ...) -> None: ...

class HeartbeatAck(_message.Message):
    __slots__ = ("renewed", "lost", "cancel_requested")
    RENEWED_FIELD_NUMBER: _ClassVar[int]
    LOST_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    renewed: _containers.RepeatedScalarFieldContainer[str]
    lost: _containers.RepeatedScalarFieldContainer[str]
    cancel_requested: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, renewed: _Optional[_Iterable[str]] = ..., lost: _Optional[_Iterable[str]] = ..., cancel_requested: _Optional[_Iterable[str]] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("job_id", "state")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: _model_pb2.JobState
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[_model_pb2.JobState, str]] = ...) -> None: ...

class Acks(_message.Message):
    __slots__ = ("acks",)
    ACKS_FIELD_NUMBER: _ClassVar[int]
    acks: _containers.RepeatedCompositeFieldContainer[Ack]
    def __init__(self, acks: _Optional[_Iterable[_Union[Ack, _Mapping]]] = ...) -> None: ...

class Cancel(_message.Message):
    __slots__ = ("job_ids",)
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Drain(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class Goodbye(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class FetchRequest(_message.Message):
    __slots__ = ("namespace", "queues", "tasks", "worker_id", "limit", "wait", "lease_ttl", "lookahead")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_FIELD_NUMBER: _ClassVar[int]
    LOOKAHEAD_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    queues: _containers.RepeatedScalarFieldContainer[str]
    tasks: _containers.RepeatedScalarFieldContainer[str]
    worker_id: str
    limit: int
    wait: float
    lease_ttl: float
    lookahead: float
    def __init__(self, namespace: _Optional[str] = ..., queues: _Optional[_Iterable[str]] = ..., tasks: _Optional[_Iterable[str]] = ..., worker_id: _Optional[str] = ..., limit: _Optional[int] = ..., wait: _Optional[float] = ..., lease_ttl: _Optional[float] = ..., lookahead: _Optional[float] = ...) -> None: ...

class FetchResponse(_message.Message):
    __slots__ = ("assignments",)
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    assignments: _containers.RepeatedCompositeFieldContainer[Assignment]
    def __init__(self, assignments: _Optional[_Iterable[_Union[Assignment, _Mapping]]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("leases", "worker_id", "namespace", "lease_ttl")
    LEASES_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_FIELD_NUMBER: _ClassVar[int]
    leases: _containers.RepeatedCompositeFieldContainer[_model_pb2.Lease]
    worker_id: str
    namespace: str
    lease_ttl: float
    def __init__(self, leases: _Optional[_Iterable[_Union[_model_pb2.Lease, _Mapping]]] = ..., worker_id: _Optional[str] = ..., namespace: _Optional[str] = ..., lease_ttl: _Optional[float] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("renewed", "lost", "cancel_requested")
    RENEWED_FIELD_NUMBER: _ClassVar[int]
    LOST_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    renewed: _containers.RepeatedScalarFieldContainer[str]
    lost: _containers.RepeatedScalarFieldContainer[str]
    cancel_requested: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, renewed: _Optional[_Iterable[str]] = ..., lost: _Optional[_Iterable[str]] = ..., cancel_requested: _Optional[_Iterable[str]] = ...) -> None: ...

class CompleteRequest(_message.Message):
    __slots__ = ("job_id", "token", "result")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    token: str
    result: bytes
    def __init__(self, job_id: _Optional[str] = ..., token: _Optional[str] = ..., result: _Optional[bytes] = ...) -> None: ...

class FailRequest(_message.Message):
    __slots__ = ("job_id", "token", "error", "retry_delay")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETRY_DELAY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    token: str
    error: _model_pb2.JobError
    retry_delay: float
    def __init__(self, job_id: _Optional[str] = ..., token: _Optional[str] = ..., error: _Optional[_Union[_model_pb2.JobError, _Mapping]] = ..., retry_delay: _Optional[float] = ...) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class ListWorkersResponse(_message.Message):
    __slots__ = ("workers",)
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[_model_pb2.Worker]
    def __init__(self, workers: _Optional[_Iterable[_Union[_model_pb2.Worker, _Mapping]]] = ...) -> None: ...

class KickWorkerRequest(_message.Message):
    __slots__ = ("namespace", "worker_id")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    worker_id: str
    def __init__(self, namespace: _Optional[str] = ..., worker_id: _Optional[str] = ...) -> None: ...

class KickWorkerResponse(_message.Message):
    __slots__ = ("released",)
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    released: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, released: _Optional[_Iterable[str]] = ...) -> None: ...

class DrainWorkerRequest(_message.Message):
    __slots__ = ("namespace", "worker_id")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    worker_id: str
    def __init__(self, namespace: _Optional[str] = ..., worker_id: _Optional[str] = ...) -> None: ...
