"""Reply bytes and Go-shaped JSON of the TCP protocol against seed-systems.md 1.2 and 1.4."""

from __future__ import annotations

import json

import pytest

from shoal.core.errors import (
    Conflict,
    InvalidArgument,
    LeaseLost,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    ShoalError,
    StorageError,
    Unauthenticated,
    Unavailable,
)
from shoal.core.model import Job, JobError, JobId, JobState, QueueStats
from shoal.core.ports import HeartbeatResult
from shoal.protocols.tcp.codec import Parser
from shoal.protocols.tcp.commands import COMMANDS, HELP_NAMES, Command, ErrorCode
from shoal.protocols.tcp.replies import (
    BARE,
    OK,
    PONG,
    WELCOME,
    Dispatch,
    ErrorReply,
    JsonReply,
    Lines,
    OkId,
    TextReply,
    debug_lines,
    debug_parts_reply,
    encode,
    encode_all,
    error_reply,
    go_debug,
    go_health,
    go_heartbeat,
    go_job,
    go_job_from,
    go_json,
    go_queue,
    go_recurrent_job,
    go_session,
    go_stats,
    go_time,
    go_worker,
    help_reply,
)

UPSTREAM_HELP = (
    '["AUTH","USE_GROUP","PUBLISH","SUBSCRIBE","UNSUBSCRIBE","LIST_QUEUES","DELETE_QUEUE",'
    '"PURGE_JOBS","PURGE_WORKERS","LIST_JOBS","UPDATE_JOB","DELETE_JOB","DISPATCH",'
    '"RECURRENT_JOB","LIST_RECURRENT_JOBS","DELETE_RECURRENT_JOB","HEALTH","DEBUG_PARTS",'
    '"DEBUG","DEBUG_JSON","STOP_SERVER","PING","QUIT","CURRENT_SESSION","LIST_SESSIONS"]'
)

UPSTREAM_DESCRIPTIONS = {
    "AUTH": "Authenticate with a username and a password",
    "USE_GROUP": "Declare which group the client want to use",
    "PUBLISH": "Create a job in a queue and return the ID of the created job",
    "SUBSCRIBE": "Subscribe to a queue to receive jobs",
    "UNSUBSCRIBE": "The exact oposite of the SUBSCRIBE command",
    "LIST_QUEUES": "List all queues in the current group",
    "DELETE_QUEUE": "Delete a queue",
    "PURGE_JOBS": "Delete every jobs in a queue",
    "PURGE_WORKERS": "Unsubscribe every worker in a queue",
    "LIST_JOBS": "List all jobs in a queue",
    "UPDATE_JOB": "Set the status of a job",
    "DELETE_JOB": "Delete a job",
    "DISPATCH": "Will force the dispatch of jobs accross all the workers",
    "RECURRENT_JOB": "Declare recurrent job on a queue",
    "LIST_RECURRENT_JOBS": "List all the recurrent jobs of a queue",
    "DELETE_RECURRENT_JOB": "Delete a recurrent job",
    "HEALTH": "Get the health of this jobatator instance",
    "DEBUG_PARTS": "Dump parsed command parts",
    "DEBUG": "Dump server data in a human readable format, only work if debug is enabled",
    "DEBUG_JSON": "Dump server data in a JSON format, only work if debug is enabled",
    "STOP_SERVER": "Stop the server, only work if test_mode is enabled",
    "PING": "Check if the connexion is alive",
    "QUIT": "Disconnect from the server",
    "CURRENT_SESSION": "Get current session data (user allowed groups for example)",
    "LIST_SESSIONS": "List all sessions in the group",
}

EMPTY_QUEUE = (
    '{"ID":"","Slug":"","Group":{"Slug":""},"RecurrentJobs":null,"Jobs":null,"Workers":null}'
)


