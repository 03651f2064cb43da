"""Argument types that check a number's range when the command line is parsed, so a bad
value is an error naming the option (argparse prefixes ``argument --NAME:``) instead of
a crash deep in training. The same checks apply to recipe values (:func:`check_value`)."""

from __future__ import annotations

import argparse
import math

MIN_IMAGE_SIZE = 8  # the smallest crop the models (stride 8 in the tiny CNN) and the ops handle
SEED_MAX = 2**63 - 1  # torch.manual_seed takes a 64-bit value; numpy's SeedSequence a non-negative one


class _Number:
    """``int``/``float`` parser with bounds; ``lo_open``/``hi_open`` exclude the bound."""

    def __init__(self, kind, lo=None, hi=None, lo_open=False, hi_open=False, what=""):
        self.kind, self.lo, self.hi, self.lo_open, self.hi_open, self.what = kind, lo, hi, lo_open, hi_open, what

    def _fmt(self, v) -> str:
        return str(v) if self.kind is int else f"{v:g}"  # :g would round a large integer

    def describe(self) -> str:
        lo, hi = (None if v is None else self._fmt(v) for v in (self.lo, self.hi))
        if lo is not None and hi is not None:
            return f"in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
        if lo is not None:
            return f"{'>' if self.lo_open else '>='} {lo}"
        return f"{'<' if self.hi_open else '<='} {hi}"

    def check(self, v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (self.kind is int and not float(v).is_integer()):
            raise ValueError(f"must be {'an integer' if self.kind is int else 'a number'}, got {v!r}")
        v = self.kind(v)
        if self.kind is float and not math.isfinite(v):
            raise ValueError(f"must be a finite number, got {v!r}")
        low = self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo)
        high = self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi)
        if low or high:
            raise ValueError(f"must be {self.describe()}{self.what}, got {self._fmt(v)}")
        return v

    def __call__(self, text: str):
        try:
            v = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be {'an integer' if self.kind is int else 'a number'}, got {text!r}") from None
        try:
            return self.check(v)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None


def count(lo: int = 1, what: str = "") -> _Number:
    """An integer >= ``lo``."""
    return _Number(int, lo, what=what)


def seed() -> _Number:
    """A random seed: an integer in [0, 2**63 - 1]."""
    return _Number(int, 0, SEED_MAX)


def real(lo=None, hi=None, lo_open=False, hi_open=False, what: str = "") -> _Number:
    """A finite float within the bounds."""
    return _Number(float, lo, hi, lo_open, hi_open, what)


def milestones(text: str) -> list[float]:
    """``30,60,80`` -> [30.0, 60.0, 80.0] (non-negative epochs)."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated epochs, e.g. 30,60,80; got {text!r}") from None
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"epochs must be >= 0, got {text!r}")
    return values


def check_value(parser: argparse.ArgumentParser, dest: str, value, source: str):
    """Apply the check of ``parser``'s option ``dest`` to a value from ``source`` (a recipe);
    SystemExit naming both when it fails."""
    for action in parser._actions:
        if action.dest == dest and isinstance(action.type, _Number):
            try:
                return action.type.check(value)
            except ValueError as err:
                raise SystemExit(f"error: {source}: {dest} {err}") from None
    return value
