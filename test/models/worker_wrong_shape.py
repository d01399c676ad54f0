"""Answers the units holding a seq listed in options["badSeqs"] with a RESULT
whose JSON body has the wrong shape, options["reply"]:

- ``empty``: ``{}``
- ``score_text``: the batch score is a string of markup
- ``frame_count``: one frame entry fewer than the unit's frames
- ``state``: a state outside the closed set
- ``score_range``: a score above 100

Other units get the brightness model's own reply.
"""

from jipjung_model.codec import MessageType

from brightness_model import BrightnessModel
from reply_hook import json_message, replace_replies

SHAPES = {
    "empty": lambda body: {},
    "score_text": lambda body: {**body, "batch": {**body["batch"], "score": "<script>alert(1)</script>"}},
    "frame_count": lambda body: {**body, "frames": body["frames"][:-1]},
    "state": lambda body: {**body, "batch": {**body["batch"], "state": "<b>asleep</b>"}},
    "score_range": lambda body: {**body, "batch": {**body["batch"], "score": 1e6}},
}


class WrongShapeModel(BrightnessModel):
    name = "wrong-shape"

    def load(self, options):
        bad = set(options.get("badSeqs", []))
        shape = SHAPES[options["reply"]]

        def reply(request_id, meta, body):
            if any(f["seq"] in bad for f in meta["frames"]):
                return json_message(MessageType.RESULT, request_id, shape(body))
            return None

        replace_replies(reply)
