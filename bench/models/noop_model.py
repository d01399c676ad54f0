"""A model that does no work, for measuring the server and the IPC alone.

Every frame is reported analysed without being decoded, and every unit gets
the same score, so what the benchmark measures with it is the cost of
everything around a model: WebSocket, frame checks, units, IPC, results.
"""

from jipjung_model.interface import Model, UnitOutcome, UnitResult


class NoopModel(Model):
    name = "noop"
    version = "1"

    def analyse(self, unit, context):
        frames = [{"analysed": True} for _ in unit.frames]
        batch = UnitOutcome(100.0, "focused", {}) if frames else UnitOutcome(None, "unknown", {})
        window = UnitOutcome(100.0, "focused", {}) if unit.closes_window else None
        return UnitResult(frames, batch, window, None)
