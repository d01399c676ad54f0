"""Frames the default model must not judge: the wrong size, undecodable,
frozen (a stuck camera), blurred. Uses the webcam-like captures in
test/fixtures/frames/ (640x480)."""

import os
import unittest

import cv2
import numpy as np

from jipjung_model.interface import FORMAT_JPEG, Frame, Unit, validate_result
from tests.frames import FIXTURES, encode, shared_model

FRAMES = os.path.join(FIXTURES, "frames")
model = shared_model


def read(name: str) -> bytes:
    with open(os.path.join(FRAMES, name), "rb") as f:
        return f.read()


FACES = [read("face.jpg")] + [read(f"face-{i}.jpg") for i in range(1, 5)]


def frame(seq: int, data: bytes, width: int = 640, height: int = 480) -> Frame:
    return Frame(seq, 1.7e12 + 200.0 * seq, FORMAT_JPEG, data, width, height)


def run(frames: list[Frame], context=None, closes_window: bool = False):
    unit = Unit(frames, closes_window=closes_window)
    result = model().analyse(unit, context)
    validate_result(unit, result)
    return result


def blurred_face() -> bytes:
    image = cv2.imdecode(np.frombuffer(FACES[0], np.uint8), cv2.IMREAD_COLOR)
    return encode(cv2.GaussianBlur(image, (0, 0), 8))


class DecodeTest(unittest.TestCase):
    def test_fixture_face_is_usable(self):
        """The baseline the other tests depart from."""
        f = run([frame(0, FACES[0])]).frames[0]
        self.assertTrue(f["analysed"])
        self.assertTrue(f["usable"], f.get("qualityFlags"))
        self.assertEqual(f["qualityFlags"], [])
        self.assertNotIn("error", f)

    def test_size_mismatch(self):
        for width, height in ((320, 240), (640, 478), (642, 480), (1280, 960)):
            f = run([frame(0, FACES[0], width, height)]).frames[0]
            self.assertFalse(f["analysed"], (width, height))
            self.assertFalse(f["usable"], (width, height))
            self.assertEqual(f["error"], "size_mismatch", (width, height))
            self.assertIsNone(f["score"])
            self.assertEqual(f["state"], "unknown")

    def test_unknown_size_is_not_checked(self):
        f = run([frame(0, FACES[0], 0, 0)]).frames[0]
        self.assertTrue(f["analysed"])
        self.assertNotIn("error", f)

    def test_garbage_undecodable(self):
        head = FACES[0][:600]  # a JPEG header with no scan data
        for data in (b"garbage bytes", bytes(range(256)) * 4, head):
            f = run([frame(0, data)]).frames[0]
            self.assertFalse(f["analysed"], data[:16])
            self.assertEqual(f["error"], "undecodable", data[:16])
            self.assertIsNone(f["score"])


class FrozenTest(unittest.TestCase):
    def test_same_bytes_twelve_times(self):
        result = run([frame(i, FACES[0]) for i in range(12)])
        frozen = ["frozen" in f["qualityFlags"] for f in result.frames]
        self.assertEqual(frozen, [False] * 10 + [True] * 2)
        self.assertEqual([f["usable"] for f in result.frames], [True] * 10 + [False] * 2)
        self.assertEqual(result.batch.signals["framesUsable"], 10)
        self.assertEqual(result.batch.signals["qualityFlags"], {"frozen": 2})

    def test_same_bytes_across_units(self):
        """The repeat count travels in the context from unit to unit."""
        context, flags = None, []
        for start, n in ((0, 5), (5, 5), (10, 2)):
            result = run([frame(start + i, FACES[0]) for i in range(n)], context)
            context = result.context
            flags += ["frozen" in f["qualityFlags"] for f in result.frames]
        self.assertEqual(flags, [False] * 10 + [True] * 2)

    def test_distinct_captures_never_frozen(self):
        result = run([frame(i, FACES[i % 5]) for i in range(12)])
        for f in result.frames:
            self.assertNotIn("frozen", f["qualityFlags"], f["seq"])
            self.assertTrue(f["usable"], (f["seq"], f["qualityFlags"]))

    def test_a_new_capture_ends_the_freeze(self):
        result = run([frame(i, FACES[0]) for i in range(11)] + [frame(11, FACES[1])])
        self.assertIn("frozen", result.frames[10]["qualityFlags"])
        self.assertNotIn("frozen", result.frames[11]["qualityFlags"])
        self.assertTrue(result.frames[11]["usable"])


class BlurTest(unittest.TestCase):
    def test_heavily_blurred_face(self):
        f = run([frame(0, blurred_face())]).frames[0]
        self.assertTrue(f["analysed"])
        self.assertIn("blurry", f["qualityFlags"])
        self.assertFalse(f["usable"])
        self.assertIsNone(f["score"])
        self.assertEqual(f["state"], "unknown")
        q = f["quality"]
        self.assertLess(q["blur"], model().options["minRelativeSharpness"] * q["contrast"] ** 2)

    def test_sharpness_judged_alike_in_dim_and_full_light(self):
        # Real faces at the web client's JPEG quality (70): sharp ones and
        # ones blurred by 1.5 px are judged in a dim room too, ones blurred
        # by 6 px are not, in either light (as the eval's clips). The
        # Laplacian variance alone falls with the light.
        from eval import people
        from eval.dataset import QUALITY
        from tests.frames import canvas_image
        chosen = people.subjects()[::10]
        self.assertGreater(len(chosen), 10)
        for s in chosen:
            for brightness in (1.0, 0.35):
                image = canvas_image(s.path, seed=1, scale=0.8, brightness=brightness)
                for sigma, blurry in ((0.0, False), (1.5, False), (6.0, True)):
                    shown = cv2.GaussianBlur(image, (0, 0), sigma) if sigma else image
                    f = run([frame(0, encode(shown, QUALITY))]).frames[0]
                    self.assertEqual("blurry" in f["qualityFlags"], blurry, (s.name, brightness, sigma, f["quality"]))


class UnusableUnitTest(unittest.TestCase):
    def test_only_unusable_frames(self):
        blurred = blurred_face()
        frames = [
            frame(0, blurred),
            frame(1, read("black.jpg")),
            frame(2, b"junk"),
            frame(3, FACES[0], 320, 240),
            frame(4, blurred),
        ]
        result = run(frames, closes_window=True)
        self.assertEqual([f["usable"] for f in result.frames], [False] * 5)
        self.assertEqual(result.batch.state, "unknown")
        self.assertIsNone(result.batch.score)
        self.assertEqual(result.batch.signals["framesUsable"], 0)
        self.assertEqual(result.window.state, "unknown")
        self.assertIsNone(result.window.score)


if __name__ == "__main__":
    unittest.main()
