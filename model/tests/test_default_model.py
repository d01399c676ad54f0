import json
import os
import unittest

import cv2

from jipjung_model.default_model import ConcentrationModel, ramp
from jipjung_model.interface import FORMAT_JPEG, Frame, Model, Unit, UnitOutcome, UnitResult, validate_result
from tests.frames import canvas, photo, shared_model

model = shared_model


def run(frames: list[bytes], closes_window: bool = False, context=None, first_seq: int = 0):
    unit = Unit(
        [Frame(first_seq + i, 1.7e12 + 200.0 * i, FORMAT_JPEG, d) for i, d in enumerate(frames)],
        closes_window=closes_window,
    )
    result = model().analyse(unit, context)
    validate_result(unit, result)  # raises on any contract breach
    # Everything that reaches the client or the next unit is plain JSON.
    json.dumps(result.frames)
    json.dumps(result.batch.signals)
    if result.window is not None:
        json.dumps(result.window.signals)
    json.dumps(result.context)
    return result


def one(data: bytes) -> dict:
    return run([data]).frames[0]


class FrameTest(unittest.TestCase):
    def test_astronaut_focused(self):
        f = one(canvas("astronaut"))
        self.assertTrue(f["analysed"])
        self.assertTrue(f["usable"])
        self.assertTrue(f["face"])
        self.assertEqual(f["faces"], 1)
        self.assertGreater(f["faceScore"], 0.75)
        self.assertLess(abs(f["yaw"]), 10)
        self.assertLess(abs(f["pitch"]), 10)
        self.assertLess(abs(f["roll"]), 10)
        self.assertEqual(f["state"], "focused")
        self.assertGreaterEqual(f["score"], 70)
        x, y, w, h = f["box"]
        self.assertTrue(0 <= x < x + w <= 1 and 0 <= y < y + h <= 1)
        self.assertTrue(0.08 < w < 0.3, f["box"])
        self.assertEqual(set(f["quality"]), {"brightness", "contrast", "blur"})
        self.assertNotIn("error", f)

    def test_astronaut_sizes_and_positions(self):
        for kw in (dict(scale=0.6), dict(scale=1.0), dict(dx=0.25, dy=0.15)):
            f = one(canvas("astronaut", **kw))
            self.assertEqual(f["state"], "focused", kw)
            self.assertGreaterEqual(f["score"], 70, kw)

    def test_roll_follows_rotation(self):
        """Roll is positive for a counter-clockwise turn of the head as seen
        in the image (cv2.getRotationMatrix2D's sense). The astronaut's own
        head is tilted by about -4 deg, so the applied rotation is compared
        with the change from the unrotated photo."""
        base = one(canvas("astronaut"))["roll"]
        self.assertLess(abs(base), 8)
        for angle in (-20, -10, 10, 20):
            f = one(canvas("astronaut", angle=angle))
            self.assertTrue(f["face"], angle)
            self.assertLess(abs(f["roll"] - base - angle), 5, (angle, f["roll"], base))
            self.assertLess(abs(f["roll"] - angle), 8, (angle, f["roll"]))
            self.assertEqual(f["state"], "focused", angle)

    def test_nobody_absent(self):
        for name in ("coffee", "brick"):
            f = one(canvas(name))
            self.assertTrue(f["analysed"], name)
            self.assertFalse(f["face"], name)
            self.assertEqual(f["faces"], 0, name)
            self.assertIsNone(f["box"], name)
            self.assertIsNone(f["yaw"], name)
            self.assertEqual(f["score"], 0, name)
            self.assertEqual(f["state"], "absent", name)

    def test_cat_not_focused(self):
        for scale in (0.6, 0.8, 1.0):
            f = one(canvas("chelsea", scale=scale))
            self.assertNotEqual(f["state"], "focused", scale)
            self.assertLess(f["score"], 50, scale)

    def test_rotated_faces_not_focused(self):
        # Upside down, on its side, and in between: never "looking at the screen".
        for angle in (180, 135, -135, 90, -90, 60):
            f = one(canvas("astronaut", angle=angle))
            self.assertNotEqual(f["state"], "focused", angle)
            self.assertLess(f["score"], 50, angle)

    def test_profile_not_focused(self):
        f = one(canvas("camera"))
        self.assertTrue(f["face"])
        self.assertGreater(abs(f["yaw"]), 30)
        self.assertEqual(f["state"], "distracted")
        # Mirroring the photo mirrors the yaw.
        mirrored = one(canvas(cv2.flip(photo("camera"), 1)))
        self.assertLess(f["yaw"] * mirrored["yaw"], 0)

    def test_garbage_undecodable(self):
        for data in (b"", b"garbage", b"\xff\xd8\xff" + os.urandom(500)):
            f = one(data)
            self.assertFalse(f["analysed"])
            self.assertEqual(f["error"], "undecodable")
            self.assertIsNone(f["score"])
            self.assertEqual(f["state"], "unknown")

    def test_dark_frame_unknown(self):
        f = one(canvas("astronaut", brightness=0.05))
        self.assertTrue(f["analysed"])
        self.assertFalse(f["usable"])
        self.assertEqual(f["state"], "unknown")
        self.assertIsNone(f["score"])
        result = run([canvas("astronaut", brightness=0.05)] * 2)
        self.assertEqual(result.batch.state, "unknown")
        self.assertIsNone(result.batch.score)

    def test_dim_frame_still_analysed(self):
        f = one(canvas("astronaut", brightness=0.35))
        self.assertTrue(f["usable"])
        self.assertEqual(f["state"], "focused")