# --- plain replies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "wire"),
    [
        (OK, b"OK\n"),
        (OkId("rBH1I9rsgs5pZoyX"), b"OK#rBH1I9rsgs5pZoyX\n"),
        (OkId(1), b"OK#1\n"),
        (PONG, b"PONG\n"),
        (WELCOME, b"Welcome!\n"),
        (BARE, b"\n"),
        (ErrorReply(ErrorCode.UNKNOWN_COMMAND), b"Err: unknown-command\n"),
        (ErrorReply(ErrorCode.NOT_LOGGED), b"Err: not-logged\n"),
        (ErrorReply(ErrorCode.GROUP_NON_SELECTED), b"Err: group-non-selected\n"),
        (ErrorReply(ErrorCode.WRONG_NUMBERS_ARGUMENTS), b"Err: wrong-numbers-arguments\n"),
        (ErrorReply(ErrorCode.INVALID_CREDS), b"Err: invalid-creds\n"),
        (ErrorReply(ErrorCode.UNKNOWN_GROUP), b"Err: unknown-group\n"),
        (ErrorReply(ErrorCode.FORBIDDEN_GROUP), b"Err: forbidden-group\n"),
        (ErrorReply(ErrorCode.UNKNOWN_QUEUE), b"Err: unknown-queue\n"),
        (ErrorReply(ErrorCode.UNKNOWN_JOB), b"Err: unknown-job\n"),
        (ErrorReply(ErrorCode.UNKNOWN_STATE), b"Err: unknown-state\n"),
        (ErrorReply(ErrorCode.DISPATCH_DISABLED), b"Err: dispatch-disabled\n"),
        (ErrorReply(ErrorCode.UNKNOWN_RECURRENT_JOB), b"Err: unknown-recurrent-job\n"),
        (ErrorReply(ErrorCode.TEST_MODE_DISABLED), b"Err: test-mode-disabled\n"),
        (ErrorReply(ErrorCode.FORBIDDEN), b"Err: forbidden\n"),
        (
            ErrorReply(ErrorCode.INVALID_CRON, "expected exactly 5 fields, found 1: [bad]"),
            b"Err: invalid-cron;expected exactly 5 fields, found 1: [bad]\n",
        ),
        (ErrorReply(ErrorCode.LINE_TOO_LONG), b"Err: line-too-long\n"),
    ],
)
def test_plain_replies(reply: object, wire: bytes) -> None:
    assert encode(reply) == wire  # type: ignore[arg-type]


def test_every_reply_is_one_line() -> None:
    assert encode(TextReply("a\r\nb\nc")) == b"a b c\n"
    assert encode(ErrorReply("invalid-cron", "x\ny")) == b"Err: invalid-cron;x y\n"
    assert encode(OkId("a\nb")) == b"OK#a b\n"


def test_lines_reply() -> None:
    assert encode(Lines(("== GROUPS ==", "- slug: g", "", "No queues"))) == (
        b"== GROUPS ==\n- slug: g\n\nNo queues\n"
    )


def test_encode_all_concatenates_in_order() -> None:
    assert encode_all([WELCOME, OK, PONG]) == b"Welcome!\nOK\nPONG\n"


def test_text_never_raises_on_lone_surrogates() -> None:
    assert encode(TextReply("a\udcffb")) == b"a?b\n"


# --- JSON rendering -------------------------------------------------------------------------


def test_go_json_is_compact_and_html_safe_like_encoding_json() -> None:
    value = {"B": "<a&b>", "A": [1, None, True], "C": "é\u2028\n\t"}
    assert go_json(value) == (
        '{"B":"\\u003ca\\u0026b\\u003e","A":[1,null,true],"C":"é\\u2028\\n\\t"}'
    )
    assert json.loads(go_json(value)) == value


def test_json_reply_of_null_and_empty_list() -> None:
    assert encode(JsonReply(None)) == b"null\n"
    assert encode(JsonReply([])) == b"[]\n"


@pytest.mark.parametrize(
    ("timestamp", "text"),
    [
        (None, "0001-01-01T00:00:00Z"),
        (0.0, "1970-01-01T00:00:00Z"),
        (1700000000.0, "2023-11-14T22:13:20Z"),
        (1700000000.5, "2023-11-14T22:13:20.5Z"),
        (1700000000.123456, "2023-11-14T22:13:20.123456Z"),
    ],
)
def test_go_time(timestamp: float | None, text: str) -> None:
    assert go_time(timestamp) == text


