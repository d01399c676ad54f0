"""Returns malformed output for frames listed in options["badSeqs"], or raises for "raiseSeqs"."""

from brightness_model import BrightnessModel


class BadOutputModel(BrightnessModel):
    name = "bad-output"

    def load(self, options):
        self.bad = set(options.get("badSeqs", []))
        self.raise_ = set(options.get("raiseSeqs", []))

    def analyse(self, unit, context):
        seqs = {f.seq for f in unit.frames}
        if seqs & self.raise_:
            raise ValueError("model blew up on purpose")
        if seqs & self.bad:
            return {"score": "high"}
        return super().analyse(unit, context)
