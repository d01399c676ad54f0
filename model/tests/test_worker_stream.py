"""The worker's serve loop with units sent frame by frame (OPEN, FRAME,
CLOSE), driven in-process over pipes as the server drives it."""

import contextlib
import io
import os
import queue
import threading
import unittest

from jipjung_model import codec, worker
from jipjung_model.codec import AnalyseRequest, Message, MessageType
from jipjung_model.interface import Model, OpenUnit, Unit, UnitOutcome, UnitResult
from tests.frames import HEIGHT, WIDTH, canvas, shared_model

FACE = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "faces", "london-smiling-011.jpg")
REPLY_TIMEOUT_S = 120  # a hung worker fails the test instead of hanging it


def frame_meta(seq: int) -> dict:
    return {"seq": seq, "captureTs": 1.7e12 + 200.0 * seq, "format": 1, "width": WIDTH, "height": HEIGHT}


class Served:
    """``worker.serve`` on a thread, with the server's end of its pipes."""

    def __init__(self, model: Model) -> None:
        self.to_worker_r, self.to_worker = os.pipe()
        self.from_worker, self.from_worker_w = os.pipe()
        channel = worker.Channel(self.to_worker_r, self.from_worker_w)
        self.exit_code: list[int] = []
        self.serving = threading.Thread(target=lambda: self.exit_code.append(worker.serve(channel, model)))
        self.replies: queue.Queue = queue.Queue()
        # Replies are read as they come, so that a worker writing them never
        # waits on a test writing frames.
        self.reading = threading.Thread(target=self._read)
        self.serving.start()
        self.reading.start()

    def _read(self) -> None:
        decoder = codec.Decoder()
        while True:
            chunk = os.read(self.from_worker, 1 << 16)
            if not chunk:
                return
            for message in decoder.feed(chunk):
                self.replies.put(message)

    def send(self, type_: MessageType, request_id: int, payload=None) -> None:
        data = memoryview(codec.encode(Message(type_, request_id, payload)))
        while data:
            data = data[os.write(self.to_worker, data):]

    def reply(self) -> Message:
        return self.replies.get(timeout=REPLY_TIMEOUT_S)

    def open(self, unit_id: int, context=None) -> None:
        self.send(MessageType.OPEN, unit_id,
                  {"session": "s-1", "batchFrames": 5, "windowFrames": 50, "fps": 5, "context": context})

    def frame(self, unit_id: int, seq: int, data: bytes) -> None:
        self.send(MessageType.FRAME, unit_id, AnalyseRequest(frame_meta(seq), [data]))

    def close(self, unit_id: int, closes_window: bool) -> None:
        self.send(MessageType.CLOSE, unit_id, {"closesWindow": closes_window})

    def analyse(self, unit_id: int, first_seq: int, images: list[bytes], closes_window: bool, context=None) -> None:
        meta = {"session": "s-1", "closesWindow": closes_window, "batchFrames": 5, "windowFrames": 50, "fps": 5,
                "frames": [frame_meta(first_seq + i) for i in range(len(images))], "context": context}
        self.send(MessageType.ANALYSE, unit_id, AnalyseRequest(meta, images))

    def stop(self) -> int:
        self.send(MessageType.SHUTDOWN, 0)
        self.serving.join(REPLY_TIMEOUT_S)
        os.close(self.from_worker_w)  # the reader sees the end of the stream
        self.reading.join(REPLY_TIMEOUT_S)
        for fd in (self.to_worker_r, self.to_worker, self.from_worker):
            os.close(fd)
        return self.exit_code[0]


class WorkerTestCase(unittest.TestCase):
    def make_model(self) -> Model:
        raise NotImplementedError

    def setUp(self) -> None:
        self.served = Served(self.make_model())

    def tearDown(self) -> None:
        self.assertEqual(self.served.stop(), 0)
        self.assertTrue(self.served.replies.empty(), "a reply nobody asked for")

    def expect(self, type_: MessageType, request_id: int) -> dict:
        message = self.served.reply()
        self.assertEqual((message.type, message.request_id), (type_, request_id), message.payload)
        return message.payload

    def stream(self, unit_id: int, first_seq: int, images: list[bytes], closes_window: bool, context=None) -> dict:
        """One unit frame by frame; its RESULT body, after a FRAME_DONE per frame."""
        s = self.served
        s.open(unit_id, context)
        done = []
        for i, data in enumerate(images):
            s.frame(unit_id, first_seq + i, data)
            done.append(self.expect(MessageType.FRAME_DONE, unit_id))
        self.assertEqual([d["seq"] for d in done], list(range(first_seq, first_seq + len(images))))
        s.close(unit_id, closes_window)
        body = self.expect(MessageType.RESULT, unit_id)
        self.assertGreaterEqual(body["modelMs"], sum(d["modelMs"] for d in done) - 0.001 * (len(done) + 1))
        return body