# --- HELP, DEBUG_PARTS ----------------------------------------------------------------------


def test_help_lists_upstream_commands_then_extensions() -> None:
    wire = encode(help_reply(()))
    assert wire.startswith(UPSTREAM_HELP[:-1].encode() + b",")
    assert json.loads(wire) == [*json.loads(UPSTREAM_HELP), *HELP_NAMES[25:]]
    assert HELP_NAMES[25:] == ("HEARTBEAT", "CANCEL_JOB", "RETRY_JOB", "STATS")
    assert "HELP" not in HELP_NAMES


def test_help_with_three_words_or_more_lists() -> None:
    assert help_reply(("a", "b")) == help_reply(())
    assert help_reply(("PUBLISH", "x", "y")) == help_reply(())


def test_help_publish_is_exact() -> None:
    assert encode(help_reply(("PUBLISH",))) == (
        b'{"Name":"PUBLISH","RequireAuth":true,"RequireGroup":true,"Args":3,'
        b'"Description":"Create a job in a queue and return the ID of the created job",'
        b'"Usage":"PUBLISH {queue_slug} {job_type} {job_payload}"}\n'
    )


def test_help_lookup_is_case_sensitive() -> None:
    assert encode(help_reply(("publish",))) == b"Err: unknown-command\n"
    assert encode(help_reply(("HELP",))) == b"Err: unknown-command\n"


@pytest.mark.parametrize("name", HELP_NAMES)
def test_help_of_every_command(name: str) -> None:
    reply = help_reply((name,))
    assert isinstance(reply, JsonReply)
    entry = json.loads(encode(reply))
    spec = COMMANDS[name]
    assert list(entry) == ["Name", "RequireAuth", "RequireGroup", "Args", "Description", "Usage"]
    assert entry["Name"] == name
    assert entry["Args"] == spec.args
    assert entry["Usage"].split()[0] == name
    if name in UPSTREAM_DESCRIPTIONS:
        assert entry["Description"] == UPSTREAM_DESCRIPTIONS[name]
    if spec.args == 0:
        assert entry["Usage"] == name  # upstream reports the bare name


def test_help_of_debug_parts_says_any_count() -> None:
    reply = help_reply(("DEBUG_PARTS",))
    assert isinstance(reply, JsonReply)
    assert json.loads(encode(reply))["Args"] == -1


def test_debug_parts_reply_is_the_upstream_literal() -> None:
    line = b"DEBUG_PARTS nonQuoted 'that is quoted' 'also that' 'and' that"
    command = Command("DEBUG_PARTS", ("nonQuoted", "that is quoted", "also that", "and", "that"))
    assert Parser().feed(line + b"\n") == [command]
    assert encode(debug_parts_reply(command)) == (
        b'["DEBUG_PARTS","nonQuoted","that is quoted","also that","and","that"]\n'
    )


# --- Go-shaped objects (1.2) ----------------------------------------------------------------


def test_job_object_shape() -> None:
    job = go_job(id="abc", state="pending", type="job.type", payload='{"a":1}')
    assert go_json(job) == (
        '{"ID":"abc","State":"pending","Type":"job.type","Payload":"{\\"a\\":1}","Attempts":0,'
        '"StartedProcessingAt":"0001-01-01T00:00:00Z","EndProcessingAt":"0001-01-01T00:00:00Z",'
        f'"Queue":{EMPTY_QUEUE},"Group":{{"Slug":""}}}}'
    )


def test_dispatch_line_shape() -> None:
    job = go_job(id="abc", state="errored", type="t", payload="p", attempts=1)
    assert encode(Dispatch(job)) == (
        b'{"Job":' + go_json(job).encode() + b',"Debug":"Dispatch data"}\n'
    )


def test_queue_object_shape_with_nil_and_empty_lists() -> None:
    assert go_json(go_queue(id="q1", slug="default", group="group1")) == (
        '{"ID":"q1","Slug":"default","Group":{"Slug":"group1"},'
        '"RecurrentJobs":null,"Jobs":null,"Workers":null}'
    )
    purged = go_queue(id="q1", slug="default", group="g", jobs=[], workers=[])
    assert purged["Jobs"] == [] and purged["Workers"] == []