class UnitTest(unittest.TestCase):
    def test_window_of_five(self):
        frames = [canvas("astronaut", dx=0.005 * i, seed=i) for i in range(5)]
        result = run(frames, closes_window=True)
        self.assertEqual([f["seq"] for f in result.frames], [0, 1, 2, 3, 4])
        self.assertIsInstance(result.window, UnitOutcome)
        self.assertEqual(result.window.state, "focused")
        self.assertGreaterEqual(result.window.score, 70)
        self.assertEqual(result.batch.state, "focused")
        self.assertGreaterEqual(result.batch.score, 70)
        s = result.batch.signals
        self.assertEqual(s["facePresent"], 1.0)
        self.assertEqual(s["faces"], 1)
        self.assertEqual(s["framesUsable"], 5)
        for key in ("yaw", "pitch", "roll"):
            self.assertIsInstance(s[key], float)
        self.assertNotIn("window", result.context or {})

    def test_window_accumulates_batches(self):
        face, empty = canvas("astronaut"), canvas("coffee")
        r1 = run([face] * 5)
        self.assertIsNone(r1.window)
        r2 = run([empty] * 5, context=r1.context, first_seq=5)
        self.assertEqual(r2.batch.state, "absent")
        self.assertEqual(r2.batch.score, 0)
        r3 = run([face] * 5, closes_window=True, context=r2.context, first_seq=10)
        self.assertEqual(r3.window.state, "focused")  # 10 of 15 frames
        self.assertAlmostEqual(r3.window.score, (r1.batch.score * 5 + r3.batch.score * 5) / 15, 0)

    def test_mixed_batch(self):
        face, empty = canvas("astronaut"), canvas("coffee")
        result = run([empty, empty, empty, face, face])
        self.assertEqual(result.batch.state, "absent")
        self.assertEqual(result.batch.signals["facePresent"], 0.4)
        result = run([face, face, face, empty, b"junk"])
        self.assertEqual(result.batch.state, "focused")
        self.assertEqual(result.batch.signals["framesUsable"], 4)
        self.assertEqual(result.batch.signals["facePresent"], 0.75)

    def test_all_undecodable(self):
        result = run([b"x", b"y"], closes_window=True)
        self.assertEqual(result.batch.state, "unknown")
        self.assertIsNone(result.batch.score)
        self.assertEqual(result.window.state, "unknown")
        self.assertIsNone(result.window.score)

    def test_tracking_across_units(self):
        frames = [canvas("astronaut", dx=0.01 * i, seed=i) for i in range(10)]
        r1 = run(frames[:5])
        self.assertIsNotNone(r1.context.get("track"))
        r2 = run(frames[5:], context=r1.context, first_seq=5)
        for f in r1.frames + r2.frames:
            self.assertEqual(f["state"], "focused")
        # A stale track (seq gap) is dropped, not followed blindly.
        r3 = run([canvas("coffee")], context=r2.context, first_seq=1000)
        self.assertEqual(r3.frames[0]["state"], "absent")
        self.assertIsNone(r3.context.get("track"))

    def test_bad_context_track_ignored(self):
        data = canvas("astronaut")
        for track in ("x", {"box": [float("nan"), 0, 1, 1], "seq": 0, "scanSeq": 0},
                      {"box": [0.1, 0.1, 0.2], "seq": 0, "scanSeq": 0}, {"seq": 0}):
            r = run([data], context={"track": track}, first_seq=1)
            self.assertEqual(r.frames[0]["state"], "focused", track)

    def test_name(self):
        self.assertEqual(ConcentrationModel.name, "facemesh-pose")


