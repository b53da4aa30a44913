"""The money side of settlement: bills, state claims, late interest and payments received.

A month close (`ledger.close.close_month`) calls `bill_month` in its own transaction:

1. one **bill** per platform with dues booked in the month — the settlement's total, due on
   the pack's `payment_due_day` of the next month, with a payment reference
   (`bill_reference`);
2. one **claim** row per subsidised scheme — the state's subsidy of the month;
3. **late interest** for the month on every platform bill still unpaid after its due
   date, booked as its own entry (platform receivable against late-interest income).

`record_payments` books money received (a bank statement line, or `POST /v1/payments`):
one balanced entry, bank against the payer's receivable, never twice for one bank
reference. Which bills a payment settles is not stored but *replayed* (`replay`) from the
append-only `money_record` rows in id order — by reference first, then oldest first,
the rest kept as credit that settles the next bill — so the allocation, the arrears,
the interest and a platform's statement of account are a pure function of the rows
(docs/payments.md). `verify` re-runs it.
"""
from __future__ import annotations

import calendar
import hashlib
import hmac
import re
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any, Iterable, Sequence

from ledger.accounts import NO_PARTY, NO_SCHEME, PARTY_CODE, SCHEME_CODE, SCHEME_NAME, AccountKind, EntryType
from ledger.books import Ledger, iso_utc
from ledger.events import VIETNAM_TZ, month_text, next_month, parse_month
from ledger.file_errors import FileProblem, FileProblems, cell
from ledger.files import CsvFile, FileFormatError
from ledger.identity import IdentityKeys
from ledger.postings import BlockWritten, write_block
from ledger.store import fetch_in, insert_rows, lock_chain_head, query
from rules import RulesVersion, late_interest_vnd

BILL, CLAIM, INTEREST, PAYMENT = "bill", "claim", "interest", "payment"
#: money a worker paid in (RULES.md §11): `payer_id` is the worker's row id, never replayed against bills
TOPUP = "topup"
STATE = 0  # payer id of the state budget (platforms use their row id, from 1)
STATE_NAMES = ("state", "state_budget")
_PLATFORM_ACCOUNT, _STATE_ACCOUNT = int(AccountKind.platform), int(AccountKind.state)
_BANK, _INTEREST_ACCOUNT = int(AccountKind.bank), int(AccountKind.late_interest)
_STATE_PARTY = PARTY_CODE["state"]
_WORKER_ACCOUNT, _WORKER_PARTY, _SI = int(AccountKind.worker), PARTY_CODE["worker"], SCHEME_CODE["si"]
RECORD_COLUMNS = ("id", "kind", "payer_id", "month", "scheme", "amount_vnd", "issued_on", "due_on", "reference",
                  "bank_ref", "bill_id", "days", "entry_id", "recorded_at")
MAX_PAYMENT_VND = 10**15
_REFERENCE = re.compile(r"AS(\d{6})(P\d{4}|NS)(\d{2})", re.ASCII)


class PaymentError(FileProblems):
    """Payments that cannot be booked; nothing of the batch was booked. One problem per bad line
    (`problems`: codes and parameters, said in vi or en; `errors`: the English sentences)."""


class PaymentFieldError(ValueError):
    """One payment's field is wrong (`parse_payment`); `str()` is the English sentence."""

    def __init__(self, problem: FileProblem) -> None:
        super().__init__(problem.message("en"))
        self.problem = problem


# -- references ------------------------------------------------------------------------------------

def _check_digits(body: str) -> str:
    """ISO 7064 MOD 97-10 (as in an IBAN): a mistyped digit in a bank memo is caught."""
    number = int("".join(str(int(char, 36)) for char in body))
    return f"{98 - (number * 100) % 97:02d}"


def bill_reference(month: int, platform_id: int) -> str:
    body = f"AS{month:06d}P{platform_id:04d}"
    return body + _check_digits(body)


def claim_reference(month: int) -> str:
    body = f"AS{month:06d}NS"
    return body + _check_digits(body)


# -- worker top-up references ----------------------------------------------------------------------
#
# `ASW` + 13 digits + 2 check digits, e.g. `ASW048213377120946`. The 13 digits are the worker's row
# id put through a keyed permutation of 0 … 2^40 − 1 (an 8-round Feistel network under the key
# `topup-reference/v1`), so the reference says nothing of the CCCD, nor of the row id, nor of how
# many workers the books hold, and a guessed reference almost never names a worker (the books hold
# far fewer than the 10^12 references there are). The ledger turns it back into the row id with the
# same key: nothing is stored. The check digits are those of a bill (MOD 97-10): a mistyped digit,
# or two neighbours swapped, is refused rather than taken for another worker.

