"""States over durations, calibration and the score (temporal.py), frame by
frame on synthetic observations: no images, so these run in milliseconds."""

import json
import unittest

from jipjung_model.temporal import DEFAULTS, Tracker, fresh, majority, restore

FRONT = {"plausible": True, "yaw": 0.0, "pitch": 0.0, "roll": 0.0}
AWAY = {"plausible": True, "yaw": 60.0, "pitch": 0.0, "roll": 0.0}
OPEN, CLOSED = 0.6, 0.2


class Session:
    def __init__(self, **options):
        self.state = fresh()
        self.options = {**DEFAULTS, **options}
        self.seq = 0

    def feed(self, n, face=True, pose=FRONT, eyes=OPEN, centre=1.0):
        out = []
        for _ in range(n):
            # The state round-trips through JSON between units, as in the server.
            self.state = restore(json.loads(json.dumps(self.state)))
            t = Tracker(self.options, 5.0, self.state)
            out.append(t.step(self.seq, face, pose if face else None, centre, eyes))
            self.seq += 1
        return out

    def states(self, steps):
        return [s["state"] for s in steps]


class DurationTest(unittest.TestCase):
    def test_first_frame_sets_the_state(self):
        self.assertEqual(Session().feed(1, pose=AWAY)[0]["state"], "distracted")
        self.assertEqual(Session().feed(1, face=False)[0]["state"], "absent")
        self.assertEqual(Session().feed(1)[0]["state"], "focused")

    def test_look_away_after_two_seconds(self):
        s = Session()
        s.feed(10)
        away = s.feed(15, pose=AWAY)
        self.assertEqual(s.states(away), ["focused"] * 9 + ["distracted"] * 6)
        # The glance is held at the last focused attention: no score lost.
        self.assertTrue(all(x["score"] == 100 for x in away[:9]))
        self.assertEqual(away[-1]["score"], 0)
        back = s.feed(3)
        self.assertEqual(s.states(back), ["distracted", "focused", "focused"])

    def test_one_second_glance_keeps_batches_focused(self):
        s = Session()
        s.feed(10)
        steps = s.feed(5, pose=AWAY) + s.feed(5)
        self.assertEqual(majority(s.states(steps[:5])), "focused")
        self.assertTrue(all(x["state"] == "focused" for x in steps))

    def test_blinks_cost_nothing(self):
        s = Session()
        steps = []
        for _ in range(8):
            steps += s.feed(9) + s.feed(1, eyes=CLOSED)  # 30 blinks a minute
        self.assertTrue(all(x["state"] == "focused" and x["score"] == 100 for x in steps))

    def test_long_closure_is_drowsy(self):
        s = Session()
        s.feed(10)
        steps = s.feed(6, eyes=CLOSED)
        self.assertEqual(s.states(steps), ["focused"] * 4 + ["drowsy"] * 2)
        self.assertEqual(steps[-1]["score"], 0)

    def test_perclos_is_drowsy(self):
        s = Session()
        steps = []
        for _ in range(6):
            steps += s.feed(6) + s.feed(4, eyes=CLOSED)  # 0.8-s closures, PERCLOS 0.4
        self.assertNotIn("drowsy", s.states(steps[:24]))  # PERCLOS needs 5 s of eyes
        self.assertIn("drowsy", s.states(steps[-10:]))
        self.assertLessEqual(max(x["score"] for x in steps[-10:] if x["state"] == "drowsy"), 50)


class ReasonTest(unittest.TestCase):
    def test_what_lowered_the_score_is_named(self):
        s = Session()
        s.feed(25)
        self.assertEqual(s.feed(1)[0]["reasons"], [])
        # A glance shorter than the onset is held: nothing lowered the score.
        glance = s.feed(5, pose=AWAY)
        self.assertEqual([x["reasons"] for x in glance], [[]] * 5)
        away = s.feed(10, pose=AWAY)
        self.assertEqual(away[-1]["reasons"], ["head-turned"])
        self.assertEqual(s.feed(1, pose={**FRONT, "pitch": -40.0})[0]["reasons"], ["head-up"])
        self.assertEqual(s.feed(1, pose={**FRONT, "plausible": False, "roll": 90.0})[0]["reasons"], ["head-tilted"])
        s.feed(5)
        self.assertEqual(s.feed(1, centre=0.5)[0]["reasons"], ["off-centre"])
        self.assertEqual(s.feed(1, face=False)[0]["reasons"], ["no-face"])

    def test_blink_is_no_reason_and_a_closure_is(self):
        s = Session()
        s.feed(25)
        self.assertEqual(s.feed(1, eyes=CLOSED)[0]["reasons"], [])
        s.feed(5)
        closed = s.feed(6, eyes=CLOSED)
        self.assertEqual(closed[-1]["reasons"], ["eyes-closed"])


