"""Wraps any model and reports its time on each unit in the batch signals.

The benchmark needs the model time that stands between a unit's last frame
and its result, to subtract it from the end-to-end latency of that same
unit ("added latency"). The worker measures model time already (``modelMs``
in RESULT) but the server does not pass it on, so this wrapper adds
``benchModelMs`` to ``batch.signals``: for a unit sent frame by frame, the
time of its last frame's ``add`` and of ``close`` (the earlier frames' work
was done while later frames were on their way); for a whole unit, the time
of ``analyse``. ``benchModelStart`` (wall clock, ms since the epoch) is when
that work began, which splits the rest into the way to the worker and the
way back (the bench runs on the same machine, so the clocks are one).
Nothing else changes: the wrapped model's name, version, frames, scores
and context go through as they are.

Options (MODEL_OPTIONS): ``{"model": "package.module:ClassName",
"options": {...}}``, the wrapped model and its own options.
"""

import time

from jipjung_model.interface import Model, UnitOutcome
from jipjung_model.worker import load_model

try:
    from jipjung_model.interface import OpenUnit
except ImportError:  # the model package of a checkout from before units were sent frame by frame (--server-root)
    OpenUnit = object


def _stamp(result, started_at, elapsed_ms):
    batch = result.batch
    if isinstance(batch, UnitOutcome) and isinstance(batch.signals, dict):
        batch.signals = {**batch.signals, "benchModelMs": round(elapsed_ms, 3), "benchModelStart": round(started_at * 1000, 3)}
    return result


class TimedUnit(OpenUnit):
    def __init__(self, inner):
        self.inner = inner
        self.last_at = None
        self.last_ms = 0.0

    def add(self, frame):
        self.last_at = time.time()
        started = time.perf_counter()
        self.inner.add(frame)
        self.last_ms = (time.perf_counter() - started) * 1000

    def close(self, closes_window):
        started_at = time.time()
        started = time.perf_counter()
        result = self.inner.close(closes_window)
        elapsed_ms = (time.perf_counter() - started) * 1000
        return _stamp(result, self.last_at or started_at, self.last_ms + elapsed_ms)


class TimedModel(Model):
    name = "timed"
    version = "0"

    def load(self, options):
        self.inner = load_model(options["model"])
        self.inner.load(options.get("options") or {})
        self.name = getattr(self.inner, "name", type(self.inner).__name__)
        self.version = str(getattr(self.inner, "version", "0"))

    def analyse(self, unit, context):
        started_at = time.time()
        started = time.perf_counter()
        result = self.inner.analyse(unit, context)
        return _stamp(result, started_at, (time.perf_counter() - started) * 1000)

    def open(self, context, batch_frames=5, window_frames=50, fps=5.0):
        return TimedUnit(self.inner.open(context, batch_frames, window_frames, fps))
