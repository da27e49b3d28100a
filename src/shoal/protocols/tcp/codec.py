r"""The sans-IO codec of the TCP text protocol (Jobatator-compatible): bytes in, commands out.

No sockets here: the server feeds the bytes it reads and writes the bytes it is given, so the
whole protocol is testable without a network. The glue around it is a loop like::

    parser = Parser(max_line=DEFAULT_MAX_LINE)
    while data := await read():
        for item in parser.feed(data):
            if isinstance(item, ParseError):
                write(encode(item.reply))
                if item.close:
                    return close()
                continue
            failure = check(item, authenticated=..., group_selected=...)
            write(encode(ErrorReply(failure)) if failure else await handle(item))
        # Nothing arrived for IDLE_FLUSH_SECONDS while a partial line waits: the official CLI
        # sends `AUTH u p ` (trailing space, no newline) and waits for the answer.
        if parser.has_partial and idle_for(IDLE_FLUSH_SECONDS):
            ... same handling for parser.flush_idle() ...

Framing (seed-systems.md 1.3 and section 8, item 1). Upstream treated "one read of fewer than
1024 bytes" as one command and chopped its last byte, so pipelined commands were merged and a
command split over two reads was cut in two. shoal speaks lines instead:

- a command ends with `\n` or `\r\n`; several per packet and one over several packets work;
- a partial line that stays idle and ends with a space is a command without its final space
  (the CLI's form); a partial line without that space keeps waiting for its newline, so a slow
  sender never has its line cut;
- `*<n>` on a line of its own starts a Redis-style array of `n` arguments, each `$<len>` then
  exactly `len` bytes (binary-safe, so arguments may hold line breaks and `' `); upstream's
  variant ignored the lengths and leaked arguments of the previous command;
- arguments are split on single spaces with `'...'` grouping (see `_quoting`); the command
  name is upper-cased, arguments are kept as sent;
- a line longer than `max_line` bytes, or a malformed array, is a `ParseError` with
  `close=True`: the server sends its reply and closes, and the parser ignores further input;
- invalid UTF-8 and an unclosed `'` group are `ParseError`s with `close=False`: the server
  answers with the error and carries on with the next line.

The inverse, `encode_command(name, args)`, is what a Python client sends; it uses the quoted
line form when it can say the arguments and an array when it cannot, and always parses back
to the same `Command`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shoal.core.errors import InvalidArgument
from shoal.protocols.tcp._quoting import quote_part, split_parts
from shoal.protocols.tcp.commands import Command, ErrorCode
from shoal.protocols.tcp.replies import ErrorReply, encode, encode_all

__all__ = [
    "DEFAULT_MAX_LINE",
    "IDLE_FLUSH_SECONDS",
    "Event",
    "ParseError",
    "Parser",
    "encode",
    "encode_all",
    "encode_command",
]

#: The longest command line accepted, in bytes (terminator excluded).
DEFAULT_MAX_LINE = 1024 * 1024
#: How long a partial line must stay idle before `Parser.flush_idle` should be called.
IDLE_FLUSH_SECONDS = 0.05
_MAX_HEADER = 24  # `*<n>` and `$<len>` lines: digits enough for any sane count


@dataclass(frozen=True, slots=True)
class ParseError:
    """Input that is not a command; answer with `reply`, then close when `close` is set."""

    code: ErrorCode
    #: The framing is lost (or the limit was hit): the connection must be closed.
    close: bool
    #: For logs only; never sent (it may quote the client's bytes), never compared.
    detail: str = field(default="", compare=False)

    @property
    def reply(self) -> ErrorReply:
        """The `Err:` reply to send."""
        return ErrorReply(self.code)


#: What the parser yields.
Event = Command | ParseError


@dataclass(slots=True)
class _Array:
    """A Redis-style array being read."""

    remaining: int
    parts: list[str] = field(default_factory=list)
    #: Length of the bulk string awaited, or None while its `$<len>` header is awaited.
    need: int | None = None
    size: int = 0
    bad_utf8: bool = False


class Parser:
    """Turns the bytes of one connection into `Command`s and `ParseError`s, in order.

    Args:
        max_line: The longest line (or array, counting its arguments' bytes) accepted.
    """

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        if max_line < 1:
            raise InvalidArgument("max_line", "must be at least 1")
        self.max_line = max_line
        self._buf = bytearray()
        # Bytes at the start of the buffer already known to hold no newline.
        self._scanned = 0
        self._array: _Array | None = None
        self._closed = False

    @property
    def has_partial(self) -> bool:
        """Whether bytes of an unfinished command wait (the caller then arms its idle timer)."""
        return not self._closed and (bool(self._buf) or self._array is not None)

    @property
    def closed(self) -> bool:
        """Whether a fatal `ParseError` was returned; every later input is ignored."""
        return self._closed

    def feed(self, data: bytes) -> list[Event]:
        """Add received bytes; return the commands (and errors) they complete, in order."""
        if self._closed:
            return []
        self._buf += data
        out: list[Event] = []
        pos = 0
        while not self._closed:
            if self._array is not None:
                moved = self._step_array(pos, out)
            else:
                moved = self._step_line(pos, out)
            if moved is None:
                break
            pos = moved
            self._scanned = 0
        if self._closed:
            self._buf.clear()
        else:
            del self._buf[:pos]
        return out

    def flush_idle(self) -> list[Event]:
        """Take an idle partial line ending with a space as a command (the CLI's `AUTH u p `).

        Call it when `has_partial` stayed true for `IDLE_FLUSH_SECONDS` with no new bytes.
        A partial line not ending with a space, or a partial array, keeps waiting.
        """
        if self._closed or self._array is not None or not self._buf.endswith(b" "):
            return []
        line = bytes(self._buf[:-1])
        self._buf.clear()
        self._scanned = 0
        # No length check: `feed` refuses partials over max_line + 1 bytes, space included.
        return [_decode_line(line)]

    def _fatal(self, code: ErrorCode, detail: str) -> ParseError:
        self._closed = True
        self._array = None
        return ParseError(code, close=True, detail=detail)

    def _step_line(self, pos: int, out: list[Event]) -> int | None:
        """Consume one line from `pos`; None when no complete line is buffered."""
        end = self._buf.find(b"\n", pos + self._scanned)
        if end < 0:
            waiting = len(self._buf) - pos
            # One byte of slack: a maximal line may be followed by the `\r` of its `\r\n`.
            if waiting > self.max_line + 1:
                out.append(self._fatal(ErrorCode.LINE_TOO_LONG, f"over {self.max_line} bytes"))
            self._scanned = waiting
            return None
        line = bytes(self._buf[pos:end])
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.max_line:
            out.append(self._fatal(ErrorCode.LINE_TOO_LONG, f"{len(line)} bytes"))
        elif line[:1] == b"*" and line[1:].isdigit() and len(line) <= _MAX_HEADER:
            self._start_array(int(line[1:]), out)
        else:
            out.append(_decode_line(line))
        return end + 1

    def _start_array(self, count: int, out: list[Event]) -> None:
        if count < 1:
            out.append(self._fatal(ErrorCode.PROTOCOL_ERROR, "empty array"))
        elif count > self.max_line // 4:
            # Each argument takes at least `$0\n\n`: such a count cannot fit the limit.
            out.append(self._fatal(ErrorCode.LINE_TOO_LONG, f"{count} arguments"))
        else:
            self._array = _Array(remaining=count)

    def _step_array(self, pos: int, out: list[Event]) -> int | None:
        """Consume one header or one bulk string of the current array; None if incomplete."""
        array = self._array
        assert array is not None
        if array.need is None:
            return self._read_header(array, pos, out)
        buf = self._buf
        end = pos + array.need
        if len(buf) <= end:
            return None
        if buf[end] == 0x0A:  # a bare `\n` after the bytes is accepted, like for lines
            after = end + 1
        elif buf[end] == 0x0D:
            if len(buf) <= end + 1:
                return None
            if buf[end + 1] != 0x0A:
                out.append(self._fatal(ErrorCode.PROTOCOL_ERROR, "bulk string not terminated"))
                return None
            after = end + 2
        else:
            out.append(self._fatal(ErrorCode.PROTOCOL_ERROR, "bulk string longer than said"))
            return None
        try:
            array.parts.append(bytes(buf[pos:end]).decode("utf-8"))
        except UnicodeDecodeError:
            array.bad_utf8 = True
        array.need = None
        array.remaining -= 1
        if array.remaining == 0:
            self._array = None
            out.append(_array_command(array))
        return after

    def _read_header(self, array: _Array, pos: int, out: list[Event]) -> int | None:
        end = self._buf.find(b"\n", pos)
        if end < 0:
            if len(self._buf) - pos > _MAX_HEADER + 1:  # + 1: the `\r` of `\r\n`
                out.append(self._fatal(ErrorCode.PROTOCOL_ERROR, "header too long"))
            return None
        header = bytes(self._buf[pos:end]).removesuffix(b"\r")
        if not (header[:1] == b"$" and header[1:].isdigit() and len(header) <= _MAX_HEADER):
            out.append(self._fatal(ErrorCode.PROTOCOL_ERROR, "expected $<length>"))
            return None
        array.need = int(header[1:])
        array.size += array.need
        if array.size > self.max_line:
            out.append(self._fatal(ErrorCode.LINE_TOO_LONG, f"array over {self.max_line} bytes"))
            return None
        return end + 1


def _decode_line(line: bytes) -> Event:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ParseError(ErrorCode.INVALID_UTF8, close=False, detail=str(exc))
    parts = split_parts(text)
    if parts is None:
        return ParseError(ErrorCode.UNBALANCED_QUOTE, close=False)
    return Command(parts[0].upper(), tuple(parts[1:]))


def _array_command(array: _Array) -> Event:
    if array.bad_utf8:
        return ParseError(ErrorCode.INVALID_UTF8, close=False, detail="in an array")
    return Command(array.parts[0].upper(), tuple(array.parts[1:]))


def encode_command(name: str, args: Sequence[str] = ()) -> bytes:
    """The bytes a client sends for one command; `Parser` reads them back exactly.

    The readable line form (`PUBLISH q t '{"a": 1}'`) is used when the quoting can express
    every argument; otherwise (line breaks, `' ` inside a group) a Redis-style array.

    Args:
        name: The command name (sent upper-cased).
        args: The arguments, any text.

    Returns:
        The bytes, terminator included.

    Raises:
        InvalidArgument: The name is empty or holds a space, a quote or a line break.
    """
    name = name.upper()
    if not name or any(char in name for char in " '\r\n"):
        raise InvalidArgument("name", "a command name is one word")
    quoted = [quote_part(arg) for arg in args]
    if all(part is not None for part in quoted):
        return " ".join([name, *(part for part in quoted if part is not None)]).encode() + b"\n"
    chunks = [f"*{len(args) + 1}\r\n".encode()]
    for part in (name, *args):
        data = part.encode("utf-8")
        chunks.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(chunks)
