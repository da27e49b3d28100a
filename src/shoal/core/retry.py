"""Retry policies: how long a failed attempt waits before the next one.

A policy travels with its job as a short text (``exponential:base=1,factor=2,cap=300,jitter=0.2``)
so that every store keeps it in one column and every language can read it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Literal

from shoal.core.errors import InvalidArgument

__all__ = ["MAX_RETRY_DELAY", "RetryPolicy"]

#: The longest wait before a retry, in seconds (about 31 years): a policy's delays stop there,
#: as a worker's own retry delay must.
MAX_RETRY_DELAY = 1e9

Kind = Literal["fixed", "exponential"]
_KINDS: tuple[Kind, ...] = ("fixed", "exponential")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delay before attempt n+1 after attempt n failed.

    `fixed` waits `base` seconds every time; `exponential` waits `base * factor**(n-1)`, capped at
    `cap`. `jitter` spreads each delay by up to that fraction either way, so that a burst of
    failures does not retry in lock step.
    """

    kind: Kind = "exponential"
    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: float = 0.1
    #: `encode()`'s text, made once: every enqueue stores its job's policy.
    _text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InvalidArgument(
                "backoff", f"unknown kind {self.kind!r}; use fixed or exponential"
            )
        if not all(map(math.isfinite, (self.base, self.factor, self.cap))):
            # a NaN run_at is never due, and NaN passes every comparison below
            raise InvalidArgument("backoff", "base, factor and cap must be finite numbers")
        if self.base < 0 or self.cap < 0:
            raise InvalidArgument("backoff", "base and cap must not be negative")
        if self.factor < 1:
            raise InvalidArgument("backoff", "factor must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise InvalidArgument("backoff", "jitter must be between 0 and 1")
        text = (
            f"{self.kind}:base={_text(self.base)},factor={_text(self.factor)},"
            f"cap={_text(self.cap)},jitter={_text(self.jitter)}"
        )
        object.__setattr__(self, "_text", text)

    @classmethod
    def fixed(cls, delay: float) -> RetryPolicy:
        """The same delay before every retry, without jitter."""
        return cls(kind="fixed", base=delay, cap=delay, jitter=0.0)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 for the first)."""
        ceiling = min(self.cap, MAX_RETRY_DELAY)
        steps = max(attempt - 1, 0)
        if self.kind == "fixed" or self.base == 0 or ceiling == 0:
            raw = self.base
        elif steps * math.log(self.factor) >= math.log(ceiling / self.base):
            raw = ceiling  # factor ** steps may be past the cap by far, or overflow a float
        else:
            raw = self.base * self.factor**steps
        raw = min(raw, ceiling)
        if self.jitter:
            spread = raw * self.jitter
            raw += (rng or random).uniform(-spread, spread)
        return max(raw, 0.0)

    def encode(self) -> str:
        """The policy as stored with a job."""
        return self._text

    @classmethod
    def parse(cls, text: str) -> RetryPolicy:
        """Read a policy written by `encode`; an empty text is the default policy."""
        if not text:
            return cls()
        kind, _, params = text.partition(":")
        values: dict[str, float] = {}
        for item in filter(None, params.split(",")):
            key, sep, value = item.partition("=")
            if not sep or key not in ("base", "factor", "cap", "jitter"):
                raise InvalidArgument("backoff", f"cannot read {item!r} in {text!r}")
            try:
                values[key] = float(value)
            except ValueError:
                raise InvalidArgument("backoff", f"{key} is not a number in {text!r}") from None
        if kind not in _KINDS:
            raise InvalidArgument("backoff", f"unknown kind {kind!r}; use fixed or exponential")
        return cls(kind=kind, **values)


def _text(number: float) -> str:
    """`number` in its shortest exact form: `:g` alone keeps 6 significant digits."""
    short = f"{number:g}"
    return short if float(short) == number else repr(float(number))
