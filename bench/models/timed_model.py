"""Wraps any model and reports its time on each unit in the batch signals.

The benchmark needs each unit's model time at the client, to subtract it from
the end-to-end latency of that same unit ("added latency"). The worker
measures it already (``modelMs`` in RESULT) but the server does not pass it
on, so this wrapper adds ``benchModelMs`` (ms, the time ``analyse`` of the
wrapped model took) to ``batch.signals``, and ``benchModelStart`` (the wall
clock when it began, ms since the epoch), which splits the rest into the
way to the worker and the way back (the bench runs on the same machine, so
the clocks are one). Nothing else changes: the wrapped
model's name, version, frames, scores and context go through as they are.

Options (MODEL_OPTIONS): ``{"model": "package.module:ClassName",
"options": {...}}``, the wrapped model and its own options.
"""

import time

from jipjung_model.interface import Model, UnitOutcome
from jipjung_model.worker import load_model


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
        elapsed_ms = (time.perf_counter() - started) * 1000
        batch = result.batch
        if isinstance(batch, UnitOutcome) and isinstance(batch.signals, dict):
            batch.signals = {**batch.signals, "benchModelMs": round(elapsed_ms, 3), "benchModelStart": round(started_at * 1000, 3)}
        return result