class CalibrationTest(unittest.TestCase):
    def test_camera_beside_the_screen(self):
        side = {"plausible": True, "yaw": 30.0, "pitch": 5.0, "roll": 0.0}
        s = Session()
        first = s.feed(25, pose=side)
        self.assertTrue(all(x["state"] == "focused" or x["target"] != "focused" for x in first))
        t = Tracker(s.options, 5.0, s.state)
        self.assertFalse(t.calibrating)
        self.assertEqual(t.calibration_signal()["yaw0"], 30.0)
        later = s.feed(15, pose=side)
        self.assertTrue(all(x["state"] == "focused" and x["score"] == 100 for x in later))

    def test_narrow_eyes(self):
        s = Session()
        s.feed(25, eyes=0.22)  # below the population threshold (0.27)...
        later = s.feed(15, eyes=0.22)[2:]  # back to focused after 0.4 s
        self.assertTrue(all(x["state"] == "focused" for x in later))  # ...but the student's normal
        self.assertEqual(s.states(s.feed(6, eyes=0.08))[-1], "drowsy")

    def test_reported_while_running(self):
        s = Session()
        s.feed(3)
        signal = Tracker(s.options, 5.0, s.state).calibration_signal()
        # The first frame has no previous one to be steady against.
        self.assertEqual(signal, {"running": True, "progress": 0.12, "samples": 2})
        s.feed(22)
        signal = Tracker(s.options, 5.0, s.state).calibration_signal()
        self.assertEqual(signal, {"running": False, "progress": 1.0, "yaw0": 0.0, "pitch0": 0.0, "eyes0": OPEN})

    def test_looking_away_is_not_learned(self):
        s = Session()
        s.feed(25, pose=AWAY)
        self.assertTrue(Tracker(s.options, 5.0, s.state).calibrating)

    def test_biased_estimate_is_learned_and_changes_still_read(self):
        # A face whose pose reads 25 deg up while looking at the screen: its
        # own neutral, whatever the population's; then lowering the head by
        # 40 deg from there reads as looking away.
        biased = {"plausible": True, "yaw": 4.0, "pitch": -25.0, "roll": 2.0}
        s = Session()
        first = s.feed(25, pose=biased)
        t = Tracker(s.options, 5.0, s.state)
        self.assertFalse(t.calibrating)
        self.assertEqual((t.calibration_signal()["yaw0"], t.calibration_signal()["pitch0"]), (4.0, -25.0))
        self.assertTrue(all(x["state"] == "focused" for x in first))
        self.assertTrue(all(x["score"] == 100 for x in s.feed(10, pose=biased)))
        lowered = s.feed(15, pose={**biased, "pitch": 15.0})
        self.assertEqual(lowered[-1]["state"], "distracted")
        self.assertIn("head-down", lowered[-1]["reasons"])

    def test_unsteady_frames_are_not_samples(self):
        s = Session()
        wobbling = [{**FRONT, "yaw": 10.0 * (i % 2)} for i in range(25)]
        for pose in wobbling:
            s.feed(1, pose=pose)
        self.assertEqual(Tracker(s.options, 5.0, s.state).calibration_signal()["samples"], 0)

    def test_most_frequent_pose_wins_over_a_glance(self):
        # A 1.2-s look at a notebook (pitch 25, inside the plausibility gate)
        # in the middle of the first seconds does not move the neutral.
        notebook = {**FRONT, "pitch": 25.0}
        s = Session()
        s.feed(10)
        s.feed(6, pose=notebook)
        s.feed(10)
        c = Tracker(s.options, 5.0, s.state).calibration_signal()
        self.assertFalse(c["running"])
        self.assertEqual(c["pitch0"], 0.0)

    def test_neutral_follows_a_slow_drift_but_not_a_look_away(self):
        s = Session()
        s.feed(25)
        s.feed(300, pose={**FRONT, "pitch": 10.0})  # a minute slumped a little
        self.assertGreater(Tracker(s.options, 5.0, s.state).calibration_signal()["pitch0"], 6.0)
        s = Session()
        s.feed(25)
        s.feed(300, pose={**FRONT, "pitch": 40.0})  # a minute looking down at a phone
        self.assertEqual(Tracker(s.options, 5.0, s.state).calibration_signal()["pitch0"], 0.0)

    def test_configurable(self):
        s = Session(calibrationSeconds=1.0, calibrationMinSamples=3)
        s.feed(5)
        self.assertFalse(Tracker(s.options, 5.0, s.state).calibrating)

    def test_bad_context(self):
        for raw in (None, "x",
                    {"state": "bogus", "calib": {"samples": [["a"], [1, 2, 3]], "start": "b"}, "perclos": "12"},
                    {"calib": {"done": True, "yaw0": "x"}, "last": [1, "a", None]}):
            t = restore(raw)
            self.assertIsNone(t["state"])
            Tracker(DEFAULTS, 5.0, t).step(0, True, FRONT, 1.0, OPEN)


if __name__ == "__main__":
    unittest.main()
