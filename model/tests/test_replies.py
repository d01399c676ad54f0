"""RESULT bodies judged by the worker's wire check, against the cases the
server's check (src/ipc/messages.ts, test/ipc-messages.test.ts) judges alike."""

import json
import pathlib
import unittest

from jipjung_model.interface import STATES, ModelOutputError, Unit, UnitOutcome, UnitResult, validate_result
from jipjung_model.worker import check_result_body

GOLDEN = pathlib.Path(__file__).resolve().parents[2] / "test" / "golden" / "ipc" / "replies.json"
REPLIES = json.loads(GOLDEN.read_text())


def accepts(case) -> bool:
    request = case.get("request", REPLIES["request"])
    try:
        check_result_body(case["body"], request["frames"], request["closesWindow"])
    except ModelOutputError:
        return False
    return True


class RepliesTest(unittest.TestCase):
    def test_every_golden_case_is_judged_as_the_server_judges_it(self):
        self.assertGreater(len(REPLIES["cases"]), 20)
        for case in REPLIES["cases"]:
            with self.subTest(case["name"]):
                self.assertEqual(accepts(case), case["valid"])

    def test_states_are_the_servers(self):
        source = (GOLDEN.parents[3] / "src" / "ipc" / "messages.ts").read_text()
        listed = source.split("MODEL_STATES = [", 1)[1].split("]", 1)[0]
        self.assertEqual(tuple(s.strip().strip("'") for s in listed.split(",")), STATES)


class ValidateResultTest(unittest.TestCase):
    def test_a_boolean_score_breaks_the_contract(self):
        unit = Unit(frames=[], closes_window=False)
        with self.assertRaisesRegex(ModelOutputError, "finite number"):
            validate_result(unit, UnitResult([], UnitOutcome(True, "focused")))
        validate_result(unit, UnitResult([], UnitOutcome(100, "focused")))


if __name__ == "__main__":
    unittest.main()
