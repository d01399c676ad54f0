"""The real-people evaluation set (eval/people.py) and the re-posed heads
(eval/repose.py): clip sizes and labels, and that re-posing moves a face
the way it says. Nothing here judges the model's accuracy."""

import os
import unittest

import cv2
import numpy as np

from eval import people
from eval.dataset import BATCH
from jipjung_model.facemesh import DEFAULT_FACEMESH
from jipjung_model.interface import STATES
from tests.frames import shared_model

HAS_FACEMESH = os.path.exists(DEFAULT_FACEMESH)
SUBJECT = people.Subject("london-001", "frontal", 0)


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


class SubjectsTest(unittest.TestCase):
    def test_every_photo_is_a_subject_of_its_kind(self):
        subjects = people.subjects()
        kinds = [s.kind for s in subjects]
        self.assertEqual((kinds.count("frontal"), kinds.count("smiling"), kinds.count("selfie")), (71, 51, 8))
        self.assertEqual(len({s.name for s in subjects}), len(subjects))
        self.assertTrue(all(os.path.exists(s.path) for s in subjects))

    def test_quick_is_every_fifth_of_each_kind(self):
        quick = people.subjects(quick=True)
        self.assertEqual([s.kind for s in quick].count("frontal"), 15)  # 0, 5, ..., 70 of 71
        self.assertTrue(all(s.index % people.QUICK_EVERY == 0 for s in quick))
        self.assertEqual(quick, people.subjects(quick=True))  # deterministic

    def test_conditions_follow_the_kind(self):
        smiling = people.Subject("london-smiling-001", "smiling", 0)
        self.assertEqual(people.conditions_for(smiling), list(people.CAMERA))
        self.assertIn("eyes closed", people.conditions_for(people.Subject("selfie-pose-lisa1", "selfie", 0)))
        self.assertIn("yaw +45", people.conditions_for(SUBJECT))
        self.assertIn(people.GLANCE, people.conditions_for(SUBJECT))