TOPUP_PREFIX = "ASW"
WORKER_NAMES = ("worker",)
_TOPUP_BITS, _TOPUP_ROUNDS = 40, 8
_TOPUP_HALF = (1 << (_TOPUP_BITS // 2)) - 1
_TOPUP_DIGITS = len(str((1 << _TOPUP_BITS) - 1))  # 13
_TOPUP_REFERENCE = re.compile(rf"{TOPUP_PREFIX}(\d{{{_TOPUP_DIGITS}}})(\d{{2}})", re.ASCII)


def _round(key: bytes, number: int, half: int) -> int:
    digest = hmac.new(key, bytes((number,)) + half.to_bytes(4, "big"), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big") & _TOPUP_HALF


def _permute(key: bytes, value: int, *, inverse: bool = False) -> int:
    left, right = value >> (_TOPUP_BITS // 2), value & _TOPUP_HALF
    if inverse:
        for number in reversed(range(_TOPUP_ROUNDS)):
            left, right = right ^ _round(key, number, left), left
    else:
        for number in range(_TOPUP_ROUNDS):
            left, right = right, left ^ _round(key, number, right)
    return (left << (_TOPUP_BITS // 2)) | right


def topup_reference(keys: IdentityKeys, worker_id: int) -> str:
    """The payment reference a worker writes in the memo of a top-up (statement `topup_reference`)."""
    if not 0 < worker_id < 1 << _TOPUP_BITS:
        raise ValueError(f"worker row id {worker_id} has no top-up reference")
    body = f"{TOPUP_PREFIX}{_permute(keys.reference_key, worker_id):0{_TOPUP_DIGITS}d}"
    return body + _check_digits(body)


def topup_reference_in(memo: str | None) -> str | None:
    """The first well-formed top-up reference in a memo (spaces, dashes, case ignored), check digits right."""
    if not memo:
        return None
    squeezed = re.sub(r"[^A-Z0-9]", "", memo.upper())
    for found in _TOPUP_REFERENCE.finditer(squeezed):
        body = found.group(0)[:-2]
        if _check_digits(body) == found.group(2):
            return found.group(0)
    return None


def topup_worker_id(keys: IdentityKeys, reference: str) -> int | None:
    """The worker row id a well-formed reference stands for (None: no worker could have it); whether
    that worker is in the books is the caller's question."""
    found = _TOPUP_REFERENCE.fullmatch(reference)
    if found is None:
        return None
    value = int(found.group(1))
    if value >> _TOPUP_BITS:
        return None
    worker_id = _permute(keys.reference_key, value, inverse=True)
    return worker_id or None


def amount_to_complete(statement: dict[str, Any]) -> int:
    """What a worker would pay to complete their next month (`month_to_complete`): a top-up of it
    brings the pool to that month's floor, so the next close credits it.

    With pooled crediting (RULES.md §11) the statement carries `next_credit_needs_vnd`, and that
    is the answer. A statement without it (an older shape): the per-month rule, the floor of the
    statement's month (`pension_floor_contribution_vnd`) minus the month's own `si` so far.
    """
    if statement.get("next_credit_needs_vnd") is not None:
        return max(0, int(statement["next_credit_needs_vnd"]))
    floor = (statement.get("pension") or {}).get("floor_contribution_vnd")
    if floor is None:
        return 0
    return max(0, int(floor) - int(statement["schemes"]["si"]["worker"]))


def month_to_complete(statement: dict[str, Any]) -> str:
    """The month `amount_to_complete` completes: the next month to credit (`pension.next_month`),
    else the statement's own month."""
    return (statement.get("pension") or {}).get("next_month") or statement["month"]


def reference_in(memo: str | None) -> str | None:
    """The first well-formed bill or claim reference in a bank memo (spaces, dashes, case ignored)."""
    if not memo:
        return None
    squeezed = re.sub(r"[^A-Z0-9]", "", memo.upper())
    for found in _REFERENCE.finditer(squeezed):
        body = found.group(0)[:-2]
        if _check_digits(body) == found.group(3):
            return found.group(0)
    return None


# -- the records and their replay ------------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    id: int
    kind: str
    payer_id: int
    month: int | None
    scheme: int
    amount_vnd: int
    issued_on: date
    due_on: date | None
    reference: str | None
    bank_ref: str | None
    bill_id: int | None
    days: int | None
    entry_id: int | None

    @classmethod
    def from_row(cls, row: Sequence) -> "Record":
        (record_id, kind, payer_id, month, scheme, amount, issued_on, due_on, reference, bank_ref, bill_id, days,
         entry_id) = row[:13]
        return cls(int(record_id), kind, int(payer_id), month, int(scheme), int(amount),
                   date.fromisoformat(issued_on), date.fromisoformat(due_on) if due_on else None, reference,
                   bank_ref, bill_id, days, entry_id)

    @property
    def is_item(self) -> bool:
        """Something owed (a bill, a claim line, interest), as opposed to money received."""
        return self.kind != PAYMENT


@dataclass(frozen=True)
class Allocation:
    item_id: int
    source_id: int  # the payment, or the item itself when settled from credit
    amount_vnd: int
    paid_on: date


@dataclass
class PayerBook:
    """One payer's bills, interest and claims, and how its payments settle them (a replay)."""

    payer_id: int
    items: dict[int, Record] = field(default_factory=dict)
    outstanding: dict[int, int] = field(default_factory=dict)
    allocations: list[Allocation] = field(default_factory=list)
    payments: list[Record] = field(default_factory=list)
    #: money received and not yet owed, as lots [VND, day it was there, the payment or credit note]:
    #: each settles the next bills in turn, as paid on its own day (so a late bill earns no interest on it)
    credit_lots: list[list] = field(default_factory=list)
    unmatched: list[int] = field(default_factory=list)  # payments whose memo named no bill or claim of theirs

    @property
    def credit_vnd(self) -> int:
        return sum(lot[0] for lot in self.credit_lots)

    @property
    def owed_vnd(self) -> int:
        """Bills + interest (or claims) − payments: what the payer still owes; negative = in credit."""
        return sum(self.outstanding.values()) - self.credit_vnd

    def allocated_to(self, item_id: int) -> list[Allocation]:
        return [allocation for allocation in self.allocations if allocation.item_id == item_id]

    def _settle(self, item_id: int, source_id: int, available: int, paid_on: date) -> int:
        amount = min(available, self.outstanding.get(item_id, 0))
        if amount > 0:
            self.outstanding[item_id] -= amount
            self.allocations.append(Allocation(item_id, source_id, amount, paid_on))
        return amount

    def _from_credit(self, item_id: int) -> None:
        while self.credit_lots and self.outstanding.get(item_id, 0) > 0:
            lot = self.credit_lots[0]
            lot[0] -= self._settle(item_id, lot[2], lot[0], lot[1])
            if lot[0] == 0:
                self.credit_lots.pop(0)

    def _oldest_first(self) -> list[Record]:
        return sorted(self.items.values(), key=lambda item: (item.due_on or item.issued_on, item.id))

    def add(self, record: Record) -> None:
        if record.is_item:
            self.items[record.id] = record
            if record.amount_vnd < 0:  # a credit note: refunds booked in the month exceeded the dues
                self.outstanding[record.id] = 0
                self.credit_lots.append([-record.amount_vnd, record.issued_on, record.id])
                for item in self._oldest_first():  # it settles what is still open, as a payment would
                    self._from_credit(item.id)
                return
            self.outstanding[record.id] = record.amount_vnd
            self._from_credit(record.id)
            return
        self.payments.append(record)
        left = record.amount_vnd
        reference = reference_in(record.reference)
        named = [item for item in self.items.values() if reference is not None and item.reference == reference]
        if not named:
            self.unmatched.append(record.id)
        for item in [*named, *self._oldest_first()]:
            if left == 0:
                break
            left -= self._settle(item.id, record.id, left, record.issued_on)
        if left:
            self.credit_lots.append([left, record.issued_on, record.id])


def replay(records: Iterable[Record]) -> dict[int, PayerBook]:
    """Every payer's book from the records, in id order (the only allocation rule there is)."""
    books: dict[int, PayerBook] = {}
    for record in sorted(records, key=lambda r: r.id):
        books.setdefault(record.payer_id, PayerBook(record.payer_id)).add(record)
    return books


def load_records(conn, *, up_to_id: int | None = None, payer_id: int | None = None,
                 kinds: Sequence[str] | None = None) -> list[Record]:
    """Money records in id order; by default the platforms' and the state's (a worker's top-up
    settles no bill: its `payer_id` is a worker's row id, so it is read only when asked for)."""
    where, params = [f"kind <> '{TOPUP}'"] if kinds is None else [f"kind IN ({', '.join('?' for _ in kinds)})"], []
    params.extend(kinds or ())
    if up_to_id is not None:
        where.append("id <= ?")
        params.append(up_to_id)
    if payer_id is not None:
        where.append("payer_id = ?")
        params.append(payer_id)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return [Record.from_row(row) for row in query(conn, f"SELECT {', '.join(RECORD_COLUMNS[:13])} FROM money_record"
                                                        f"{clause} ORDER BY id", params)]


def _next_record_id(conn) -> int:
    return (query(conn, "SELECT coalesce(max(id), 0) FROM money_record")[0][0] or 0) + 1


def _insert_records(conn, records: Sequence[Record], recorded_at: str) -> None:
    insert_rows(conn, "money_record", RECORD_COLUMNS, [
        (r.id, r.kind, r.payer_id, r.month, r.scheme, r.amount_vnd, r.issued_on.isoformat(),
         r.due_on.isoformat() if r.due_on else None, r.reference, r.bank_ref, r.bill_id, r.days, r.entry_id,
         recorded_at) for r in records])


def local_day(ledger: Ledger) -> date:
    return ledger.clock().astimezone(VIETNAM_TZ).date()


# -- at month close ----------------------------------------------------------------------------------

def due_date(month: int, version: RulesVersion) -> date:
    """Dues of `month` are paid by the pack's `payment_due_day` of the next month."""
    following = next_month(month)
    return date(following // 100, following % 100, version.payment_due_day)


def interest_for_month(books: dict[int, PayerBook], month: int, rate_ppm: int) -> list[tuple[Record, int, int]]:
    """(bill, overdue days, interest) for every platform bill unpaid after its due date in `month`.

    On each day after the due date, what is unpaid counts if no payment dated before that
    day settled it (a bill paid on the 25th and due on the 15th is late for 10 days).
    """
    first = date(month // 100, month % 100, 1)
    days_in_month = calendar.monthrange(first.year, first.month)[1]
    last = first + timedelta(days=days_in_month - 1)
    charges = []
    for payer_id, book in sorted(books.items()):
        if payer_id == STATE:
            continue
        for bill in sorted(book.items.values(), key=lambda item: item.id):
            if bill.kind != BILL or bill.amount_vnd <= 0 or bill.due_on is None or bill.due_on >= last:
                continue
            paid = sorted(book.allocated_to(bill.id), key=lambda a: a.paid_on)
            day = max(first, bill.due_on + timedelta(days=1))
            overdue_day_vnd, overdue_days = 0, 0
            while day <= last:
                unpaid = bill.amount_vnd - sum(a.amount_vnd for a in paid if a.paid_on < day)
                if unpaid > 0:
                    overdue_day_vnd += unpaid
                    overdue_days += 1
                day += timedelta(days=1)
            interest = late_interest_vnd(overdue_day_vnd, rate_ppm, days_in_month)
            if interest > 0:
                charges.append((bill, overdue_days, interest))
    return charges


@dataclass(frozen=True)
class MonthBilled:
    bills: int
    bills_vnd: int
    claims_vnd: int
    interest_vnd: int
    written: BlockWritten | None


def bill_month(conn, ledger: Ledger, month: int, version: RulesVersion, version_row_id: int,
               subsidy_by_scheme: dict[str, int], head: tuple[bytes, int]) -> MonthBilled:
    """Bills, the state claim and the month's late interest, inside the close's transaction."""
    today = local_day(ledger)
    recorded_at = iso_utc(ledger.clock())
    # Dues booked in M; the first close also bills months booked before it (they close with it, RULES.md §3).
    billed_up_to = query(conn, "SELECT coalesce(max(month), 0) FROM money_close")[0][0]
    dues = query(conn, "SELECT platform_id, sum(worker_vnd + platform_vnd) FROM platform_month "
                       "WHERE month > ? AND month <= ? GROUP BY platform_id ORDER BY platform_id",
                 (billed_up_to, month))
    next_id = _next_record_id(conn)
    new: list[Record] = []
    for platform_id, amount in dues:
        new.append(Record(next_id, BILL, int(platform_id), month, NO_SCHEME, int(amount), today,
                          due_date(month, version), bill_reference(month, int(platform_id)), None, None, None, None))
        next_id += 1
    for scheme in sorted(subsidy_by_scheme, key=SCHEME_CODE.get):
        if subsidy_by_scheme[scheme]:
            new.append(Record(next_id, CLAIM, STATE, month, SCHEME_CODE[scheme], subsidy_by_scheme[scheme], today,
                              due_date(month, version), claim_reference(month), None, None, None, None))
            next_id += 1
    books = replay([*load_records(conn), *new])
    charges = interest_for_month(books, month, version.late_interest_ppm_per_month)
    entries = [(EntryType.late_interest, None, None, None, None, None, interest, None, month, month, version_row_id, None,
                ((_PLATFORM_ACCOUNT, bill.payer_id, NO_SCHEME, NO_PARTY, interest),
                 (_INTEREST_ACCOUNT, bill.payer_id, NO_SCHEME, NO_PARTY, -interest)))
               for bill, _days, interest in charges]
    written = write_block(conn, entries, recorded_at=recorded_at, head=head) if entries else None
    for offset, (bill, days, interest) in enumerate(charges):
        new.append(Record(next_id, INTEREST, bill.payer_id, month, NO_SCHEME, interest, today, today,
                          bill.reference, None, bill.id, days, written.first_entry_id + offset))
        next_id += 1
    _insert_records(conn, new, recorded_at)
    totals = MonthBilled(sum(1 for r in new if r.kind == BILL), sum(r.amount_vnd for r in new if r.kind == BILL),
                         sum(r.amount_vnd for r in new if r.kind == CLAIM),
                         sum(r.amount_vnd for r in new if r.kind == INTEREST), written)
    insert_rows(conn, "money_close", ("month", "last_record_id", "bills_vnd", "claims_vnd", "interest_vnd"),
                [(month, next_id - 1, totals.bills_vnd, totals.claims_vnd, totals.interest_vnd)])
    return totals


# -- payments received -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PaymentIn:
    """One line of a bank statement (CSV or JSON): who paid how much, when, with which memo."""

    paid_on: date
    amount_vnd: int
    payer: str
    reference: str
    bank_ref: str


@dataclass(frozen=True)
class PaymentOutcome:
    bank_ref: str
    status: str  # booked | duplicate
    payer: str
    amount_vnd: int
    matched_reference: str | None
    settled: dict[str, int]  # reference of each bill / claim / interest → VND of this payment
    credit_vnd: int  # kept as credit for the next bill
    booked_month: str | None = None  # YYYY-MM the entry is booked in (None: a duplicate, booked before)

    def as_dict(self) -> dict[str, Any]:
        return {"bank_ref": self.bank_ref, "status": self.status, "payer": self.payer, "amount_vnd": self.amount_vnd,
                "matched_reference": self.matched_reference, "settled": self.settled, "credit_vnd": self.credit_vnd,
                "booked_month": self.booked_month}


PAYMENT_HEADER = ["date", "amount_vnd", "payer", "reference", "bank_ref"]


def read_payments_csv(path: str | Path) -> list[tuple[int, PaymentIn]]:
    """A bank statement as CSV (`date,amount_vnd,payer,reference,bank_ref`); every bad line is named."""
    with Path(path).open("rb") as stream:
        return read_payments(stream, Path(path).name)


def read_payments(stream: IO[bytes], source: str) -> list[tuple[int, PaymentIn]]:
    """`read_payments_csv` over an open stream (the insurer's upload page reads the same way):
    `(line, payment)` for every line, or PaymentError naming every bad line."""
    try:
        file = CsvFile(stream, source, PAYMENT_HEADER)  # BOM dropped, columns in any order
        rows = list(file)
    except FileFormatError as error:
        raise PaymentError([error.problem]) from None
    errors: list[FileProblem] = []
    payments: list[tuple[int, PaymentIn]] = []
    for line, row in rows:
        if len(row) != len(PAYMENT_HEADER):
            errors.append(FileProblem("column_count", line, None, {"expected": len(PAYMENT_HEADER), "got": len(row)}))
            continue
        try:
            fields = dict(zip(PAYMENT_HEADER, (value.strip() for value in file.aligned(row))))
            payments.append((line, parse_payment(fields)))
        except PaymentFieldError as error:
            errors.append(error.problem.located(line=line))
    if errors:
        raise PaymentError(errors)
    return payments


def parse_payment(fields: dict[str, Any]) -> PaymentIn:
    """Check one payment's fields (PaymentFieldError, a ValueError, names the field; a cell that
    could be a citizen id is described, never quoted)."""
    try:
        paid_on = date.fromisoformat(str(fields.get("date", "")))
    except ValueError:
        raise PaymentFieldError(FileProblem("bad_date", field="date", params={"value": cell(fields.get("date"))})) \
            from None
    raw_amount = fields.get("amount_vnd")
    amount = raw_amount if isinstance(raw_amount, int) and not isinstance(raw_amount, bool) else None
    if amount is None and isinstance(raw_amount, str) and re.fullmatch(r"[0-9]{1,16}", raw_amount):
        amount = int(raw_amount)  # ASCII digits only: `\d` and int() would read full-width １０００ as 1000
    if amount is None or not 0 < amount <= MAX_PAYMENT_VND:
        raise PaymentFieldError(FileProblem("bad_amount", field="amount_vnd", params={
            "max": MAX_PAYMENT_VND, "value": cell(raw_amount)}))
    payer = str(fields.get("payer") or "").strip()
    if not payer:
        raise PaymentFieldError(FileProblem("missing_payer", field="payer"))
    bank_ref = str(fields.get("bank_ref") or "").strip()
    if not re.fullmatch(r"[\x21-\x7e]{1,64}", bank_ref):
        raise PaymentFieldError(FileProblem("bad_bank_ref", field="bank_ref"))
    reference = str(fields.get("reference") or "")
    if len(reference) > 512:
        raise PaymentFieldError(FileProblem("reference_too_long", field="reference", params={"max": 512}))
    if payer in WORKER_NAMES and topup_reference_in(reference) is None:
        # The memo is not quoted: a worker may have written anything in it, their CCCD included.
        raise PaymentFieldError(FileProblem("topup_reference_missing", field="reference", params={
            "prefix": TOPUP_PREFIX, "digits": _TOPUP_DIGITS + 2}))
    return PaymentIn(paid_on, amount, payer, reference, bank_ref)


def record_payments(ledger: Ledger, payments: Sequence[PaymentIn],
                    lines: Sequence[int] | None = None, *, dry_run: bool = False) -> list[PaymentOutcome]:
    """Book money received, all or nothing; a bank reference already booked is a `duplicate`.

    A bank reference seen before with other figures, an unknown payer, a top-up reference that
    names no worker of these books or a date in the future refuse the whole batch (PaymentError),
    as a bank statement is either read whole or not at all. Errors name each payment by its
    number in the batch, or by its line of the file when `lines` gives them.

    A payment from a platform or the state credits its receivable and settles its bills (the
    replay). A worker's top-up (payer `worker`, RULES.md §11) credits that worker's `si` account
    with party `worker`: own contribution for the subsidy and the pool, in the month it is booked.
    Both are booked in the first open month on or after their date.

    `dry_run` runs every check and returns the outcomes booking would have, and writes nothing:
    the preview of the insurer's import page (the same code path, so the same checks).
    """
    recorded_at = iso_utc(ledger.clock())
    today = local_day(ledger)
    errors: list[FileProblem] = []

    def refused(number: int, payment: PaymentIn, code: str, field: str, **params: Any) -> None:
        """A problem of the batch's `number`th payment, at its line of the file when `lines` gives them."""
        errors.append(FileProblem(code, lines[number - 1] if lines is not None else None, field, params,
                                  None if lines is not None else number, cell(payment.bank_ref, quoted=False)))

    with ledger.engine.begin() as conn:
        head = lock_chain_head(conn)
        platforms = dict(query(conn, "SELECT name, id FROM platform"))
        names = {row_id: name for name, row_id in platforms.items()}
        # Only what this batch can touch: its bank references, the books of its payers, its workers.
        seen = {row[0]: row[1:] for row in fetch_in(conn, "SELECT bank_ref, kind, payer_id, amount_vnd, issued_on "
                                                          "FROM money_record WHERE bank_ref IN ({marks})",
                                                    {payment.bank_ref for payment in payments})}
        topup_workers = [topup_worker_id(ledger.keys, topup_reference_in(p.reference) or "")
                         if p.payer in WORKER_NAMES else None for p in payments]  # by position, not bank_ref
        workers = {int(row[0]) for row in fetch_in(conn, "SELECT id FROM worker WHERE id IN ({marks})",
                                                   {w for w in topup_workers if w is not None})}
        payer_ids = {STATE if p.payer in STATE_NAMES else platforms[p.payer] for p in payments
                     if p.payer in STATE_NAMES or p.payer in platforms}
        books = {payer_id: replay(load_records(conn, payer_id=payer_id)).get(payer_id, PayerBook(payer_id))
                 for payer_id in payer_ids}
        last_closed = query(conn, "SELECT max(month) FROM month_close")[0][0]
        next_id = _next_record_id(conn)
        outcomes: list[PaymentOutcome] = []
        entries: list[tuple] = []
        new: list[Record] = []
        for number, payment in enumerate(payments, start=1):
            topup = payment.payer in WORKER_NAMES
            if topup:
                payer_id = topup_workers[number - 1]
                if payer_id not in workers:
                    refused(number, payment, "topup_unknown_worker", "reference")
                    continue
            else:
                payer_id = STATE if payment.payer in STATE_NAMES else platforms.get(payment.payer)
            if payer_id is None:
                refused(number, payment, "unknown_payer", "payer", value=cell(payment.payer))
                continue
            if payment.paid_on > today:
                refused(number, payment, "future_date", "date", paid_on=payment.paid_on, today=today)
                continue
            kind = TOPUP if topup else PAYMENT
            known = seen.get(payment.bank_ref)
            if known is not None:
                if (known[0], int(known[1]), int(known[2]), known[3]) != (kind, payer_id, payment.amount_vnd,
                                                                           payment.paid_on.isoformat()):
                    refused(number, payment, "bank_ref_conflict", "bank_ref", ref=cell(payment.bank_ref, quoted=False))
                    continue
                outcomes.append(PaymentOutcome(payment.bank_ref, "duplicate", payment.payer, payment.amount_vnd,
                                               None, {}, 0))
                continue
            seen[payment.bank_ref] = (kind, payer_id, payment.amount_vnd, payment.paid_on.isoformat())
            value_month = payment.paid_on.year * 100 + payment.paid_on.month
            booking_month = value_month if last_closed is None or value_month > last_closed else next_month(last_closed)
            if topup:
                reference = topup_reference_in(payment.reference)
                new.append(Record(next_id, TOPUP, payer_id, booking_month, _SI, payment.amount_vnd, payment.paid_on,
                                  None, payment.reference, payment.bank_ref, None, None, None))
                next_id += 1
                entries.append((EntryType.topup, None, None, None, payer_id, None, payment.amount_vnd,
                                payment.paid_on.isoformat(), value_month, booking_month, None, None,
                                ((_BANK, 0, NO_SCHEME, NO_PARTY, payment.amount_vnd),
                                 (_WORKER_ACCOUNT, payer_id, _SI, _WORKER_PARTY, -payment.amount_vnd))))
                outcomes.append(PaymentOutcome(payment.bank_ref, "booked", "worker", payment.amount_vnd, reference,
                                               {}, 0, month_text(booking_month)))
                continue
            record = Record(next_id, PAYMENT, payer_id, booking_month, NO_SCHEME, payment.amount_vnd, payment.paid_on,
                            None, payment.reference, payment.bank_ref, None, None, None)
            next_id += 1
            book = books.setdefault(payer_id, PayerBook(payer_id))
            already = len(book.allocations)
            book.add(record)  # the same replay `verify` runs, one more row
            mine = book.allocations[already:]
            settled: dict[str, int] = {}
            by_scheme: dict[int, int] = {}
            for allocation in mine:
                item = book.items[allocation.item_id]
                label_of = item.reference if item.kind != INTEREST else f"{item.reference}/interest-{month_text(item.month)}"
                settled[label_of] = settled.get(label_of, 0) + allocation.amount_vnd
                by_scheme[item.scheme] = by_scheme.get(item.scheme, 0) + allocation.amount_vnd
            credit = payment.amount_vnd - sum(a.amount_vnd for a in mine)
            if payer_id == STATE:
                if credit:
                    by_scheme[NO_SCHEME] = by_scheme.get(NO_SCHEME, 0) + credit
                legs = tuple((_STATE_ACCOUNT, STATE, scheme, _STATE_PARTY, -amount)
                             for scheme, amount in sorted(by_scheme.items()))
            else:
                legs = ((_PLATFORM_ACCOUNT, payer_id, NO_SCHEME, NO_PARTY, -payment.amount_vnd),)
            entries.append((EntryType.payment, None, None, None, None, None, payment.amount_vnd,
                            payment.paid_on.isoformat(), value_month, booking_month, None, None,
                            ((_BANK, 0, NO_SCHEME, NO_PARTY, payment.amount_vnd), *legs)))
            new.append(record)
            matched = reference_in(payment.reference)
            outcomes.append(PaymentOutcome(payment.bank_ref, "booked", names.get(payer_id, "state"),
                                           payment.amount_vnd,
                                           matched if record.id not in book.unmatched else None, settled, credit,
                                           month_text(booking_month)))
        if errors:
            raise PaymentError(errors)
        if entries and not dry_run:
            written = write_block(conn, entries, recorded_at=recorded_at, head=head)
            new = [replace(r, entry_id=written.first_entry_id + offset) for offset, r in enumerate(new)]
            _insert_records(conn, new, recorded_at)
    return outcomes


# -- statements of account -------------------------------------------------------------------------

def _label(item: Record) -> str:
    return {BILL: "bill", CLAIM: f"claim {SCHEME_NAME.get(item.scheme, '')}".strip(),
            INTEREST: "late interest"}.get(item.kind, item.kind)


def account_statement(ledger: Ledger, payer: str) -> dict[str, Any]:
    """A platform's (or the state's) statement of account: every bill, interest charge, claim
    and payment with a running balance, the items still open, credit and arrears."""
    with ledger.engine.connect() as conn:
        if payer in STATE_NAMES:
            payer_id = STATE
        else:
            rows = query(conn, "SELECT id FROM platform WHERE name = ?", (payer,))
            if not rows:
                conn.rollback()
                raise LookupError(f"no platform {payer!r} in these books")
            payer_id = int(rows[0][0])
        records = load_records(conn, payer_id=payer_id)
        unbilled = 0
        if payer_id != STATE:
            last = query(conn, "SELECT max(month) FROM month_close")[0][0]
            unbilled = int(query(conn, "SELECT coalesce(sum(worker_vnd + platform_vnd), 0) FROM platform_month "
                                       "WHERE platform_id = ? AND month > ?", (payer_id, last or 0))[0][0])
        conn.rollback()
    book = replay(records).get(payer_id, PayerBook(payer_id))
    today = local_day(ledger)
    lines, balance = [], 0
    for record in records:
        balance += -record.amount_vnd if record.kind == PAYMENT else record.amount_vnd
        lines.append({
            "date": record.issued_on.isoformat(), "kind": record.kind if record.kind == PAYMENT else _label(record),
            "month": month_text(record.month) if record.month else None, "reference": record.reference,
            "bank_ref": record.bank_ref,
            "debit_vnd": record.amount_vnd if record.kind != PAYMENT else 0,
            "credit_vnd": record.amount_vnd if record.kind == PAYMENT else 0,
            "balance_vnd": balance})
    open_items = [{"reference": item.reference, "kind": _label(item), "month": month_text(item.month),
                   "due_on": item.due_on.isoformat() if item.due_on else None, "amount_vnd": item.amount_vnd,
                   "outstanding_vnd": book.outstanding[item.id],
                   "days_overdue": max(0, (today - item.due_on).days) if item.due_on else 0}
                  for item in book.items.values() if book.outstanding.get(item.id, 0) > 0]
    arrears = sum(line["outstanding_vnd"] for line in open_items if line["due_on"] and line["due_on"] < today.isoformat())
    totals = {kind: sum(r.amount_vnd for r in records if r.kind == kind) for kind in (BILL, CLAIM, INTEREST, PAYMENT)}
    return {"payer": "state" if payer_id == STATE else payer, "as_of": today.isoformat(), "lines": lines,
            "open_items": open_items, "bills_vnd": totals[BILL] + totals[CLAIM], "interest_vnd": totals[INTEREST],
            "payments_vnd": totals[PAYMENT], "balance_vnd": balance, "credit_vnd": book.credit_vnd,
            "arrears_vnd": arrears, "unmatched_payments": [r.bank_ref for r in records if r.id in book.unmatched],
            "unbilled_vnd": unbilled}


def bills_of_month(ledger: Ledger, month_label: str) -> list[dict[str, Any]]:
    """The bills and claim lines issued at the close of a month, with what is still unpaid."""
    month = parse_month(month_label)
    with ledger.engine.connect() as conn:
        names = {row_id: name for row_id, name in query(conn, "SELECT id, name FROM platform")}
        records = load_records(conn)
        conn.rollback()
    books = replay(records)
    return [{"payer": names.get(r.payer_id, "state"), "kind": _label(r), "reference": r.reference,
             "month": month_text(month), "issued_on": r.issued_on.isoformat(),
             "due_on": r.due_on.isoformat() if r.due_on else None, "amount_vnd": r.amount_vnd,
             "outstanding_vnd": books[r.payer_id].outstanding.get(r.id, 0)}
            for r in records if r.kind in (BILL, CLAIM) and r.month == month]
