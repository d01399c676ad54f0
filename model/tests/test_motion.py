"""motion.py: a face region's in-plane motion between two frames, and what
is left of a change once it is aligned."""

import math
import unittest

import cv2
import numpy as np

from jipjung_model import motion
from tests.frames import canvas_image


def grey_frame(**kw) -> np.ndarray:
    """The house's webcam canvas at the model's detection size (320x240)."""
    image = canvas_image("astronaut", **kw)
    return cv2.cvtColor(cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)


def turned(image_point: tuple[float, float], angle: float, dx: float, dy: float) -> np.ndarray:
    """Where canvas_image puts a point of the unmoved canvas (320x240
    coordinates) when the photo is turned by ``angle`` about its centre and
    shifted by (dx, dy) shares of the frame."""
    centre = np.array([160.0, 120.0])
    t = math.radians(angle)
    # Counter-clockwise on screen with y down.
    rot = np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
    return rot @ (np.asarray(image_point) - centre) + centre + np.array([dx * 320, dy * 240])


# The astronaut's face on the canvas at scale 0.8, at 320x240 (x, y, w, h),
# and its eyes and mouth (BlazeFace's keypoints there).
BOX = (125.6, 46.5, 47.1, 47.1)
POINTS = ((138.0, 64.3), (151.9, 60.5), (147.7, 78.4))


class PatchTest(unittest.TestCase):
    def test_patch_maps_the_box_square(self):
        grey = grey_frame(seed=1)
        patch, to_patch = motion.face_patch(grey, BOX)
        self.assertEqual(patch.shape, (motion.PATCH, motion.PATCH))
        self.assertEqual(patch.dtype, np.float32)
        # The box's centre is the patch's centre; its longer side spans the patch.
        cx, cy = BOX[0] + BOX[2] / 2, BOX[1] + BOX[3] / 2
        centre = to_patch @ [cx, cy, 1.0]
        np.testing.assert_allclose(centre[:2], [motion.PATCH / 2 - 0.5] * 2, atol=1e-9)
        top = to_patch @ [cx, cy - BOX[3] / 2, 1.0]
        self.assertAlmostEqual(top[1], -0.5, places=9)

    def test_too_small_or_nan_box(self):
        grey = grey_frame()
        self.assertIsNone(motion.face_patch(grey, (10.0, 10.0, 5.0, 7.0)))
        self.assertIsNone(motion.face_patch(grey, (10.0, 10.0, float("nan"), 20.0)))

    def test_box_at_the_edge_is_sampled(self):
        grey = grey_frame()
        taken = motion.face_patch(grey, (300.0, 220.0, 40.0, 40.0))
        self.assertIsNotNone(taken)
        self.assertTrue(np.all(np.isfinite(taken[0])))

    def test_noise_alone_is_no_change(self):
        a, _ = motion.face_patch(grey_frame(seed=1), BOX)
        b, _ = motion.face_patch(grey_frame(seed=2), BOX)
        self.assertLess(motion.difference(motion.thumbnail(a), motion.thumbnail(b)), 0.03)


class MotionTest(unittest.TestCase):
    def estimate(self, angle: float, dx: float, dy: float):
        reference, to_patch = motion.face_patch(grey_frame(seed=1), BOX)
        current, _ = motion.face_patch(grey_frame(seed=2, angle=angle, dx=dx, dy=dy), BOX)
        return reference, current, to_patch, motion.in_plane_motion(reference, current)

    def test_drift_and_tilt_are_found_and_aligned(self):
        for angle, dx, dy in ((0.0, 0.004, 0.0), (1.5, 0.0, 0.0), (-1.2, -0.005, 0.004), (2.5, 0.006, -0.003)):
            reference, current, to_patch, found = self.estimate(angle, dx, dy)
            self.assertIsNotNone(found, (angle, dx, dy))
            warp, aligned = found
            moved = motion.image_motion(warp, to_patch)
            # Points of the face go where the canvas put them.
            for p in POINTS:
                want = turned(p, angle, dx, dy)
                got = motion.move_points(np.array([p]), moved)[0]
                self.assertLess(float(np.hypot(*(got - want))), 0.35, (angle, dx, dy, p, got, want))
            before = motion.difference(motion.thumbnail(reference), motion.thumbnail(current))
            after = motion.difference(motion.thumbnail(reference), motion.thumbnail(aligned))
            self.assertLess(after, 0.06, (angle, dx, dy, before, after))
            if (angle, dx, dy) != (0.0, 0.0, 0.0):
                self.assertGreater(before, 0.08, (angle, dx, dy))

    def test_large_moves_are_not_followed(self):
        self.assertIsNone(self.estimate(0.0, 0.04, 0.0)[3])  # 13 px: over a quarter of the face
        found = self.estimate(12.0, 0.0, 0.0)[3]
        self.assertIsNone(found)

    def test_another_face_is_a_change_after_alignment(self):
        reference, to_patch = motion.face_patch(grey_frame(seed=1), BOX)
        image = canvas_image("astronaut", seed=2)
        # The face region mirrored: the same content, not the same face.
        mirrored = cv2.cvtColor(cv2.resize(cv2.flip(image, 1), (320, 240), interpolation=cv2.INTER_AREA),
                                cv2.COLOR_BGR2GRAY)
        current, _ = motion.face_patch(mirrored, BOX)
        found = motion.in_plane_motion(reference, current)
        left = motion.thumbnail(current if found is None else found[1])
        self.assertGreater(motion.difference(motion.thumbnail(reference), left), 0.08)

    def test_flat_patch_does_not_raise(self):
        flat = np.full((motion.PATCH, motion.PATCH), 100.0, np.float32)
        found = motion.in_plane_motion(flat, flat.copy())
        if found is not None:
            np.testing.assert_allclose(found[0], np.eye(2, 3), atol=1e-3)

    def test_move_points_keeps_depth_and_dtype(self):
        pts = np.array([[1.0, 2.0, 7.0], [3.0, 4.0, -2.0]], np.float32)
        out = motion.move_points(pts, np.array([[1.0, 0.0, 10.0], [0.0, 1.0, -5.0]]))
        self.assertEqual(out.dtype, np.float32)
        np.testing.assert_allclose(out, [[11.0, -3.0, 7.0], [13.0, -1.0, -2.0]])
        np.testing.assert_allclose(pts[0], [1.0, 2.0, 7.0])  # the input is left alone


if __name__ == "__main__":
    unittest.main()
