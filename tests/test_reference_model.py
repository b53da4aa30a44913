"""The reference model itself, checked against the shared acceptance vectors.

The vectors were derived from RULES.md by another independent implementation, so a
model that reproduces every outcome, statement and settlement in them is a second
opinion worth trusting when it disagrees with the ledger.
"""
from __future__ import annotations

import csv
import json

from tests.reference_model import ReferenceModel


def parsed(line: str) -> object:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return "<not JSON>"  # any non-object is `malformed`


def test_the_reference_model_reproduces_every_figure_of_the_shared_acceptance_vectors(shared_dir):
    folder = shared_dir / "spec" / "vectors"
    model = ReferenceModel()
    for step in (folder / "steps.txt").read_text(encoding="utf-8").splitlines():
        words = step.split()
        if not words:
            continue
        if words[0] == "ingest":
            lines = [line for line in (folder / words[1]).read_text(encoding="utf-8").splitlines() if line.strip()]
            expected = json.loads((folder / words[1].replace(".ndjson", ".outcomes.json")).read_text())
            assert [model.ingest(parsed(line)) for line in lines] == expected, words[1]
        elif words[:2] == ["tiers", "import"]:
            with (folder / words[2]).open(newline="", encoding="utf-8") as stream:
                model.import_tiers([(row["national_id"], row["tier"], row["valid_from"])
                                    for row in csv.DictReader(stream)])
        elif words[0] == "close":
            model.close(words[1])
        else:
            raise AssertionError(f"unknown step {step!r}")
    checked = 0
    for line in (folder / "statements.ndjson").read_text(encoding="utf-8").splitlines():
        want = json.loads(line)
        assert model.statement(want["national_id"], want["month"]) == want
        checked += 1
    for line in (folder / "settlements.ndjson").read_text(encoding="utf-8").splitlines():
        want = json.loads(line)
        assert model.settlement(want["month"]) == want
        checked += 1
    assert checked == 85
