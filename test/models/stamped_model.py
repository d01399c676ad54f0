"""The default model, each frame's result stamped with when its work was done.

``workedAt`` (ms since the epoch, the machine's clock) is set as ``add``
returns, so a test can tell whether a worker did a frame's work as the frame
arrived or only once its unit was complete. Everything else is the default
model's own result.
"""

import time

from jipjung_model.default_model import ConcentrationModel
from jipjung_model.interface import OpenUnit


class StampedUnit(OpenUnit):
    def __init__(self, inner):
        self.inner = inner
        self.stamps = []

    def add(self, frame):
        self.inner.add(frame)
        self.stamps.append(round(time.time() * 1000, 1))

    def close(self, closes_window):
        result = self.inner.close(closes_window)
        for entry, stamp in zip(result.frames, self.stamps):
            entry["workedAt"] = stamp
        return result


class StampedModel(ConcentrationModel):
    def open(self, context, batch_frames=5, window_frames=50, fps=5.0):
        return StampedUnit(super().open(context, batch_frames, window_frames, fps))
