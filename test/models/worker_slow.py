"""Sleeps options["sleepMs"] per unit (to trip the request timeout)
when a frame's seq is listed in options["slowSeqs"], or always when that list is absent."""

import time

from brightness_model import BrightnessModel


class SlowModel(BrightnessModel):
    name = "slow"

    def load(self, options):
        self.sleep_s = options.get("sleepMs", 1000) / 1000
        self.slow_seqs = set(options["slowSeqs"]) if "slowSeqs" in options else None

    def analyse(self, unit, context):
        if self.slow_seqs is None or any(f.seq in self.slow_seqs for f in unit.frames):
            time.sleep(self.sleep_s)
        return super().analyse(unit, context)
