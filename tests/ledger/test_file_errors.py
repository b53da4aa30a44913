"""A refused file's problems are codes with parameters, said in Vietnamese or English (ledger/file_errors.py).

The English sentences are the ones the ledger has always printed (test_close.py, test_money.py and
test_topups.py pin them); here: every code has both languages with the same parameters, every
code the ledger raises is in the table, and no sentence in either language quotes a cell that
could be a citizen id. Ids are the factories' made-up ones.
"""
from __future__ import annotations

import io
import re
import string
from datetime import date
from pathlib import Path

import pytest

from ledger.close import TierImportError, import_tier_records, read_tier_records
from ledger.file_errors import LANGS, PHRASES, TEXTS, Cell, FileProblem, cell
from ledger.files import CsvFile, FileFormatError
from ledger.money import PaymentError, read_payments
from tests.ledger.factories import WORKER_A, WORKER_B

LEDGER = Path(__file__).resolve().parents[2] / "ledger"
BANK_HEADER = b"date,amount_vnd,payer,reference,bank_ref\n"


def fields(template: str) -> set[str]:
    return {name for _text, name, _spec, _conversion in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("table", [TEXTS, PHRASES], ids=["codes", "phrases"])
def test_every_code_and_phrase_has_both_languages_with_the_same_parameters(table):
    for code, words in table.items():
        assert set(words) == set(LANGS), code
        assert all(words[lang].strip() for lang in LANGS), code
        if code == "csv_newline":  # English quotes the csv module's own words; Vietnamese says what they mean
            assert fields(words["en"]) - fields(words["vi"]) == {"detail"}
            continue
        assert fields(words["vi"]) == fields(words["en"]), code
    assert all(words["vi"] != words["en"] for words in table.values())


def sample(value_name: str):
    """A parameter value of the right shape for a field name of the templates."""
    return {"value": cell("x"), "ref": cell("VCB-1", quoted=False), "paid_on": date(2026, 3, 1),
            "today": date(2026, 2, 3), "known": ["other", "poor"], "missing": ["tier"], "unknown": [cell("a")],
            "repeated": [], "detail": "details", "version": "vn-pilot@2026-01-01",
            "expected": 3 if value_name == "expected" else "a,b", "prefix": "ASW"}.get(value_name, 7)


def test_every_code_renders_in_both_languages_with_its_line():
    for code, words in TEXTS.items():
        params = {name: sample(name) for name in fields(words["en"]) if name != "problems"}
        if code == "header_columns":
            params.update(missing=["tier"], unknown=[cell("a")], repeated=[], expected="a,b")
        problem = FileProblem(code, 12, None, params)
        assert problem.text("en").startswith("line 12: ") and problem.text("vi").startswith("dòng 12: "), code
        assert "{" not in problem.text("en") + problem.text("vi"), code


def test_every_code_the_ledger_raises_is_in_the_table_and_every_code_of_the_table_is_raised():
    raised = set()
    for module in LEDGER.glob("*.py"):
        if module.name == "file_errors.py":
            continue
        text = module.read_text(encoding="utf-8")
        for line in text.splitlines():  # FileProblem("code", …), refused(…, "code", …), code = "a" if … else "b"
            if re.search(r'FileProblem\(\s*"|refused\(number, payment, "|^\s*code = "', line):
                raised |= set(re.findall(r'"([a-z][a-z0-9_]+)"', line)) & set(TEXTS) | \
                    set(re.findall(r'(?:FileProblem\(|payment, )"([a-z][a-z0-9_]+)"', line))
    raised |= {"header_columns"}  # made by file_errors.header_problem, which check_header calls
    assert raised == set(TEXTS)


def test_a_cell_that_could_be_a_citizen_id_is_described_never_quoted():
    assert cell("2026-13") == Cell("'2026-13'", 7, False)
    assert cell(WORKER_A).shown is None and cell(f"CK {WORKER_A}").shown is None
    assert cell("１２３４５６７８９０１２").shown is None  # full-width digits are digits too
    assert cell(WORKER_A).text("en") == "a 12-digit number (not shown)"
    assert cell(WORKER_A).text("vi") == "một số có 12 chữ số (không hiển thị)"
    assert cell(f"CK {WORKER_A}").text("en") == "a text of 15 characters (not shown)"
    assert cell("VCB-2026-03-15-1500", quoted=False).text("en") == "VCB-2026-03-15-1500"  # runs under 9 digits


def all_texts(error) -> str:
    return "\n".join(problem.text(lang) for problem in error.problems for lang in LANGS)


def test_a_tiers_file_without_its_header_names_its_columns_but_not_the_id_in_its_first_row():
    with pytest.raises(TierImportError) as refused:
        read_tier_records(io.BytesIO(f"{WORKER_A},poor,2026-01\n".encode()), "tiers.csv")
    (problem,) = refused.value.problems
    assert (problem.code, problem.line, problem.field) == ("header_columns", 1, "header")
    assert WORKER_A not in all_texts(refused.value) and WORKER_A not in str(problem.as_json())
    assert "unknown columns a 12-digit number (not shown), 'poor', '2026-01'" in problem.text("en")
    assert "các cột không rõ một số có 12 chữ số (không hiển thị), 'poor', '2026-01'" in problem.text("vi")


def test_a_tiers_file_with_its_columns_swapped_is_refused_by_line_in_both_languages_without_the_ids(ledger):
    records = [(2, ("poor", WORKER_A, "2026-01")), (3, (WORKER_B, "poor", WORKER_A)),
               (4, (WORKER_B, WORKER_A, "2026-01")), (5, (WORKER_B, "poor")), (6, (WORKER_B, "poor", "2026-01")),
               (7, (WORKER_B, "near_poor", "2026-01"))]
    with pytest.raises(TierImportError) as refused:
        import_tier_records(ledger, records, import_id="test")
    problems = refused.value.problems
    assert [(p.line, p.code, p.field) for p in problems] == [
        (2, "bad_national_id", "national_id"), (3, "bad_valid_from", "valid_from"), (4, "unknown_tier", "tier"),
        (5, "column_count", None), (7, "tier_conflict", "tier")]
    assert WORKER_A not in all_texts(refused.value) and WORKER_B not in all_texts(refused.value)
    assert [p.text("vi") for p in problems[1:]] == [
        "dòng 3: valid_from phải có dạng YYYY-MM, nhận được một số có 12 chữ số (không hiển thị)",
        "dòng 4: hạng một số có 12 chữ số (không hiển thị) không có trong vn-pilot@2026-01-01 "
        "(các hạng có: near_poor, other, poor)",
        "dòng 5: cần 3 cột, dòng này có 2",
        "dòng 7: hạng khác với dòng 6 cho cùng người lao động và cùng valid_from"]
    assert problems[4].text("en") == "line 7: a different tier for the same worker and valid_from as line 6"


def test_a_bad_bank_statement_is_refused_by_line_with_codes_and_vietnamese_figures():
    data = BANK_HEADER + (f"{WORKER_A},100,grab,,A\n"
                          "2026-02-01,100000000000000000,grab,,B\n"
                          "2026-02-01,100,grab,,has space\n"
                          "2026-02-01,100,,,C\n"
                          f"2026-02-01,100,worker,CK {WORKER_A},D\n"
                          "2026-02-01,100,grab\n").encode()
    with pytest.raises(PaymentError) as refused:
        read_payments(io.BytesIO(data), "bank.csv")
    problems = refused.value.problems
    assert [(p.line, p.code) for p in problems] == [
        (2, "bad_date"), (3, "bad_amount"), (4, "bad_bank_ref"), (5, "missing_payer"), (6, "topup_reference_missing"),
        (7, "column_count")]
    assert WORKER_A not in all_texts(refused.value)
    assert problems[1].text("vi") == ("dòng 3: amount_vnd phải là số nguyên VND từ 1 đến 1.000.000.000.000.000, "
                                      "nhận được một số có 18 chữ số (không hiển thị)")
    assert problems[1].text("en") == ("line 3: amount_vnd must be a whole number of VND between 1 and "
                                      "1,000,000,000,000,000, got a 18-digit number (not shown)")
    assert problems[5].as_json() == {"code": "column_count", "line": 7, "params": {"expected": 5, "got": 3}}


def test_a_problem_of_the_file_itself_keeps_its_english_line_and_says_it_in_vietnamese():
    with pytest.raises(FileFormatError) as refused:
        list(CsvFile(io.BytesIO(b"national_id,tier,valid_from\n" + b"x" * 140_000 + b",poor,2026-01\n"),
                     "tiers.csv", ("national_id", "tier", "valid_from")))
    assert str(refused.value) == "tiers.csv: line 2: cell: longer than 131,072 characters"
    assert refused.value.text("vi") == "tiers.csv: dòng 2: một ô dài hơn 131.072 ký tự"
    assert (refused.value.line, refused.value.field, refused.value.problem.code) == (2, "cell", "cell_too_long")


def test_a_payment_of_a_batch_is_named_by_its_number_and_its_bank_reference():
    problem = FileProblem("future_date", None, "date", {"paid_on": date(2026, 3, 1), "today": date(2026, 2, 3)},
                          item=2, ref=cell("VCB-T1", quoted=False))
    assert problem.text("en") == "payment 2 (VCB-T1): dated 2026-03-01, after today 2026-02-03"
    assert problem.text("vi") == "khoản 2 (VCB-T1): ghi ngày 01/03/2026, sau ngày hôm nay (03/02/2026)"
    assert FileProblem("topup_unknown_worker", 4, ref=cell(WORKER_A, quoted=False)).text("en").startswith(
        "line 4 (a 12-digit number (not shown)): ")
