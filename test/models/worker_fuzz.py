"""Answers every unit whose first seq is below options["untilSeq"] with a
malformed reply drawn from a generator seeded with options["seed"] and that
seq: random bytes, a message of a random type, a payload that is not JSON,
a body of the wrong JSON type, a missing key, a value of the wrong type or
range, a wrong frame count, an unknown request id, a malformed ERROR, or
nothing at all. The draw depends only on the seed and the seq, so a unit is
answered alike by every process that gets it. Later units get the
brightness model's own reply.
"""

import copy
import random

from jipjung_model.codec import MessageType

from brightness_model import BrightnessModel
from reply_hook import json_message, raw_message, replace_replies

WRONG_VALUES = {
    ("batch", "score"): ["<script>alert(1)</script>", True, -1, 100.5, 1e300, [50], {"v": 1}, "NaN"],
    ("batch", "state"): ["sleepy", 3, None, ["focused"]],
    ("batch", "signals"): [[], "s", None, 1],
    ("batch",): [None, [], "batch", 7],
    ("window",): ["w", 5, [], True],
    ("context",): [[], "c", 5, True],
    ("modelMs",): ["1", -5, None, True, {}],
    ("frames",): [{}, "f", None, 3],
}


def set_path(body, path, value):
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def mutate(rng, request_id, meta, body):
    kind = rng.randrange(11)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 300))
    if kind == 1:
        return raw_message(rng.choice([0, 7, 99, 255, MessageType.ANALYSE, MessageType.SHUTDOWN]), request_id, rng.randbytes(rng.randrange(0, 50)))
    if kind == 2:
        return raw_message(MessageType.RESULT, request_id, b"{" + rng.randbytes(rng.randrange(0, 50)))
    if kind == 3:
        return json_message(MessageType.RESULT, request_id, rng.choice([[], None, 42, "result", True, [body]]))
    body = copy.deepcopy(body)
    if kind == 4:
        del body[rng.choice(["frames", "batch", "window", "context", "modelMs"])]
    elif kind == 5:
        path = rng.choice(sorted(WRONG_VALUES))
        set_path(body, path, rng.choice(WRONG_VALUES[path]))
    elif kind == 6:
        frames = body["frames"]
        if frames and rng.random() < 0.5:
            frames.pop()
        else:
            frames.append({"analysed": True})
    elif kind == 7:
        i = rng.randrange(len(body["frames"])) if body["frames"] else None
        if i is None:
            body["frames"] = [None]
        else:
            value = rng.choice(["yes", 1, None, "missing", "not an object"])
            if value == "missing":
                del body["frames"][i]["analysed"]
            elif value == "not an object":
                body["frames"][i] = "frame"
            else:
                body["frames"][i]["analysed"] = value
    elif kind == 8:
        return json_message(MessageType.RESULT, request_id + rng.randrange(1, 1 << 20), body)
    elif kind == 9:
        return json_message(MessageType.ERROR, request_id, rng.choice([{}, {"code": 1}, {"message": None}, [], "error"]))
    else:
        # Nothing: the unit runs into the request timeout.
        return b""
    return json_message(MessageType.RESULT, request_id, body)


class FuzzModel(BrightnessModel):
    name = "fuzz"

    def load(self, options):
        until = options["untilSeq"]
        seed = options.get("seed", 0)

        def reply(request_id, meta, body):
            seqs = [f["seq"] for f in meta["frames"]]
            if not seqs or seqs[0] >= until:
                return None
            return mutate(random.Random(seed * 1_000_003 + seqs[0]), request_id, meta, body)

        replace_replies(reply)
