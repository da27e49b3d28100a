"""The sans-IO parser and command encoder of the TCP protocol (seed-systems.md 1.3, 1.4, 8)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.core.errors import InvalidArgument
from shoal.protocols.tcp.codec import (
    DEFAULT_MAX_LINE,
    Event,
    ParseError,
    Parser,
    encode_command,
)
from shoal.protocols.tcp.commands import (
    ANY_ARGS,
    COMMANDS,
    Command,
    ErrorCode,
    JobatatorState,
    check,
    update_state,
)


def parse(data: bytes, max_line: int = DEFAULT_MAX_LINE) -> list[Event]:
    return Parser(max_line).feed(data)


def parse_chunks(chunks: list[bytes], max_line: int = DEFAULT_MAX_LINE) -> list[Event]:
    parser = Parser(max_line)
    out: list[Event] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out


def cmd(name: str, *args: str) -> Command:
    return Command(name, args)


# --- framing: the upstream consequences of 1.3, as shoal answers them -----------------------


def test_ping_with_newline_and_lower_case_name() -> None:
    assert parse(b"PING\n") == [cmd("PING")]
    assert parse(b"ping\n") == [cmd("PING")]


def test_arguments_keep_their_case() -> None:
    assert parse(b"auth User PassWord\n") == [cmd("AUTH", "User", "PassWord")]


def test_crlf_ends_a_command_too() -> None:
    # Upstream answered `Err: unknown-command` (the `\r` stayed glued to the name): fixed.
    assert parse(b"PING\r\n") == [cmd("PING")]


def test_several_commands_in_one_packet() -> None:
    # Upstream merged them into one unknown command: pipelining works here.
    assert parse(b"PING\nPING\r\nHEALTH\n") == [cmd("PING"), cmd("PING"), cmd("HEALTH")]


def test_one_command_over_several_packets() -> None:
    parser = Parser()
    assert parser.feed(b"PI") == []
    assert parser.has_partial
    assert parser.feed(b"NG\n") == [cmd("PING")]
    assert not parser.has_partial


def test_two_spaces_make_empty_arguments() -> None:
    assert parse(b"DEBUG_PARTS  two  spaces\n") == [cmd("DEBUG_PARTS", "", "two", "", "spaces")]


def test_trailing_space_before_newline_is_an_empty_argument() -> None:
    assert parse(b"AUTH u p \n") == [cmd("AUTH", "u", "p", "")]


def test_empty_line_is_an_unknown_command() -> None:
    (event,) = parse(b"\n")
    assert event == cmd("")
    assert isinstance(event, Command)
    assert check(event, authenticated=True, group_selected=True) is ErrorCode.UNKNOWN_COMMAND


def test_long_argument_of_2000_chars_round_trips() -> None:
    payload = "x" * 2000
    assert parse(f"PUBLISH q t {payload}\n".encode()) == [cmd("PUBLISH", "q", "t", payload)]


def test_tab_is_not_a_separator() -> None:
    assert parse(b"PUBLISH\tq\n") == [cmd("PUBLISH\tQ")]


# --- quoting (parse_command.go, with its bugs fixed) ----------------------------------------


def test_upstream_quoting_test_case() -> None:
    line = b"DEBUG_PARTS nonQuoted 'that is quoted' 'also that' 'and' that\n"
    assert parse(line) == [
        cmd("DEBUG_PARTS", "nonQuoted", "that is quoted", "also that", "and", "that")
    ]


def test_quoted_json_payload() -> None:
    line = b"""PUBLISH default job.type '{"foo": "bar", "n": [1, 2]}'\n"""
    assert parse(line) == [cmd("PUBLISH", "default", "job.type", '{"foo": "bar", "n": [1, 2]}')]


def test_quotes_inside_a_token_are_kept() -> None:
    assert parse(b"""PUBLISH q t '{"name":"O'Brien"}'\n""") == [
        cmd("PUBLISH", "q", "t", '{"name":"O\'Brien"}')
    ]
    assert parse(b"PUBLISH q t it's\n") == [cmd("PUBLISH", "q", "t", "it's")]


