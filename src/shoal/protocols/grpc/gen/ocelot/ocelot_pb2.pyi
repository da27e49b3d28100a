from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class JobInstanceMsg(_message.Message):
    __slots__ = ("JobID", "InstanceID", "Ctime", "Mtime", "Success", "Params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOBID_FIELD_NUMBER: _ClassVar[int]
    INSTANCEID_FIELD_NUMBER: _ClassVar[int]
    CTIME_FIELD_NUMBER: _ClassVar[int]
    MTIME_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    JobID: str
    InstanceID: str
    Ctime: int
    Mtime: int
    Success: bool
    Params: _containers.ScalarMap[str, str]
    def __init__(self, JobID: _Optional[str] = ..., InstanceID: _Optional[str] = ..., Ctime: _Optional[int] = ..., Mtime: _Optional[int] = ..., Success: _Optional[bool] = ..., Params: _Optional[_Mapping[str, str]] = ...) -> None: ...