def without_time(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "modelMs"}


class DefaultModelStreamTest(WorkerTestCase):
    def make_model(self) -> Model:
        return shared_model()

    def test_streamed_unit_answers_as_analyse(self):
        units = [
            ([canvas(FACE, seed=i) for i in range(5)], False),
            ([canvas(FACE, seed=5 + i, dx=0.01 * i) for i in range(3)] + [b"junk", canvas("coffee")], True),
        ]
        streamed_context = analysed_context = None
        seq, unit_id = 0, 1
        for images, closes_window in units:
            streamed = self.stream(unit_id, seq, images, closes_window, streamed_context)
            self.served.analyse(unit_id + 1, seq, images, closes_window, analysed_context)
            analysed = self.expect(MessageType.RESULT, unit_id + 1)
            self.assertEqual(without_time(streamed), without_time(analysed))
            self.assertEqual(len(streamed["frames"]), len(images))
            self.assertEqual(streamed["window"] is not None, closes_window)
            streamed_context, analysed_context = streamed["context"], analysed["context"]
            seq, unit_id = seq + len(images), unit_id + 2
        self.assertEqual(streamed["frames"][3]["error"], "undecodable")
        self.assertEqual(streamed["frames"][4]["state"], "absent")

    def test_units_of_two_sessions_open_at_once(self):
        s = self.served
        faces = [canvas(FACE, seed=i) for i in range(3)]
        empty = [canvas("coffee", seed=i) for i in range(3)]
        s.open(1)
        s.open(2)
        for i in range(3):
            s.frame(1, i, faces[i])
            s.frame(2, i, empty[i])
            self.assertEqual(self.expect(MessageType.FRAME_DONE, 1)["seq"], i)
            self.assertEqual(self.expect(MessageType.FRAME_DONE, 2)["seq"], i)
        s.close(2, False)
        s.close(1, False)
        second, first = self.expect(MessageType.RESULT, 2), self.expect(MessageType.RESULT, 1)
        s.analyse(3, 0, faces, False)
        s.analyse(4, 0, empty, False)
        self.assertEqual(without_time(first), without_time(self.expect(MessageType.RESULT, 3)))
        self.assertEqual(without_time(second), without_time(self.expect(MessageType.RESULT, 4)))
        self.assertEqual(first["batch"]["state"], "focused")
        self.assertEqual(second["batch"]["state"], "absent")

    def test_unit_without_frames_closes_a_window(self):
        first = self.stream(1, 0, [canvas(FACE, seed=i) for i in range(5)], False)
        body = self.stream(2, 5, [], True, first["context"])
        self.assertEqual(body["frames"], [])
        self.assertIsNotNone(body["window"])
        self.assertEqual(body["window"]["state"], "focused")
        self.assertEqual(body["window"]["signals"]["framesUsable"], 5)
        self.assertNotIn("window", body["context"])

    def test_protocol_misuse_is_answered_not_fatal(self):
        s = self.served
        s.open(1)
        s.open(1)
        self.assertEqual(self.expect(MessageType.ERROR, 1)["code"], "internal")
        s.close(9, True)
        self.assertEqual(self.expect(MessageType.ERROR, 9)["code"], "internal")
        s.frame(8, 0, canvas(FACE))
        self.assertEqual(self.expect(MessageType.ERROR, 8)["code"], "internal")
        s.send(MessageType.FRAME_DONE, 7, {"seq": 0, "modelMs": 1})
        self.assertEqual(self.expect(MessageType.ERROR, 7)["code"], "internal")
        # The unit opened first is still open, and whole.
        s.frame(1, 0, canvas(FACE))
        self.assertEqual(self.expect(MessageType.FRAME_DONE, 1)["seq"], 0)
        s.close(1, False)
        self.assertEqual(len(self.expect(MessageType.RESULT, 1)["frames"]), 1)
        # Closed means gone: a second CLOSE of the id is misuse too.
        s.close(1, False)
        self.assertEqual(self.expect(MessageType.ERROR, 1)["code"], "internal")


class FailingUnit(OpenUnit):
    def __init__(self, context, added: list[int]) -> None:
        self.n = (context or {}).get("n", 0)
        self.seqs: list[int] = []
        self.added = added

    def add(self, frame) -> None:
        self.added.append(frame.seq)
        if frame.data == b"boom":
            raise RuntimeError(f"cannot read frame {frame.seq}")
        self.seqs.append(frame.seq)

    def close(self, closes_window: bool) -> UnitResult:
        if self.seqs == [13]:
            return UnitResult([], UnitOutcome(50.0, "focused"))  # too few entries
        window = UnitOutcome(None, "unknown") if closes_window else None
        return UnitResult([{"analysed": True} for _ in self.seqs], UnitOutcome(50.0, "focused", {"seqs": self.seqs}),
                          window, {"n": self.n + len(self.seqs)})