def test_worker_object_never_carries_the_password() -> None:
    worker = go_worker(
        username="user1",
        groups=["group1"],
        addr="127.0.0.1:46602",
        current_group="group1",
        status="available",
    )
    assert go_json(worker) == (
        '{"Username":"user1","Password":"","Groups":["group1"],"Addr":"127.0.0.1:46602",'
        '"CurrentGroup":{"Slug":"group1"},"Conn":{},"Status":"available"}'
    )


def test_recurrent_job_object_shape() -> None:
    assert go_json(go_recurrent_job(entry_id=1, type="t", cron="* * * * *")) == (
        f'{{"EntryID":1,"Queue":{EMPTY_QUEUE},"Type":"t","CronExpression":"* * * * *"}}'
    )


def test_current_session_is_the_upstream_literal() -> None:
    session = go_session(
        username="user1",
        addr="127.0.0.1:46602",
        current_group="group1",
        is_worker=False,
        groups=["group1"],
    )
    assert go_json(session) == (
        '{"Username":"user1","Addr":"127.0.0.1:46602","CurrentGroup":"group1",'
        '"IsWorker":false,"Groups":["group1"]}'
    )


def test_health_is_the_upstream_literal() -> None:
    health = go_health(
        uptime=12,
        version="go1.19.8",
        num_cpu=2,
        num_tasks=3,
        num_sessions=1,
        num_authed=1,
        num_groups=0,
        num_users=0,
        num_queues=1,
        num_jobs=2,
        num_workers=0,
        unix_timestamp=1795363247,
    )
    assert go_json(health) == (
        '{"Uptime":12,"Os":"linux","Version":"go1.19.8","NumCPU":2,"NumGoroutine":3,'
        '"NumSessions":1,"NumAuthed":1,"NumGroups":0,"NumUsers":0,"NumQueues":1,"NumJobs":2,'
        '"NumWorkers":0,"UnixTimestamp":1795363247}'
    )


def test_debug_json_shape() -> None:
    debug = go_debug(queues=None, groups=["g1"], sessions=[], users=[], host="h", port=8962)
    assert go_json(debug) == (
        '{"Queues":null,"Groups":[{"Slug":"g1"}],"Sessions":[],"Users":[],"Host":"h","Port":8962}'
    )


def test_debug_dump_without_queues() -> None:
    assert encode(debug_lines(groups=["group1", "group2"], sessions=[], queues=[])) == (
        b"== GROUPS ==\n- slug: group1\n- slug: group2\n"
        b"\n== SESSION USERS ==\n\n== QUEUES ==\nNo queues\n"
    )


def test_debug_dump_with_a_queue() -> None:
    worker = go_worker(
        username="user1", groups=["g"], addr="1.2.3.4:5", current_group="g", status="busy"
    )
    queue = go_queue(
        id="q1",
        slug="default",
        group="g",
        jobs=[go_job(id="j1", state="errored", type="t", payload="p")],
        recurrent_jobs=[go_recurrent_job(entry_id=1, type="t", cron="* * * * *")],
        workers=[worker],
    )
    wire = encode(debug_lines(groups=["g"], sessions=[worker], queues=[queue]))
    assert wire.decode().split("\n") == [
        "== GROUPS ==",
        "- slug: g",
        "",
        "== SESSION USERS ==",
        "- username: user1",
        "  currentGroup: g",
        "  addr: 1.2.3.4:5",
        "",
        "== QUEUES ==",
        "- slug: default",
        "  id: q1",
        "  jobs: 1",
        "    - id: j1",
        "      type: t",
        "      state: errored",
        "      payload: p",
        "  recurrent_jobs: 1",
        "    - id: 1",
        "      type: t",
        "      expression: * * * * *",
        "  workers: 1",
        "    - addr: 1.2.3.4:5",
        "      username: user1",
        "      status: busy",
        "",
    ]


# --- from shoal's model ---------------------------------------------------------------------


