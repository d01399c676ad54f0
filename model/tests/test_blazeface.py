import hashlib
import os
import unittest

import numpy as np

from jipjung_model.blazeface import (
    ASSETS, FULL_RANGE, LEFT_EYE, MOUTH, NOSE, RIGHT_EYE, SHORT_RANGE, BlazeFace,
)
from jipjung_model.image import decode_jpeg, jpeg_size, pick_reduce, quality
from tests.frames import canvas, canvas_image

HASHES = {
    "face_detection_front_128x128_barracuda.onnx":
        "d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51",
    "face_detection_back_256x256_barracuda.onnx":
        "427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2",
}


class AssetTest(unittest.TestCase):
    def test_onnx_hashes(self):
        for name, digest in HASHES.items():
            with open(os.path.join(ASSETS, name), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), digest, name)
        self.assertTrue(os.path.exists(SHORT_RANGE))
        self.assertTrue(os.path.exists(FULL_RANGE))


class ImageTest(unittest.TestCase):
    def test_decode_and_reduce(self):
        data = canvas("astronaut")
        self.assertEqual(jpeg_size(data), (640, 480))
        self.assertEqual(decode_jpeg(data).shape, (480, 640, 3))
        self.assertEqual(decode_jpeg(data, 2).shape, (240, 320, 3))
        self.assertEqual(decode_jpeg(data, 4).shape, (120, 160, 3))
        self.assertEqual(pick_reduce(data, 320), 2)
        self.assertEqual(pick_reduce(data, 640), 1)
        self.assertEqual(pick_reduce(data, 160), 4)

    def test_garbage(self):
        for data in (b"", b"\xff\xd8\xff\xe0garbage", os.urandom(2000)):
            self.assertIsNone(decode_jpeg(data))
        self.assertIsNone(jpeg_size(b"not a jpeg"))
        self.assertEqual(pick_reduce(b"not a jpeg"), 1)

    def test_quality(self):
        bright = quality(decode_jpeg(canvas("astronaut")))
        dark = quality(decode_jpeg(canvas("astronaut", brightness=0.05)))
        for q in (bright, dark):
            self.assertEqual(set(q), {"brightness", "contrast", "blur"})
            self.assertTrue(all(isinstance(v, float) for v in q.values()))
        self.assertGreater(bright["brightness"], 80)
        self.assertLess(dark["brightness"], 15)
        self.assertGreater(bright["contrast"], dark["contrast"])
        self.assertGreater(bright["blur"], dark["blur"])


class BlazeFaceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = BlazeFace()

    def test_anchors(self):
        self.assertEqual(self.net.anchors.shape, (896, 2))
        self.assertEqual(BlazeFace(FULL_RANGE).anchors.shape, (896, 2))

    def assertUprightFace(self, det):
        kp = det.keypoints
        self.assertEqual(kp.shape, (6, 2))
        # The subject's right eye is on the image's left; y points down.
        self.assertLess(kp[RIGHT_EYE, 0], kp[LEFT_EYE, 0])
        eyes_y = (kp[RIGHT_EYE, 1] + kp[LEFT_EYE, 1]) / 2
        self.assertLess(eyes_y, kp[NOSE, 1])
        self.assertLess(kp[NOSE, 1], kp[MOUTH, 1])
        x, y, w, h = det.box
        self.assertTrue(np.all(kp[:4, 0] > x) and np.all(kp[:4, 0] < x + w))
        self.assertTrue(np.all(kp[:4, 1] > y) and np.all(kp[:4, 1] < y + h))

    def test_detect_and_refine_astronaut(self):
        image = canvas_image("astronaut", scale=1.0)
        dets = self.net.detect(image, 0.5)
        self.assertEqual(len(dets), 1)
        det = dets[0]
        self.assertGreater(det.score, 0.8)
        self.assertUprightFace(det)
        # The face sits in the upper middle of the photo, itself centred.
        cx, cy = det.center
        self.assertTrue(250 < cx < 390 and 60 < cy < 200, det.box)
        refined = self.net.refine(image, det)
        self.assertGreater(refined.score, 0.8)
        self.assertUprightFace(refined)
        self.assertLess(np.hypot(*np.subtract(refined.center, det.center)), det.box[2] / 4)

    def test_refine_small_face_and_edges(self):
        # A small face (photo at 0.6 of the frame height) is weak in the
        # whole frame, strong in the crop; a crop that leaves the image
        # (face near the right edge) is padded and mapped back.
        for kw, min_whole in ((dict(scale=0.6, dx=0.3), 0.3), (dict(scale=1.0, dx=0.4), 0.7)):
            image = canvas_image("astronaut", **kw)
            det = self.net.detect(image, 0.25)[0]
            self.assertGreater(det.score, min_whole, kw)
            refined = self.net.refine(image, det)
            self.assertGreater(refined.score, 0.85, kw)
            self.assertUprightFace(refined)
            x, y, w, h = refined.box
            self.assertTrue(0 < x and x + w < 640 and 0 < y and y + h < 480, (kw, refined.box))
            # Refining again converges rather than drifting.
            again = self.net.refine(image, refined)
            self.assertLess(np.hypot(*np.subtract(again.center, refined.center)), w / 8)

    def test_refine_close_face(self):
        # A face close to the camera: the crop is downscaled (area average).
        image = canvas_image("astronaut", scale=2.0, dy=0.3)
        det = self.net.detect(image)[0]
        self.assertGreater(det.box[2], 150)
        refined = self.net.refine(image, det)
        self.assertGreater(refined.score, 0.85)
        self.assertUprightFace(refined)
        self.assertLess(abs(refined.box[2] - det.box[2]), det.box[2] * 0.2)

    def test_scores_sorted_and_scaled(self):
        image = canvas_image("chelsea")
        dets = self.net.detect(image, 0.2)
        scores = [d.score for d in dets]
        self.assertEqual(scores, sorted(scores, reverse=True))
        # Half-size input gives the same face at half the coordinates.
        big = canvas_image("astronaut", scale=1.0)
        small = big[::2, ::2].copy()
        a, b = self.net.detect(big)[0], self.net.detect(small)[0]
        self.assertLess(abs(a.box[0] / 2 - b.box[0]), 4)
        self.assertLess(abs(a.box[2] / 2 - b.box[2]), 4)

    def test_nobody(self):
        for name in ("coffee", "brick"):
            self.assertEqual(self.net.detect(canvas_image(name), 0.5), [], name)
        self.assertEqual(self.net.detect(np.full((480, 640, 3), 128, np.uint8)), [])

    def test_odd_shapes(self):
        for shape in ((10, 10, 3), (480, 64, 3), (64, 480, 3)):
            self.assertIsInstance(self.net.detect(np.zeros(shape, np.uint8)), list)


if __name__ == "__main__":
    unittest.main()
