"""Head pose from a mesh: the rigid fit recovers known rotations of the
canonical face, in the model's sign conventions."""

from __future__ import annotations

import math
import unittest

import numpy as np

from jipjung_model import mesh_pose


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


def observed(
    yaw: float, pitch: float, roll: float, scale: float = 9.0, noise: float = 0.0, seed: int = 0
) -> np.ndarray:
    """The canonical face turned, as FaceMesh would report it in image pixels."""
    model, _, _ = mesh_pose.canonical()
    cam = scale * model @ rotation(yaw, pitch, roll).T + np.array([320.0, -240.0, 0.0])
    pts = cam * np.array([1.0, -1.0, -1.0])  # back to image x right, y down, z away
    if noise:
        pts = pts + np.random.default_rng(seed).normal(0, noise, pts.shape)
    return pts


class MeshPoseTest(unittest.TestCase):
    def test_frontal_is_zero(self):
        pose = mesh_pose.head_pose(observed(0, 0, 0))
        for key in ("yaw", "pitch", "roll"):
            self.assertAlmostEqual(pose[key], 0.0, places=6)
        self.assertTrue(pose["plausible"])
        self.assertLess(pose["fit"], 1e-9)

    def test_recovers_known_rotations(self):
        cases = [(30, 0, 0), (-45, 0, 0), (0, 40, 0), (0, -20, 0), (0, 0, 25), (20, 30, -10), (-60, -15, 5)]
        for yaw, pitch, roll in cases:
            seed = abs(yaw) + 100 * abs(pitch) + 1000 * abs(roll)
            pose = mesh_pose.head_pose(observed(yaw, pitch, roll, noise=0.3, seed=seed))
            self.assertAlmostEqual(pose["yaw"], yaw, delta=1.5, msg=(yaw, pitch, roll, pose))
            self.assertAlmostEqual(pose["pitch"], pitch, delta=1.5, msg=(yaw, pitch, roll, pose))
            self.assertAlmostEqual(pose["roll"], roll, delta=1.5, msg=(yaw, pitch, roll, pose))

    def test_signs_in_the_image(self):
        # Turned to the subject's own left: the nose tip moves to the image's right.
        frontal, turned = observed(0, 0, 0), observed(30, 0, 0)
        nose = mesh_pose.NOSE_TIP
        self.assertGreater(turned[nose, 0], frontal[nose, 0])
        # Lowered: the nose tip moves down the image (y grows).
        self.assertGreater(observed(0, 30, 0)[nose, 1], frontal[nose, 1])
        # Counter-clockwise on screen: the subject's left eye (image right) goes up.
        rolled = observed(0, 0, 20)
        self.assertLess(rolled[mesh_pose.LEFT_EYE_OUTER, 1], rolled[mesh_pose.RIGHT_EYE_OUTER, 1])

    def test_on_its_side_is_implausible(self):
        self.assertFalse(mesh_pose.head_pose(observed(0, 0, 80))["plausible"])
        self.assertFalse(mesh_pose.head_pose(np.full((468, 3), np.nan))["plausible"])


if __name__ == "__main__":
    unittest.main()
