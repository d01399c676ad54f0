"""A tiny model for tests: numpy only, scores a frame by its mean brightness.

It proves that a model chosen by MODEL (with MODEL_PATH) is the one the
workers run, and shows the plug-in contract in a few lines. Each frame's
``crc`` (CRC-32 of the bytes the worker got) lets tests check that every
frame reached the model as the client sent it.
"""

import zlib

import cv2
import numpy as np

from jipjung_model.interface import Model, UnitOutcome, UnitResult, WindowAccumulator


class BrightnessModel(Model):
    name = "brightness"
    version = "1"

    def analyse(self, unit, context):
        context = dict(context or {})
        frames, scores = [], []
        for frame in unit.frames:
            image = cv2.imdecode(np.frombuffer(frame.data, np.uint8), cv2.IMREAD_GRAYSCALE)
            if image is None:
                frames.append({"analysed": False, "error": "undecodable"})
                continue
            score = round(float(image.mean()) / 255 * 100, 1)
            scores.append(score)
            frames.append({"analysed": True, "brightness": score, "crc": zlib.crc32(frame.data)})
        context["units"] = context.get("units", 0) + 1
        if scores:
            batch = UnitOutcome(round(sum(scores) / len(scores), 1), "focused", {"unitsSeen": context["units"]})
        else:
            batch = UnitOutcome(None, "unknown", {"unitsSeen": context["units"]})
        context = WindowAccumulator.add(context, batch, len(scores))
        window = None
        if unit.closes_window:
            window, context = WindowAccumulator.close(context)
        return UnitResult(frames, batch, window, context)