class ClipTest(unittest.TestCase):
    def test_centred_clip_is_one_window_of_focused_batches(self):
        clip = people.camera_clip(SUBJECT, "centred")
        self.assertEqual(clip.length, 50)
        self.assertEqual(clip.states, ["focused"] * 10)
        self.assertEqual(clip.min_window, 70.0)
        frames = people._frames(clip, 0)
        self.assertEqual(decode(frames[0]).shape, (480, 640, 3))
        # Consecutive frames differ (noise seed and jitter); the seeds repeat
        # with their period.
        self.assertNotEqual(frames[0], frames[1])
        self.assertEqual(frames[0], frames[people.SEED_PERIOD])

    def test_rolled_clip_carries_the_applied_roll(self):
        clip = people.camera_clip(SUBJECT, "roll -20")
        self.assertEqual(clip.length, 15)
        self.assertEqual(clip.states, ["focused"] * 3)
        self.assertEqual({t[2] for t in clip.truth}, {-20.0})

    def test_eye_clips_follow_a_lead_in(self):
        closed = people.eyes_clip(SUBJECT, "eyes closed")
        self.assertTrue(closed.lead_in)
        self.assertEqual(closed.length, 15)
        self.assertEqual(closed.states, [None, "drowsy", "drowsy"])
        blinks = people.eyes_clip(SUBJECT, "blinks")
        self.assertEqual(blinks.length // BATCH, len(blinks.states))
        # The painted frame differs from the open one around the eyes only.
        open_ = decode(people.frontal(SUBJECT)(0)).astype(int)
        shut = decode(closed.segments[0][1](0)).astype(int)
        diff = np.abs(open_ - shut).sum(2)
        ys, xs = np.nonzero(diff > 40)
        self.assertGreater(len(ys), 50)
        self.assertLess(ys.max() - ys.min(), 60)  # a band across the eyes, not the whole face

    def test_side_clip_runs_through_the_model(self):
        clip = people.camera_clip(SUBJECT, "on its side")
        self.assertTrue(clip.never_focused)
        session = people.Session(shared_model())
        session.feed(people._frames(clip, 0))
        result = people.judge(clip, session)
        self.assertEqual(len(result["got"]), 3)
        self.assertTrue(set(result["got"]) <= set(STATES))
        self.assertEqual(session.stats["frames"], 15)


@unittest.skipUnless(HAS_FACEMESH, "FaceMesh network not installed (node scripts/face-models.mjs)")
class ReposeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from eval import repose

        cls.repose = repose
        cls.image = cv2.imread(SUBJECT.path, cv2.IMREAD_COLOR)
        cls.head = repose.fit(cls.image)

    def test_mesh_is_the_canonical_disc(self):
        self.assertEqual(self.repose.mesh_triangles().shape, (898, 3))
        self.assertEqual(len(self.repose.outline()), 36)

    def test_no_turn_reproduces_the_photo(self):
        out = self.repose.render(self.image, self.head, 0.0, 0.0)
        self.assertEqual(out.shape, self.image.shape)
        self.assertLess(float(np.abs(out.astype(int) - self.image).mean()), 1.0)

    def test_turn_moves_the_nose_tip_toward_the_yaw(self):
        r = self.repose
        for yaw in (45.0, -45.0):
            out = r.render(self.image, self.head, yaw, 0.0)
            self.assertGreater(float(np.abs(out.astype(int) - self.image).mean()), 2.0)
            # Measured on the rendered image: the nose tip moves toward the
            # image's right for positive yaw, relative to the face's outline.
            before, _ = r.landmarks(self.image)
            after, _ = r.landmarks(out)
            outline = r.outline()

            def offset(p):
                return (p[r.NOSE_TIP, 0] - p[outline, 0].mean()) / self.head.eye_distance
            shift = offset(after) - offset(before)
            self.assertGreater(shift * np.sign(yaw), 0.15, (yaw, shift))

    def test_lowering_moves_the_nose_tip_down(self):
        # The nose tip is in front of the eyes: lowering the head (positive
        # pitch) moves it further below the eye line in the image.
        r = self.repose

        def below_eyes(p):
            eyes = (p[list(r.RIGHT_EYE_CORNERS)].mean(0) + p[list(r.LEFT_EYE_CORNERS)].mean(0)) / 2
            return (p[r.NOSE_TIP, 1] - eyes[1]) / self.head.eye_distance
        before = below_eyes(self.head.points)
        self.assertGreater(below_eyes(r.turned_landmarks(self.head, 0.0, 40.0)), before + 0.2)
        self.assertLess(below_eyes(r.turned_landmarks(self.head, 0.0, -20.0)), before - 0.1)

    def test_view_clip_labels(self):
        render = self.repose.renderer(SUBJECT.path)
        away = people.view_clip(SUBJECT, "yaw +45", render)
        self.assertTrue(away.lead_in)
        self.assertEqual(away.states, [None, None, "distracted"])
        self.assertEqual(away.truth[BATCH:], [(45.0, 0.0, 0.0)] * (people.VIEW_FRAMES - BATCH))
        near = people.view_clip(SUBJECT, "up 20", render)
        self.assertEqual(near.states, ["focused"] * 3)
        frames = people._frames(away, people.LEAD_IN)
        self.assertEqual(len(frames), people.VIEW_FRAMES)
        self.assertEqual(decode(frames[0]).shape, (480, 640, 3))


if __name__ == "__main__":
    unittest.main()


class PoseJumpTest(unittest.TestCase):
    """A head lowered by 40 deg in one frame reads as lowered on that frame:
    the mesh's crop from the frontal frame would lag it by several frames."""

    def test_nod_is_read_on_the_frame_it_happens(self):
        import json

        from eval import repose
        from eval.dataset import frame
        from jipjung_model.interface import FORMAT_JPEG, Frame, Unit

        path = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "faces", "london-001.jpg")
        render = repose.renderer(path)
        front, down = frame(render(0.0, 0.0), scale=0.8), frame(render(0.0, 40.0), scale=0.8)
        data = [front(k) for k in range(10)] + [down(k) for k in range(10, 15)]
        model, context, entries = shared_model(), None, []
        for start in range(0, len(data), BATCH):
            unit = Unit([Frame(start + i, 1.7e12 + 200.0 * (start + i), FORMAT_JPEG, d, 640, 480)
                         for i, d in enumerate(data[start:start + BATCH])], closes_window=False)
            result = model.analyse(unit, context)
            context = json.loads(json.dumps(result.context))
            entries.extend(result.frames)
        before = entries[9]["pitch"]
        self.assertGreater(entries[10]["pitch"] - before, 28, [e["pitch"] for e in entries])
