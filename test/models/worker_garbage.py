"""Answers the units holding a seq listed in options["badSeqs"] with a
message that breaks the IPC protocol itself, options["reply"]:

- ``length``: random bytes behind a length field no message can have
- ``type``: a well-framed message of an unknown type
- ``json``: a RESULT whose payload is random bytes, not JSON
- ``unknown_id``: the right RESULT under a request id never sent
- ``error_shape``: an ERROR whose body is not ``{code, message}``
- ``ready``: a second READY instead of the answer

Other units get the brightness model's own reply.
"""

import random

from jipjung_model.codec import MessageType

from brightness_model import BrightnessModel
from reply_hook import json_message, raw_message, replace_replies


def garbage(kind, rng, request_id, body):
    noise = rng.randbytes(64)
    if kind == "length":
        return b"\x00\x00\x00\x03" + noise
    if kind == "type":
        return raw_message(0x63, request_id, noise)
    if kind == "json":
        return raw_message(MessageType.RESULT, request_id, b"\xff" + noise)
    if kind == "unknown_id":
        return json_message(MessageType.RESULT, request_id + 1000, body)
    if kind == "error_shape":
        return json_message(MessageType.ERROR, request_id, {"code": 5, "message": ["no"]})
    if kind == "ready":
        return json_message(MessageType.READY, 0, {"protocol": 1, "model": "again", "version": "1", "pid": 1})
    raise ValueError(kind)


class GarbageModel(BrightnessModel):
    name = "garbage"

    def load(self, options):
        bad = set(options.get("badSeqs", []))
        kind = options["reply"]
        rng = random.Random(options.get("seed", 1))

        def reply(request_id, meta, body):
            if any(f["seq"] in bad for f in meta["frames"]):
                return garbage(kind, rng, request_id, body)
            return None

        replace_replies(reply)
