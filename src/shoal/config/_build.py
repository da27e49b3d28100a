from __future__ import annotations

import difflib
import math
import re
import typing
from collections.abc import Mapping
from dataclasses import fields
from types import UnionType
from typing import Any

from shoal.core.errors import ConfigError, InvalidArgument

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def _unknown(what: str, name: str, choices: typing.Iterable[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown {what} {name!r} in {where}{hint}")


def _convert(key: str, hint: Any, value: object, where: str) -> object:
    """`value` as the field's type; text (from the environment) is parsed."""
    bad = ConfigError(f"{key} (from {where}): cannot use {value!r}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false"):
            return value.lower() in ("1", "true", "yes", "on")
        raise bad
    if hint is int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if hint is float:
        if isinstance(value, str):
            match = _DURATION.match(value)
            if match is None:
                raise bad
            value = float(match.group(1)) * _UNITS[match.group(2)]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{key} (from {where}): must be a finite number >= 0")
        return float(value)
    if isinstance(value, str):  # every other field is text
        return value
    raise bad


def _build(cls: type, key: str, raw: Mapping[str, object], origin: Mapping[str, str]) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    values = {}
    for name, value in raw.items():
        path = f"{key}.{name}"
        if name not in names:
            raise _unknown("key", path, [f"{key}.{n}" for n in names], origin.get(path, "?"))
        hint = hints[name]
        if isinstance(hint, UnionType):  # `X | None`: only None-able through the default
            hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        values[name] = _convert(path, hint, value, origin.get(path, "?"))
    try:
        return cls(**values)
    except InvalidArgument as exc:
        if exc.field not in names:
            raise ConfigError(f"{key}: {exc.message}") from exc
        # The section checked one of its own values (`Limits`): name it as the other checks do
        path = f"{key}.{exc.field}"
        reason = exc.message.partition(": ")[2]
        raise ConfigError(f"{path} (from {origin.get(path, 'default')}): {reason}") from exc
