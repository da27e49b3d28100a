"""Payloads: how a call's arguments and a task's result become bytes, and typed values again.

A payload is ``{"args": [...], "kwargs": {...}}`` written by a `Serializer` (JSON by default).
JSON loses types (a datetime arrives as text), so the worker converts every argument back to the
annotation of its parameter with pydantic, and the caller does the same with the return value.
A value that cannot be converted names its parameter in an `InvalidArgument`.
"""

from __future__ import annotations

import inspect
import json
import pickle
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import pydantic
import pydantic_core

from shoal.core.errors import InvalidArgument

__all__ = ["JsonSerializer", "PickleSerializer", "Serializer", "Signature"]

_EMPTY = inspect.Parameter.empty


class Serializer(Protocol):
    """Turns plain values into bytes and back; `content_type` travels with each job."""

    content_type: str

    def dumps(self, value: object) -> bytes:
        """The bytes of `value`; raise `TypeError` or `ValueError` for what it cannot write."""
        ...

    def loads(self, data: bytes) -> object:
        """The value written by `dumps`."""
        ...


class JsonSerializer:
    """JSON, readable by workers in any language; dataclasses, pydantic models, datetimes,
    UUIDs, decimals and enums are written as their JSON form.
    """

    content_type = "application/json"

    def dumps(self, value: object) -> bytes:
        """Compact JSON; raise `ValueError` for a value with no JSON form."""
        try:
            return pydantic_core.to_json(value)
        except pydantic_core.PydanticSerializationError as exc:
            raise ValueError(str(exc)) from exc

    def loads(self, data: bytes) -> object:
        """The decoded JSON."""
        return json.loads(data)


class PickleSerializer:
    """Python's pickle: any picklable object, for Python-only deployments that trust their
    producers (unpickling runs code chosen by whoever wrote the bytes).
    """

    content_type = "application/x-python-pickle"

    def dumps(self, value: object) -> bytes:
        """The pickle of `value`."""
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> object:
        """The unpickled value."""
        return pickle.loads(data)  # the trust model is in the class docstring


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations; one that cannot be resolved (a local class) counts as `Any`."""
    try:
        return typing.get_type_hints(fn)
    except Exception:  # any failure to evaluate: resolve them one by one
        pass
    hints: dict[str, Any] = {}
    namespace = getattr(fn, "__globals__", {})
    for name, annotation in getattr(fn, "__annotations__", {}).items():
        try:
            hints[name] = eval(annotation, namespace) if isinstance(annotation, str) else annotation
        except Exception:  # unresolvable: no conversion for this one
            hints[name] = Any
    return hints


@dataclass(frozen=True)
class Signature:
    """How to encode calls of one function and convert its arguments and result."""

    fn: Callable[..., Any]
    signature: inspect.Signature = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "signature", inspect.signature(self.fn))

    @cached_property
    def _plain_arity(self) -> int | None:
        """How many parameters the function has when all are plain positional ones without
        defaults (a call passing exactly that many binds to itself); else None.
        """
        parameters = self.signature.parameters.values()
        plain = all(
            p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.default is _EMPTY
            for p in parameters
        )
        return len(parameters) if plain else None

    @cached_property
    def _adapters(self) -> dict[str, tuple[str, pydantic.TypeAdapter[Any]]]:
        """Per parameter (and `return`): the annotation's name and its converter."""
        hints = _hints(self.fn)
        return {
            name: (_type_name(hint), pydantic.TypeAdapter(hint))
            for name, hint in hints.items()
            if hint is not Any and hint is not _EMPTY
        }

    def encode(
        self, args: tuple[object, ...], kwargs: Mapping[str, object], serializer: Serializer
    ) -> bytes:
        """The payload of a call; `InvalidArgument` if the call does not fit the signature."""
        if not kwargs and len(args) == self._plain_arity:
            data = {"args": list(args), "kwargs": {}}  # what binding would give, at a tenth
        else:
            try:
                bound = self.signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise InvalidArgument("args", str(exc)) from None
            data = {"args": list(bound.args), "kwargs": bound.kwargs}
        try:
            return serializer.dumps(data)
        except (TypeError, ValueError, pickle.PicklingError) as exc:
            raise InvalidArgument("args", f"cannot serialize: {exc}") from exc

    def decode(
        self, payload: bytes, serializer: Serializer
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The typed arguments of a payload; `InvalidArgument` names what does not fit."""
        try:
            data = serializer.loads(payload)
        except Exception as exc:  # any decoding error means a bad payload
            raise InvalidArgument("payload", f"cannot decode: {exc}") from exc
        if isinstance(data, list):  # a bare list of positional arguments (other SDKs)
            data = {"args": data, "kwargs": {}}
        if not (
            isinstance(data, dict)
            and isinstance(data.get("args", []), list)
            and isinstance(data.get("kwargs", {}), dict)
        ):
            raise InvalidArgument("payload", 'expected {"args": [...], "kwargs": {...}}')
        try:
            bound = self.signature.bind(*data.get("args", []), **data.get("kwargs", {}))
        except TypeError as exc:
            raise InvalidArgument("args", str(exc)) from None
        for name, value in bound.arguments.items():
            bound.arguments[name] = self._convert(name, value)
        return bound.args, bound.kwargs

    def _convert(self, name: str, value: Any) -> Any:
        if name not in self._adapters:
            return value
        type_name, adapter = self._adapters[name]
        kind = self.signature.parameters[name].kind
        try:
            if kind is inspect.Parameter.VAR_POSITIONAL:
                return tuple(adapter.validate_python(item) for item in value)
            if kind is inspect.Parameter.VAR_KEYWORD:
                return {key: adapter.validate_python(item) for key, item in value.items()}
            return adapter.validate_python(value)
        except pydantic.ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            detail = f" at {where}" if where else ""
            message = f"cannot convert {value!r:.80} to {type_name}{detail}: {problem['msg']}"
            raise InvalidArgument(name, message) from None

    def encode_result(self, value: object, serializer: Serializer) -> bytes:
        """The bytes of a return value; `InvalidArgument` if it cannot be serialized."""
        try:
            return serializer.dumps(value)
        except (TypeError, ValueError, pickle.PicklingError) as exc:
            raise InvalidArgument("result", f"cannot serialize: {exc}") from exc

    def decode_result(self, data: bytes | None, serializer: Serializer) -> Any:
        """The typed return value from its bytes (None stays None)."""
        if data is None:
            return None
        value = serializer.loads(data)
        if "return" not in self._adapters or value is None:
            return value
        try:
            return self._adapters["return"][1].validate_python(value)
        except pydantic.ValidationError as exc:
            raise InvalidArgument("result", str(exc)) from None


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