def test_quoted_empty_argument() -> None:
    assert parse(b"PUBLISH q t ''\n") == [cmd("PUBLISH", "q", "t", "")]


def test_group_keeps_runs_of_spaces() -> None:
    assert parse(b"X 'a  b'\n") == [cmd("X", "a  b")]


def test_lone_quote_opens_or_closes_a_group() -> None:
    # Upstream: slice out of range, the whole process died.
    assert parse(b"X ' lead\n") == [ParseError(ErrorCode.UNBALANCED_QUOTE, close=False)]
    assert parse(b"X ' lead'\n") == [cmd("X", " lead")]
    assert parse(b"X 'trail '\n") == [cmd("X", "trail ")]
    assert parse(b"X '\n") == [ParseError(ErrorCode.UNBALANCED_QUOTE, close=False)]


def test_quote_opening_token_inside_a_group_is_content() -> None:
    # Upstream restarted the group and lost `a`.
    assert parse(b"X 'a 'b c'\n") == [cmd("X", "a 'b c")]
    assert parse(b"X 'a 'b' d\n") == [cmd("X", "a 'b", "d")]


def test_token_ending_with_quote_outside_a_group_is_literal() -> None:
    # Upstream glued it to the previous group's stale text.
    assert parse(b"X 'a b' c'\n") == [cmd("X", "a b", "c'")]
    assert parse(b"X rock'\n") == [cmd("X", "rock'")]


def test_unclosed_group_is_an_error_not_a_silent_loss() -> None:
    events = parse(b'PUBLISH q t \'{"a": 1}\nPING\n')
    assert events == [ParseError(ErrorCode.UNBALANCED_QUOTE, close=False), cmd("PING")]
    error = events[0]
    assert isinstance(error, ParseError)
    assert error.reply.code == "unbalanced-quote"


def test_quoted_command_name() -> None:
    assert parse(b"'ping'\n") == [cmd("PING")]


# --- the Redis-style array form -------------------------------------------------------------


def test_redis_array_does_not_leak_previous_arguments() -> None:
    data = b"DEBUG_PARTS  two  spaces\n*3\r\n$11\r\nDEBUG_PARTS\r\n$1\r\nx\r\n$3\r\ny z\r\n"
    assert parse(data) == [
        cmd("DEBUG_PARTS", "", "two", "", "spaces"),
        cmd("DEBUG_PARTS", "x", "y z"),
    ]


def test_redis_array_is_binary_safe() -> None:
    data = b"*3\r\n$7\r\npublish\r\n$5\r\na\r\nb'\r\n$0\r\n\r\n"
    assert parse(data) == [cmd("PUBLISH", "a\r\nb'", "")]


def test_redis_array_accepts_bare_newlines() -> None:
    assert parse(b"*2\n$4\nPING\n$1\nx\n") == [cmd("PING", "x")]


@pytest.mark.parametrize(
    "data",
    [
        b"*2\r\n$4\r\nPING\r\nnope\r\n",  # a header that is not $<len>
        b"*1\r\n$2\r\nPING\r\n",  # bulk longer than said
        b"*1\r\n$4\r\nPING\rX",  # \r not followed by \n
        b"*0\r\n",  # empty array
        b"*1\r\n$" + b"9" * 40 + b"\r\n",  # absurd header
    ],
)
def test_malformed_array_closes(data: bytes) -> None:
    parser = Parser()
    assert parser.feed(data) == [ParseError(ErrorCode.PROTOCOL_ERROR, close=True)]
    assert parser.closed
    assert parser.feed(b"PING\n") == []


def test_star_words_are_ordinary_lines() -> None:
    assert parse(b"*abc\n*-1\n") == [cmd("*ABC"), cmd("*-1")]


def test_array_with_invalid_utf8_is_skipped_cleanly() -> None:
    data = b"*2\r\n$4\r\nPING\r\n$1\r\n\xff\r\nPING\n"
    assert parse(data) == [ParseError(ErrorCode.INVALID_UTF8, close=False), cmd("PING")]


