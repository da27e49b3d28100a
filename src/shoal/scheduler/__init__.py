"""The scheduler: trigger maths (interval, cron, once), schedules, their service and runner.

It sits beside the stores and imports only `shoal.core`; the composition root wires a
`ScheduleService` and a `SchedulerRunner` to the same `QueueService`.
"""

from __future__ import annotations

from shoal.scheduler.api import SchedulerApi
from shoal.scheduler.model import CatchUp, Overlap, Schedule, ScheduleInput
from shoal.scheduler.runner import RunnerSettings, SchedulerRunner
from shoal.scheduler.service import ScheduleService
from shoal.scheduler.triggers import CronTrigger, IntervalTrigger, OnceTrigger, Trigger

__all__ = [
    "CatchUp",
    "CronTrigger",
    "IntervalTrigger",
    "OnceTrigger",
    "Overlap",
    "RunnerSettings",
    "Schedule",
    "ScheduleInput",
    "ScheduleService",
    "SchedulerApi",
    "SchedulerRunner",
    "Trigger",
]
