"""schemathesis against the published OpenAPI document, in process (ASGI): no 5xx, and every
answer matches the schema the document gives for it.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from shoal.core.service import QueueService
from shoal.protocols.http import HttpSettings, create_app
from shoal.scheduler import SchedulerApi, ScheduleService
from shoal.stores.memory import MemoryStore

# Long polls are capped at 50 ms so that generated `wait` values cost nothing.
service = QueueService(MemoryStore())
app = create_app(
    service,
    settings=HttpSettings(max_wait=0.05),
    schedules=SchedulerApi(ScheduleService(service)),
)
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


# The event stream never ends by itself, so it is tested on a real server instead.
@schema.exclude(path="/api/v1/events").parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_honours_its_openapi_document(case: schemathesis.Case) -> None:
    # Names must be printable and free of white space, which JSON Schema cannot say exactly;
    # such inputs get a documented 422 naming the field, so acceptance of every schema-valid
    # input is not asked for.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