def test_array_over_the_limit_closes() -> None:
    assert parse(b"*2\r\n$4\r\nPING\r\n$20\r\n", max_line=16) == [
        ParseError(ErrorCode.LINE_TOO_LONG, close=True)
    ]
    assert parse(b"*100\r\n", max_line=16) == [ParseError(ErrorCode.LINE_TOO_LONG, close=True)]


# --- idle flush: the official CLI's `AUTH u p ` without newline -----------------------------


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (b"AUTH user1 pass1 ", cmd("AUTH", "user1", "pass1")),
        (b"USE_GROUP group1 ", cmd("USE_GROUP", "group1")),
        (b"HELP ", cmd("HELP")),
        (b"PUBLISH q t 'a b' ", cmd("PUBLISH", "q", "t", "a b")),
    ],
)
def test_idle_partial_ending_with_space_is_a_command(sent: bytes, expected: Command) -> None:
    parser = Parser()
    assert parser.feed(sent) == []
    assert parser.has_partial
    assert parser.flush_idle() == [expected]
    assert not parser.has_partial
    assert parser.feed(b"PING\n") == [cmd("PING")]


def test_idle_partial_without_space_keeps_waiting() -> None:
    # A slow sender's line is never cut in two.
    parser = Parser()
    assert parser.feed(b"PUBLISH q t abc") == []
    assert parser.flush_idle() == []
    assert parser.feed(b"def\n") == [cmd("PUBLISH", "q", "t", "abcdef")]


def test_idle_flush_with_nothing_pending() -> None:
    parser = Parser()
    assert parser.flush_idle() == []
    parser.feed(b"PING\n")
    assert parser.flush_idle() == []


def test_idle_flush_does_not_cut_an_array() -> None:
    parser = Parser()
    assert parser.feed(b"*2\r\n$4\r\nPING\r\n$2\r\na ") == []
    assert parser.flush_idle() == []
    assert parser.feed(b"\r\n") == [cmd("PING", "a ")]


def test_idle_flush_at_the_limit() -> None:
    parser = Parser(max_line=8)
    assert parser.feed(b"X 234567 ") == []
    assert parser.flush_idle() == [cmd("X", "234567")]
    assert parser.feed(b"X 2345678 ") == [ParseError(ErrorCode.LINE_TOO_LONG, close=True)]


# --- limits and garbage ---------------------------------------------------------------------


def test_line_of_exactly_max_line_bytes_is_accepted() -> None:
    assert parse(b"X " + b"a" * 14 + b"\r\n", max_line=16) == [cmd("X", "a" * 14)]


def test_line_of_max_line_plus_one_bytes_closes() -> None:
    parser = Parser(max_line=16)
    events = parser.feed(b"X " + b"a" * 15 + b"\nPING\n")
    assert events == [ParseError(ErrorCode.LINE_TOO_LONG, close=True)]
    (error,) = events
    assert isinstance(error, ParseError)
    assert error.reply.code == "line-too-long"
    assert parser.closed
    assert not parser.has_partial
    assert parser.feed(b"PING\n") == []
    assert parser.flush_idle() == []


def test_overlong_line_is_refused_before_its_end_arrives() -> None:
    parser = Parser(max_line=16)
    assert parser.feed(b"a" * 17) == []  # may still be 16 bytes + `\r`
    assert parser.feed(b"a") == [ParseError(ErrorCode.LINE_TOO_LONG, close=True)]


def test_default_limit_is_one_mebibyte() -> None:
    assert DEFAULT_MAX_LINE == 1024 * 1024
    with pytest.raises(InvalidArgument):
        Parser(max_line=0)


def test_invalid_utf8_is_a_clean_error_and_the_next_line_works() -> None:
    assert parse(b"PUBLISH q t \xff\xfe\nPING\n") == [
        ParseError(ErrorCode.INVALID_UTF8, close=False),
        cmd("PING"),
    ]


def test_nul_bytes_are_ordinary_characters() -> None:
    assert parse(b"PUBLISH q t a\x00b\n") == [cmd("PUBLISH", "q", "t", "a\x00b")]