class RealFaceTest(unittest.TestCase):
    """Cases the real-face set found (npm run eval), one photo each."""

    FACE = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "faces", "london-smiling-011.jpg")

    def frames(self, n: int, first: int = 0, **kw) -> list[bytes]:
        return [canvas(self.FACE, seed=first + i, **kw) for i in range(n)]

    def session(self, frames: list[bytes]) -> list[dict]:
        context, out = None, []
        for start in range(0, len(frames), 5):
            result = run(frames[start:start + 5], context=context, first_seq=start)
            context = json.loads(json.dumps(result.context))
            out.extend(result.frames)
        return out

    def test_upside_down_is_present_and_never_focused(self):
        # BlazeFace scores this face 0.7-0.8 upside down and the mesh places
        # an upright face on it: the turned crop must give it away.
        entries = self.session(self.frames(10, angle=180.0))
        self.assertTrue(all(e["face"] for e in entries))
        self.assertTrue(all(e["posePlausible"] is False and e["roll"] == 180.0 for e in entries))
        self.assertTrue(all(e["state"] != "focused" for e in entries), [e["state"] for e in entries])

    def test_turned_upside_down_while_tracked(self):
        entries = self.session(self.frames(25) + self.frames(25, first=100, angle=180.0))
        self.assertTrue(all(e["state"] == "focused" for e in entries[:25]))
        # Found on the flip itself (it reads as a jump of the pose), then the
        # look-away onset (2 s).
        self.assertTrue(all(e["roll"] == 180.0 for e in entries[30:]))
        self.assertTrue(all(e["state"] == "distracted" for e in entries[40:]), [e["state"] for e in entries[25:]])
        self.assertIn("head-tilted", entries[-1]["reasons"])

    def test_closed_lids_the_image_reads_open_are_closed_by_the_iris(self):
        # This person's painted lids keep the eye region's contrast: the image
        # measure reads them 0.40/0.52 against 0.55 open. Its drop below 0.9 x
        # the calibrated open eyes asks the iris network, which places the lids.
        from eval import people
        subject = next(x for x in people.subjects() if x.name == "london-096")
        open_eyes, shut = people.frontal(subject), people.closed(subject)
        entries = self.session([open_eyes(i) for i in range(30)] + [shut(i) for i in range(15)])
        self.assertFalse(any("irisOpening" in e for e in entries[:30]))
        closed = entries[31:]
        self.assertTrue(all(e["irisOpening"] < 0.25 and e["eyesClosed"] for e in closed),
                        [(e.get("eyes"), e.get("irisOpening")) for e in closed])
        self.assertEqual(entries[-1]["state"], "drowsy")
        self.assertIn("eyes-closed", entries[-1]["reasons"])

    def test_dim_face_is_judged_not_flat(self):
        f = one(canvas(self.FACE, brightness=0.35))
        self.assertEqual(f["qualityFlags"], [])
        self.assertEqual(f["state"], "focused")


