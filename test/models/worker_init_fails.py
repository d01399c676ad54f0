"""A model whose load() always fails."""

from jipjung_model.interface import Model


class InitFailsModel(Model):
    name = "init-fails"

    def load(self, options):
        raise RuntimeError("weights not found: /nonexistent/weights.bin")

    def analyse(self, unit, context):  # pragma: no cover - never reached
        raise AssertionError("unreachable")