# --- the command table: every command parses and passes its checks -------------------------


def _example_args(count: int) -> tuple[str, ...]:
    return tuple(f"arg{i}" for i in range(max(count, 0)))


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_parses_and_passes_its_checks(name: str) -> None:
    spec = COMMANDS[name]
    args = _example_args(spec.args)
    (command,) = parse(encode_command(name.lower(), args))
    assert command == Command(name, args)
    assert isinstance(command, Command)
    assert check(command, authenticated=True, group_selected=True) is None
    if spec.args != ANY_ARGS:
        wrong = Command(name, (*args, "extra"))
        assert check(wrong, authenticated=True, group_selected=True) is (
            ErrorCode.WRONG_NUMBERS_ARGUMENTS
        )
    expected_auth = ErrorCode.NOT_LOGGED if spec.require_auth else None
    assert check(command, authenticated=False, group_selected=False) is expected_auth
    expected_group = ErrorCode.GROUP_NON_SELECTED if spec.require_group else None
    assert check(command, authenticated=True, group_selected=False) is expected_group


def test_checks_run_in_upstream_order() -> None:
    # unknown -> not-logged -> group-non-selected -> wrong-numbers-arguments
    assert check(cmd("NOPE"), authenticated=False, group_selected=False) is (
        ErrorCode.UNKNOWN_COMMAND
    )
    short_publish = cmd("PUBLISH", "q")
    assert check(short_publish, authenticated=False, group_selected=False) is (ErrorCode.NOT_LOGGED)
    assert check(short_publish, authenticated=True, group_selected=False) is (
        ErrorCode.GROUP_NON_SELECTED
    )
    assert check(short_publish, authenticated=True, group_selected=True) is (
        ErrorCode.WRONG_NUMBERS_ARGUMENTS
    )


def test_zero_argument_commands_take_exactly_zero() -> None:
    assert check(cmd("PING", "x"), authenticated=False, group_selected=False) is (
        ErrorCode.WRONG_NUMBERS_ARGUMENTS
    )


@pytest.mark.parametrize("args", [(), ("a",), ("a", "b", "c", "d", "e")])
def test_help_and_debug_parts_take_any_count(args: tuple[str, ...]) -> None:
    for name in ("HELP", "DEBUG_PARTS"):
        assert check(Command(name, args), authenticated=False, group_selected=False) is None


def test_command_table_counts_and_flags() -> None:
    expected = {
        "AUTH": (2, False, False),
        "USE_GROUP": (1, True, False),
        "PUBLISH": (3, True, True),
        "SUBSCRIBE": (1, True, True),
        "UNSUBSCRIBE": (1, True, True),
        "LIST_QUEUES": (0, True, True),
        "DELETE_QUEUE": (1, True, True),
        "PURGE_JOBS": (1, True, True),
        "PURGE_WORKERS": (1, True, True),
        "LIST_JOBS": (1, True, True),
        "UPDATE_JOB": (2, True, True),
        "DELETE_JOB": (1, True, True),
        "DISPATCH": (0, False, False),
        "RECURRENT_JOB": (3, True, True),
        "LIST_RECURRENT_JOBS": (1, True, True),
        "DELETE_RECURRENT_JOB": (1, True, True),
        "HEALTH": (0, True, False),
        "DEBUG_PARTS": (-1, False, False),
        "DEBUG": (0, False, False),
        "DEBUG_JSON": (0, False, False),
        "STOP_SERVER": (0, False, False),
        "PING": (0, False, False),
        "QUIT": (0, False, False),
        "CURRENT_SESSION": (0, True, False),
        "LIST_SESSIONS": (0, True, False),
        "HEARTBEAT": (0, True, True),
        "CANCEL_JOB": (1, True, True),
        "RETRY_JOB": (1, True, True),
        "STATS": (1, True, True),
        "HELP": (-1, False, False),
    }
    actual = {n: (s.args, s.require_auth, s.require_group) for n, s in COMMANDS.items()}
    assert actual == expected
    assert COMMANDS["PUBLISH"].arg_names == ("queue_slug", "job_type", "job_payload")


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("in-progress", JobatatorState.IN_PROGRESS),
        ("done", JobatatorState.DONE),
        ("errored", JobatatorState.ERRORED),
        ("pending", None),
        ("DONE", None),
        ("", None),
    ],
)
def test_update_job_states(text: str, state: JobatatorState | None) -> None:
    assert update_state(text) is state