class StreamedUnitTest(unittest.TestCase):
    """A unit analysed whole and the same unit added frame by frame to an
    open unit give the same result."""

    @staticmethod
    def units() -> list[tuple[list[bytes], bool]]:
        face = RealFaceTest.FACE
        return [
            ([canvas(face, seed=i) for i in range(5)], False),
            ([canvas(face, seed=5 + i, dx=0.01 * i) for i in range(4)] + [b"junk"], False),
            ([canvas("coffee", seed=i) for i in range(3)] + [canvas("astronaut", seed=3)], True),
            ([canvas(face, angle=180.0, seed=i) for i in range(5)], False),
            ([], True),
        ]

    def test_open_add_close_is_analyse(self):
        m = model()
        whole_context = streamed_context = None
        seq = 0
        for images, closes_window in self.units():
            frames = [Frame(seq + i, 1.7e12 + 200.0 * (seq + i), FORMAT_JPEG, d) for i, d in enumerate(images)]
            seq += len(images)
            whole = m.analyse(Unit(frames, closes_window), json.loads(json.dumps(whole_context)))
            opened = m.open(json.loads(json.dumps(streamed_context)), 5, 50, 5.0)
            for frame in frames:
                opened.add(frame)
            streamed = opened.close(closes_window)
            self.assertEqual(len(streamed.frames), len(frames))
            self.assertEqual(streamed.frames, whole.frames)
            self.assertEqual(streamed.batch, whole.batch)
            self.assertEqual(streamed.window, whole.window)
            self.assertEqual(streamed.context, whole.context)
            self.assertEqual(whole.window is not None, closes_window)
            whole_context, streamed_context = whole.context, streamed.context
        self.assertIsNotNone(whole_context.get("temporal"))


class CountingModel(Model):
    """A model with only ``analyse``, whose result shows everything it was given."""

    name = "counting"

    def analyse(self, unit: Unit, context: dict | None) -> UnitResult:
        n = (context or {}).get("n", 0) + len(unit.frames)
        signals = {"seqs": [f.seq for f in unit.frames], "sizes": [len(f.data) for f in unit.frames],
                   "batchFrames": unit.batch_frames, "windowFrames": unit.window_frames, "fps": unit.fps}
        window = UnitOutcome(float(n), "focused", {"closes": True}) if unit.closes_window else None
        return UnitResult([{"analysed": True, "seq": f.seq} for f in unit.frames],
                          UnitOutcome(float(len(unit.frames)), "focused", signals), window, {"n": n})


class BufferedUnitTest(unittest.TestCase):
    def test_default_open_keeps_the_frames_for_analyse(self):
        m = CountingModel()
        frames = [Frame(10 + i, 1.7e12 + 200.0 * i, FORMAT_JPEG, b"x" * (i + 1)) for i in range(3)]
        for closes_window in (False, True):
            whole = m.analyse(Unit(frames, closes_window, 3, 30, 2.5), {"n": 4})
            opened = m.open({"n": 4}, 3, 30, 2.5)
            for frame in frames:
                opened.add(frame)
            streamed = opened.close(closes_window)
            self.assertEqual(streamed, whole)
            self.assertEqual(streamed.batch.signals["seqs"], [10, 11, 12])
            self.assertEqual(streamed.context, {"n": 7})
            self.assertEqual(streamed.window is not None, closes_window)
        empty = m.open(None, 3, 30, 2.5).close(True)
        self.assertEqual(empty.frames, [])
        self.assertEqual(empty.window, UnitOutcome(0.0, "focused", {"closes": True}))


class GeometryTest(unittest.TestCase):
    def test_ramp(self):
        self.assertEqual(ramp(5, 15, 45), 1.0)
        self.assertEqual(ramp(50, 15, 45), 0.0)
        self.assertAlmostEqual(ramp(30, 15, 45), 0.5)


if __name__ == "__main__":
    unittest.main()
