"""Prints to stdout and stderr on every unit: the IPC channel must not care."""

import sys

from brightness_model import BrightnessModel


class PrintsModel(BrightnessModel):
    name = "prints"

    def analyse(self, unit, context):
        print("model says hello on stdout", flush=True)
        print("model says hello on stderr", file=sys.stderr, flush=True)
        sys.stdout.write("\x00\x00\x00\x0c\x04 not a frame\n")
        sys.stdout.flush()
        return super().analyse(unit, context)