def test_encode_command_forms() -> None:
    assert encode_command("ping") == b"PING\n"
    assert encode_command("PUBLISH", ["q", "t", '{"a": 1}']) == b"PUBLISH q t '{\"a\": 1}'\n"
    assert encode_command("X", ["", "'a"]) == b"X '' ''a'\n"
    assert encode_command("X", ["a' b"]) == b"*2\r\n$1\r\nX\r\n$4\r\na' b\r\n"
    for bad in ("", "A B", "A'", "A\n"):
        with pytest.raises(InvalidArgument):
            encode_command(bad)


# --- properties -----------------------------------------------------------------------------

_names = st.sampled_from(sorted(COMMANDS))
_line_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"))
_any_text = st.text(st.characters(codec="utf-8"))
# Longer streams add nothing to the split tests but quadratic time.
_short_text = st.text(st.characters(codec="utf-8"), max_size=24)


@st.composite
def _streams(draw: st.DrawFn) -> bytes:
    """A realistic byte stream: commands in both forms, idle-style lines, garbage, errors."""
    pieces = draw(
        st.lists(
            st.one_of(
                st.builds(encode_command, _names, st.lists(_short_text, max_size=4)),
                st.sampled_from(
                    [b"PING\r\n", b"X 'open\n", b"\xff\n", b"\n", b"*x\n", b"a" * 40 + b"\n"]
                ),
            ),
            max_size=6,
        )
    )
    return b"".join(pieces)


@given(_streams())
@settings(max_examples=100, deadline=None)  # quadratic by design: every cut of the stream
def test_split_at_every_byte_gives_the_same_commands(data: bytes) -> None:
    whole = parse(data, max_line=64)
    assert parse_chunks([bytes([b]) for b in data], max_line=64) == whole
    for cut in range(len(data) + 1):
        assert parse_chunks([data[:cut], data[cut:]], max_line=64) == whole


@given(_streams(), st.lists(st.integers(min_value=0, max_value=400), max_size=10))
@settings(deadline=None)
def test_random_splits_give_the_same_commands(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({min(cut, len(data)) for cut in cuts})
    chunks = [data[a:b] for a, b in zip([0, *bounds], [*bounds, len(data)], strict=True)]
    assert parse_chunks(chunks, max_line=64) == parse(data, max_line=64)


@given(_names, st.lists(_line_text, max_size=6))
def test_encode_command_round_trips_line_text(name: str, args: list[str]) -> None:
    assert parse(encode_command(name, args)) == [Command(name, tuple(args))]


@given(_names, st.lists(_any_text, max_size=6))
def test_encode_command_round_trips_any_text(name: str, args: list[str]) -> None:
    assert parse(encode_command(name, args)) == [Command(name, tuple(args))]


@given(st.lists(st.text(alphabet="ab' ", max_size=8), max_size=5))
def test_encode_command_round_trips_quote_heavy_text(args: list[str]) -> None:
    assert parse(encode_command("X", args)) == [Command("X", tuple(args))]


@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=8))
def test_garbage_never_raises(data: bytes, cuts: list[int]) -> None:
    parser = Parser(max_line=32)
    for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)], strict=True):
        events = parser.feed(data[a:b])
        events += parser.flush_idle()
        assert all(isinstance(event, Command | ParseError) for event in events)


@given(st.integers(min_value=1, max_value=64), st.integers(min_value=0, max_value=80))
def test_limit_is_exact(max_line: int, size: int) -> None:
    events = parse(b"a" * size + b"\n", max_line=max_line)
    if size <= max_line:
        assert events == [Command("A" * size)]
    else:
        assert events == [ParseError(ErrorCode.LINE_TOO_LONG, close=True)]
