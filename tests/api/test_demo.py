"""`ansinh demo --keep DIR`: the month is kept, and the demo ends with commands that work on it."""
from __future__ import annotations

import shlex
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from api.cli import app
from api.demo import DEMO_MONTH

runner = CliRunner()


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo kept")  # a space in the path: the printed commands quote it
    result = runner.invoke(app, ["demo", "--workers", "40", "--events", "800", "--seed", "11", "--keep", str(folder)])
    assert result.exit_code == 0, result.output
    return folder, result.stdout.rstrip("\n").splitlines()


def block_of(lines: list[str]) -> list[list[str]]:
    """The `try next` block: every line after its heading, as shell words (comments dropped)."""
    start = max(index for index, line in enumerate(lines) if line.startswith("try next"))
    return [shlex.split(line, comments=True) for line in lines[start + 1:]]


def test_the_demo_ends_with_a_try_next_block_naming_the_kept_ledger(kept):
    folder, lines = kept
    database = (folder / "ansinh.db").resolve()
    assert database.is_file()
    assert lines[-8] == f"try next, on the kept ledger {database}:"
    commands = block_of(lines)
    assert [words[1] for words in commands if words[0] == "ansinh"] == [
        "statement", "statement", "settlement", "bills", "verify", "simulate"]
    assert commands[5] == [f"ANSINH_DATABASE_URL=sqlite:///{database}", "ansinh", "serve", "--demo"]
    assert Path(commands[6][2]).is_file()  # the scenario: a real, absolute path


def test_the_try_next_verify_and_statement_commands_work_on_the_kept_ledger(kept):
    _folder, lines = kept
    commands = block_of(lines)
    verified = runner.invoke(app, commands[4][1:])
    assert commands[4][1] == "verify"
    assert verified.exit_code == 0, verified.output
    assert "FAIL" not in verified.stdout and "hash_chain_intact" in verified.stdout
    assert commands[0][1:2] == ["statement"] and "--events" not in commands[0]
    statement = runner.invoke(app, [*commands[0][1:], "--json"])
    assert statement.exit_code == 0, statement.output
    shown = orjson.loads(statement.stdout)
    assert shown["month"] == DEMO_MONTH and shown["national_id"] == commands[0][2]
    assert shown["schemes"]["si"]["subsidy"] > 0  # the demo shows the worker with the largest subsidy


def test_without_keep_the_demo_suggests_keeping_its_ledger():
    result = runner.invoke(app, ["demo", "--workers", "20", "--events", "200", "--seed", "3"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.rstrip("\n").splitlines()
    assert lines[-3] == "try next:"
    assert shlex.split(lines[-2], comments=True) == ["ansinh", "demo", "--keep", "ansinh-demo"]