def _job(**changes: object) -> Job:
    base: dict[str, object] = {
        "id": JobId("0193f0c2-0000-7000-8000-000000000001"),
        "namespace": "group1",
        "queue": "default",
        "task": "job.type",
        "payload": b'{"x": 1}',
        "state": JobState.QUEUED,
        "created_at": 1700000000.0,
        "run_at": 1700000000.0,
    }
    base.update(changes)
    return Job(**base)  # type: ignore[arg-type]


_ERROR = JobError("ValueError", "boom")


@pytest.mark.parametrize(
    ("changes", "state", "attempts"),
    [
        ({}, "pending", 0),
        ({"state": JobState.SCHEDULED}, "pending", 0),
        ({"state": JobState.RUNNING, "attempt": 1}, "in-progress", 0),
        ({"state": JobState.SUCCEEDED, "attempt": 1}, "done", 0),
        ({"state": JobState.SUCCEEDED, "attempt": 3}, "done", 2),
        ({"state": JobState.SCHEDULED, "attempt": 1, "error": _ERROR}, "errored", 1),
        ({"state": JobState.QUEUED, "attempt": 2, "error": _ERROR}, "errored", 2),
        ({"state": JobState.RUNNING, "attempt": 2, "error": _ERROR}, "in-progress", 1),
        ({"state": JobState.FAILED, "attempt": 3, "error": _ERROR}, "errored", 3),
        ({"state": JobState.CANCELLED}, "errored", 0),
    ],
)
def test_job_from_model(changes: dict[str, object], state: str, attempts: int) -> None:
    go = go_job_from(_job(**changes))
    assert go["State"] == state
    assert go["Attempts"] == attempts


def test_job_from_model_fields() -> None:
    go = go_job_from(_job(state=JobState.SUCCEEDED, attempt=1, started_at=1.5, finished_at=2.0))
    assert go == go_job(
        id="0193f0c2-0000-7000-8000-000000000001",
        state="done",
        type="job.type",
        payload='{"x": 1}',
        started_at="1970-01-01T00:00:01.5Z",
        ended_at="1970-01-01T00:00:02Z",
    )
    assert go_job_from(_job(payload=b"\xff"))["Payload"] == "\ufffd"


def test_stats_object() -> None:
    stats = QueueStats(
        by_state={JobState.QUEUED: 2, JobState.FAILED: 1},
        by_task={"b": {JobState.FAILED: 1}, "a": {JobState.QUEUED: 2}},
    )
    zero = {state.value: 0 for state in JobState}
    assert go_json(go_stats("default", stats)) == go_json(
        {
            "Queue": "default",
            "Total": 3,
            "ByState": zero | {"queued": 2, "failed": 1},
            "ByType": {"a": zero | {"queued": 2}, "b": zero | {"failed": 1}},
        }
    )


def test_heartbeat_object() -> None:
    result = HeartbeatResult(renewed=("a", "b"), lost=("c",), cancel_requested=("b",))
    assert go_json(go_heartbeat(result)) == '{"Renewed":["a","b"],"Lost":["c"],"Cancel":["b"]}'


@pytest.mark.parametrize(
    ("error", "wire"),
    [
        (NotFound(), b"Err: unknown-job\n"),
        (Conflict(), b"Err: job-finished\n"),
        (LeaseLost(), b"Err: lease-lost\n"),
        (Unauthenticated(), b"Err: not-logged\n"),
        (PermissionDenied(), b"Err: forbidden\n"),
        (ResourceExhausted(), b"Err: resource-exhausted\n"),
        (Unavailable(), b"Err: unavailable\n"),
        (StorageError("password=secret in DSN"), b"Err: unavailable\n"),
        (ShoalError(), b"Err: internal\n"),
        (InvalidArgument("task", "too long"), b"Err: invalid-argument;task: too long\n"),
    ],
)
def test_error_reply_for_service_errors(error: ShoalError, wire: bytes) -> None:
    assert encode(error_reply(error)) == wire


def test_error_reply_codes_depend_on_the_command() -> None:
    assert error_reply(NotFound(), not_found=ErrorCode.UNKNOWN_QUEUE).code == "unknown-queue"
    retry = error_reply(Conflict(), conflict=ErrorCode.JOB_NOT_RETRYABLE)
    assert encode(retry) == b"Err: job-not-retryable\n"
