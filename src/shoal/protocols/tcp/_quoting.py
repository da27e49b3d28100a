"""Jobatator's `'...'` argument grouping, with its crashes and silent losses fixed.

Upstream (`parse_command.go`) splits a line on single spaces; a token that starts and ends
with `'` is one argument without them; a token that starts with `'` opens a group that runs
until a token that ends with `'`, the tokens joined with single spaces. Kept as is. Fixed:

- a lone `'` token crashed the process (slice out of range): here it opens a group with an
  empty first word, or closes the open group with an empty last word, so `' a'` is " a";
- a token starting with `'` inside a group restarted the group, dropping what it held: here
  it is ordinary content (it closes the group if it also ends with `'`);
- a token ending with `'` outside any group was glued to the previous group's stale text:
  here it is an ordinary argument, kept as sent;
- a group never closed was silently dropped with its words: here it is an error (None).
"""

from __future__ import annotations

_QUOTE = "'"


def split_parts(line: str) -> list[str] | None:
    """Split a command line into parts; None when a `'` group is never closed."""
    if _QUOTE not in line:
        return line.split(" ")  # the common case, at C speed
    parts: list[str] = []
    group: list[str] | None = None
    for token in line.split(" "):
        if group is None:
            if len(token) >= 2 and token[0] == _QUOTE and token[-1] == _QUOTE:
                parts.append(token[1:-1])
            elif token[:1] == _QUOTE:
                group = [token[1:]]
            else:
                parts.append(token)
        elif token[-1:] == _QUOTE:
            group.append(token[:-1])
            parts.append(" ".join(group))
            group = None
        else:
            group.append(token)
    return None if group is not None else parts


def quote_part(part: str) -> str | None:
    """The token(s) that parse back to exactly `part`, or None when the syntax cannot say it.

    It cannot say a line break, nor a group whose inner word ends with `'` (`a' b`): such
    parts go in a Redis-style array instead (see `codec.encode_command`).
    """
    if "\n" in part or "\r" in part:
        return None
    if part and " " not in part and not part.startswith(_QUOTE):
        return part
    quoted = _QUOTE + part + _QUOTE
    # Grouping has no escapes; checking the parse is simpler and surer than predicting it.
    return quoted if split_parts(quoted) == [part] else None
