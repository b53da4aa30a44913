"""docs/events.md cannot drift: every example there is sent through `ansinh ingest` and gets
the outcomes written above it, and every reason quoted there is the code's English sentence."""
from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from api.cli import app
from api.reasons import CODES, REASONS, reason

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
runner = CliRunner()
EXAMPLE = re.compile(r"<!-- outcomes: (?P<expect>[^>]*?) -->\n```ndjson\n(?P<body>.*?)```", re.S)
SECTION = re.compile(r"^### `(?P<code>[a-z_]+)`\n(?P<text>.*?)(?=^### |^## |\Z)", re.S | re.M)


def examples() -> list[tuple[str, list[str], str]]:
    text = DOC.read_text(encoding="utf-8")
    found = []
    for match in EXAMPLE.finditer(text):
        heading = text.rfind("\n#", 0, match.start())
        title = text[heading + 1:text.index("\n", heading + 1)].lstrip("#").strip()
        found.append((title, match["expect"].split(), match["body"]))
    return found


def sections() -> dict[str, str]:
    return {match["code"]: match["text"] for match in SECTION.finditer(DOC.read_text(encoding="utf-8"))}


def expected(token: str) -> tuple[str, str | None, str | None]:
    """`accepted@2026-02/2026-01` -> (code, booked_month, occurred_month)."""
    code, _, months = token.partition("@")
    booked, _, occurred = months.partition("/")
    return code, booked or None, occurred or None


def test_every_outcome_code_has_a_section_and_every_section_but_the_streams_an_example_ending_in_it():
    found = sections()
    assert list(found) == list(CODES)  # the order of RULES.md §1, as api.reasons lists them
    for code, text in found.items():
        blocks = list(EXAMPLE.finditer(text))
        if code == "platform_mismatch":  # the stream's own refusal: no file or batch can get it
            assert blocks == []
            continue
        assert len(blocks) == 1, code
        assert expected(blocks[0]["expect"].split()[-1])[0] == code


def test_every_reason_quoted_in_the_doc_is_the_codes_english_sentence():
    for code, text in sections().items():
        quoted = re.findall(r"^> (.+)$", text, re.M)
        if code == "accepted":
            assert quoted == [reason("accepted", "en", "2026-02")] == ["Booked in February 2026."]
        else:
            assert quoted == [REASONS["en"][code]], code
    late = DOC.read_text(encoding="utf-8").split("## Late bookings", 1)[1].split("\n## ", 1)[0]
    assert reason("accepted", "en", "2026-02", "2026-01") in re.findall(r"^> (.+)$", late, re.M)


@pytest.mark.parametrize("title, expect, body", examples(), ids=[title for title, _e, _b in examples()])
def test_each_example_of_the_doc_gets_its_outcomes_from_ansinh_ingest(tmp_path, title, expect, body):
    db = f"sqlite:///{tmp_path / 'doc.db'}"
    got: list[dict] = []
    sends: list[list[str]] = [[]]
    for line in body.splitlines():
        if line.startswith("#"):
            command = re.search(r"ansinh (close \d{4}-\d{2})", line)
            assert command, f"a comment line of {title!r} that is no step the test can take: {line}"
            sends.append(["ansinh", *command[1].split()])
            sends.append([])
        else:
            sends[-1].append(line)
    for number, send in enumerate(sends):
        if send and send[0] == "ansinh":
            result = runner.invoke(app, [*send[1:], "--db", db])
            assert result.exit_code == 0, result.output
        elif send:
            source, out = tmp_path / f"send-{number}.ndjson", tmp_path / f"send-{number}.out"
            source.write_text("\n".join(send) + "\n", encoding="utf-8")
            result = runner.invoke(app, ["ingest", str(source), "--outcomes", str(out), "--lang", "en", "--db", db])
            assert result.exit_code == 0, result.output
            got += [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [(o["outcome"], o["booked_month"], o["occurred_month"]) for o in got] == [expected(t) for t in expect]
    for outcome in got:
        code = outcome["outcome"]
        if code != "accepted":
            assert outcome["reason"] == REASONS["en"][code]