class FailingModel(Model):
    """Raises on the frames ``b"boom"``; closes a unit of seq 13 alone with a broken result."""

    name = "failing"

    def __init__(self) -> None:
        self.added: list[int] = []  # the seq of every frame given to an OpenUnit's add

    def analyse(self, unit: Unit, context) -> UnitResult:
        opened = self.open(context)
        for frame in unit.frames:
            opened.add(frame)
        return opened.close(unit.closes_window)

    def open(self, context, batch_frames=5, window_frames=50, fps=5.0) -> OpenUnit:
        if context == {"open": "fails"}:
            raise ValueError("no such context")
        return FailingUnit(context, self.added)


class ModelErrorTest(WorkerTestCase):
    def make_model(self) -> Model:
        self.model = FailingModel()
        return self.model

    def test_a_frame_that_raises_costs_its_unit_only(self):
        s = self.served
        log = io.StringIO()
        with contextlib.redirect_stderr(log):
            s.open(1)
            for seq, data in enumerate([b"a", b"b", b"boom", b"c", b"d"]):
                s.frame(1, seq, data)
            done = [self.expect(MessageType.FRAME_DONE, 1) for _ in range(5)]
            s.close(1, False)
            error = self.expect(MessageType.ERROR, 1)
        self.assertEqual([d["seq"] for d in done], [0, 1, 2, 3, 4])
        self.assertEqual(self.model.added, [0, 1, 2])  # the frames after the failure are acknowledged only
        self.assertEqual([d["modelMs"] for d in done[3:]], [0, 0])
        self.assertEqual(error, {"code": "model_error", "message": "RuntimeError: cannot read frame 2"})
        self.assertIn("RuntimeError: cannot read frame 2", log.getvalue())
        # The worker goes on: the next unit, streamed or whole.
        body = self.stream(2, 5, [b"e", b"f"], True, {"n": 2})
        self.assertEqual(body["batch"]["signals"], {"seqs": [5, 6]})
        self.assertEqual(body["context"], {"n": 4})
        self.assertIsNotNone(body["window"])
        s.analyse(3, 7, [b"g"], False)
        self.assertEqual(self.expect(MessageType.RESULT, 3)["batch"]["signals"], {"seqs": [7]})

    def test_a_broken_result_or_open_is_a_model_error(self):
        s = self.served
        s.open(1)
        s.frame(1, 13, b"x")
        self.expect(MessageType.FRAME_DONE, 1)
        with contextlib.redirect_stderr(io.StringIO()):
            s.close(1, False)
            self.assertEqual(self.expect(MessageType.ERROR, 1)["code"], "model_error")
            s.open(2, {"open": "fails"})
            s.frame(2, 14, b"y")
            self.assertEqual(self.expect(MessageType.FRAME_DONE, 2), {"seq": 14, "modelMs": 0})
            s.close(2, False)
            self.assertEqual(self.expect(MessageType.ERROR, 2),
                             {"code": "model_error", "message": "ValueError: no such context"})
        # A closesWindow unit must have a window; this one's comes from the model.
        self.assertEqual(self.stream(3, 15, [b"z"], True)["window"]["state"], "unknown")


class AnalyseOnlyModel(Model):
    """A model with no ``open`` of its own: the worker streams to it all the same."""

    name = "analyse-only"

    def analyse(self, unit: Unit, context) -> UnitResult:
        seqs = [f.seq for f in unit.frames]
        window = UnitOutcome(float(len(seqs)), "focused") if unit.closes_window else None
        return UnitResult([{"analysed": True, "size": len(f.data)} for f in unit.frames],
                          UnitOutcome(10.0, "focused", {"seqs": seqs, "fps": unit.fps}), window, context)


class AnalyseOnlyTest(WorkerTestCase):
    def make_model(self) -> Model:
        return AnalyseOnlyModel()

    def test_streamed_unit_reaches_analyse_whole(self):
        body = self.stream(1, 20, [b"ab", b"cde", b"f"], True, {"k": 1})
        self.served.analyse(2, 20, [b"ab", b"cde", b"f"], True, {"k": 1})
        self.assertEqual(without_time(body), without_time(self.expect(MessageType.RESULT, 2)))
        self.assertEqual(body["batch"]["signals"], {"seqs": [20, 21, 22], "fps": 5.0})
        self.assertEqual([f["size"] for f in body["frames"]], [2, 3, 1])


if __name__ == "__main__":
    unittest.main()
