from __future__ import annotations

import shoal.sdk
import shoal.sdk.worker


def test_sdk_exports() -> None:
    assert sorted(shoal.sdk.__all__) == [
        "Admin",
        "App",
        "Credentials",
        "Event",
        "GrpcTransport",
        "JobCancelled",
        "JobContext",
        "JobHandle",
        "JobState",
        "JsonSerializer",
        "LocalTransport",
        "NonRetryable",
        "PickleSerializer",
        "Pool",
        "ResultTimeout",
        "Retry",
        "RetryPolicy",
        "ScheduleOptions",
        "ScheduleView",
        "Schedules",
        "Serializer",
        "ShoalError",
        "Task",
        "TaskCall",
        "TaskFailed",
        "TaskOptions",
        "TaskRegistry",
        "TaskVariant",
        "Transport",
        "Worker",
        "WorkerConfig",
        "WorkerSession",
        "current_job",
    ]
    for name in shoal.sdk.__all__:
        assert getattr(shoal.sdk, name) is not None


def test_worker_entry_exports() -> None:
    assert sorted(shoal.sdk.worker.__all__) == ["load_app", "run_worker"]
