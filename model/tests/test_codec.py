"""The IPC codec against the golden files shared with test/ipc-codec.test.ts."""

import json
import pathlib
import unittest

from jipjung_model import codec
from jipjung_model.codec import AnalyseRequest, CodecError, Decoder, Message, MessageType

GOLDEN = pathlib.Path(__file__).resolve().parents[2] / "test" / "golden" / "ipc"
CASES = json.loads((GOLDEN / "cases.json").read_text())


def to_message(case):
    mtype = MessageType(case["type"])
    if mtype in (MessageType.ANALYSE, MessageType.FRAME):
        payload = AnalyseRequest(case["meta"], [bytes.fromhex(h) for h in case["frames"]])
    elif mtype == MessageType.SHUTDOWN:
        payload = None
    else:
        payload = case["body"]
    return Message(mtype, case["id"], payload)


class GoldenTest(unittest.TestCase):
    def test_every_golden_file_round_trips(self):
        for name, case in CASES.items():
            with self.subTest(name):
                golden = (GOLDEN / f"{name}.bin").read_bytes()
                self.assertEqual(codec.encode(to_message(case)), golden)
                [decoded] = Decoder().feed(golden)
                self.assertEqual(decoded, to_message(case))

    def test_split_stream(self):
        stream = b"".join((GOLDEN / f"{n}.bin").read_bytes() for n in CASES)
        for step in (1, 5, 13, 64, len(stream)):
            decoder = Decoder()
            out = []
            for i in range(0, len(stream), step):
                out += decoder.feed(stream[i : i + step])
            self.assertEqual(out, [to_message(c) for c in CASES.values()])
            self.assertEqual(decoder.pending, 0)

    def test_corrupt_input(self):
        with self.assertRaises(CodecError):
            Decoder().feed(bytes.fromhex("000000040100000000000000"))
        with self.assertRaises(CodecError):
            codec.decode_body(99, 0, b"")
        analyse = (GOLDEN / "analyse.bin").read_bytes()
        with self.assertRaisesRegex(CodecError, "truncated"):
            codec.decode_body(3, 7, analyse[12:-1])
        with self.assertRaisesRegex(CodecError, "trailing"):
            codec.decode_body(3, 7, analyse[12:] + b"\0")

    def test_a_frame_carries_exactly_one_image(self):
        case = CASES["frame"]
        for images in ([], [b"\xff\xd8\xff\xd9"] * 2):
            with self.subTest(len(images)):
                request = AnalyseRequest(case["meta"], images)
                with self.assertRaisesRegex(CodecError, "exactly one frame"):
                    codec.encode(Message(MessageType.FRAME, 11, request))
                # The same bytes as an ANALYSE are well formed: only the count is wrong.
                payload = codec.encode(Message(MessageType.ANALYSE, 11, request))[12:]
                self.assertEqual(codec.decode_body(MessageType.ANALYSE, 11, payload).payload, request)
                with self.assertRaisesRegex(CodecError, "exactly one frame"):
                    codec.decode_body(MessageType.FRAME, 11, payload)

    def test_protocol_version_is_the_golden_readys(self):
        self.assertEqual(CASES["ready"]["body"]["protocol"], codec.PROTOCOL_VERSION)


if __name__ == "__main__":
    unittest.main()
