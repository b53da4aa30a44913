"""Witness records: chain heads and close anchors kept outside the books, and their check.

`verify` alone cannot catch a forger who changes a row and then recomputes every
entry hash, block hash and the chain head after it: the chain is consistent again.
A **witness** is a copy of `(block id, block hash)` pairs written somewhere the
books' administrator cannot rewrite (a NATS JetStream stream that refuses deletes
and purges, or a file shipped elsewhere; `api/witness.py` publishes and reads them).
Two kinds of record:

- `head`: the chain head at some moment (its block id and hash), published by
  `ansinh witness publish` from cron, or by the consumer every N seconds;
- `close`: a month's anchor, published by `ansinh close --witness` (the block that
  closed the month, as `ansinh verify --from-anchor` takes it).

`witness_problem` recomputes the chain from the journal and posting rows alone (the
stored hashes are not trusted, as in `anchor_problems`) and compares the hash of every
witnessed block. The first witnessed block that differs is named, with the range of
blocks and entries between it and the last witnessed block that still matches: the
change lies there. What a witness proves and what it does not: docs/witness.md.

This module only reads the books; it imports nothing from `api`.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import orjson

from ledger.events import month_text, parse_month
from ledger.store import consistent_snapshot, query
from ledger.verify import Anchor, Check, anchor_problems, recomputed_chain

WITNESS_FORMAT = 1
KINDS = ("head", "close")


class WitnessFormatError(ValueError):
    """A witness record that is not one this code wrote: names where it was found."""


class WitnessRecord(NamedTuple):
    """One witnessed `(block id, block hash)`; a close also names its month."""

    kind: str  # "head" or "close"
    block_id: int
    block_hash: bytes
    month: int | None  # YYYYMM of a close; None for a head
    recorded_at: str  # when the block was written (or the month closed), from the books: no wall clock
    where: str = ""  # where the record was read (stream sequence, file line), for messages

    def to_json(self) -> bytes:
        record = {"v": WITNESS_FORMAT, "kind": self.kind, "block": self.block_id, "hash": self.block_hash.hex(),
                  "at": self.recorded_at}
        if self.month is not None:
            record["month"] = month_text(self.month)
        return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def parse(cls, data: bytes, where: str) -> "WitnessRecord":
        """A record from its JSON; WitnessFormatError naming `where` and what is wrong."""
        try:
            record = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise WitnessFormatError(f"{where}: not a witness record (not JSON: {error})") from None
        if not isinstance(record, dict) or record.get("v") != WITNESS_FORMAT:
            raise WitnessFormatError(f"{where}: not a witness record of format {WITNESS_FORMAT}")
        kind, block, digest = record.get("kind"), record.get("block"), record.get("hash")
        if kind not in KINDS:
            raise WitnessFormatError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if not isinstance(block, int) or isinstance(block, bool) or block < 1:
            raise WitnessFormatError(f"{where}: block must be a positive integer, got {block!r}")
        if (not isinstance(digest, str) or len(digest) != 64
                or any(character not in "0123456789abcdef" for character in digest)):
            raise WitnessFormatError(f"{where}: hash must be 64 lower-case hex digits")
        month = None
        if kind == "close":
            try:
                month = parse_month(str(record.get("month")))
            except ValueError as error:
                raise WitnessFormatError(f"{where}: a close record needs its month: {error}") from None
        return cls(kind, block, bytes.fromhex(digest), month, str(record.get("at", "")), where)

    def label(self) -> str:
        what = f"the close of {month_text(self.month)}" if self.month is not None else "a chain head"
        return f"{what} at block {self.block_id}" + (f" ({self.where})" if self.where else "")


def current_head(conn) -> WitnessRecord | None:
    """The chain head as the books hold it now (None before the first block)."""
    rows = query(conn, "SELECT id, block_hash, recorded_at FROM block ORDER BY id DESC LIMIT 1")
    if not rows:
        return None
    block_id, digest, recorded_at = rows[0]
    return WitnessRecord("head", int(block_id), bytes(digest), None, str(recorded_at))


def close_record(conn, month: int) -> WitnessRecord:
    """The anchor of a closed month as a witness record; ValueError if the month is not closed."""
    rows = query(conn, "SELECT c.anchor_hash, c.closed_at, b.id FROM month_close c "
                       "LEFT JOIN block b ON b.block_hash = c.anchor_hash WHERE c.month = ?", (month,))
    if not rows:
        raise ValueError(f"{month_text(month)} is not closed in these books: it has no anchor to witness")
    digest, closed_at, block_id = rows[0]
    if block_id is None:
        raise ValueError(f"the anchor of {month_text(month)} is the hash of no block: run `ansinh verify`")
    return WitnessRecord("close", int(block_id), bytes(digest), month, str(closed_at))


def _recomputed(conn, wanted: set[int]) -> tuple[dict[int, bytes], int, int | None]:
    """The chain recomputed from the rows (`ledger.verify.recomputed_chain`): the hashes of the
    `wanted` blocks, the last block id, and the first entry whose kept hash no longer matches its row."""
    chain = recomputed_chain(conn)
    found = {block_id: digest for block_id, digest in chain.block_hashes.items() if block_id in wanted}
    return found, max(chain.block_hashes, default=0), chain.first_mismatch


def _entries_between(conn, after_block: int, through_block: int) -> str:
    first, last = query(conn, "SELECT min(first_entry_id), max(last_entry_id) FROM block WHERE id > ? AND id <= ?",
                        (after_block, through_block))[0]
    return "no entries" if first is None else f"entries {first}–{last}"


def witness_problem(conn, records: Sequence[WitnessRecord]) -> str | None:
    """None when every witnessed block hash is what the rows recompute to; else the first that is not.

    Close records are also checked as anchors (`anchor_problems`): nothing booked into
    the month after its close, and the close record itself unchanged.
    """
    if not records:
        return "the witness holds no records: there is nothing to check the books against"
    recomputed, last_block, first_mismatch = _recomputed(conn, {record.block_id for record in records})
    ordered = sorted(records, key=lambda record: record.block_id)
    differing = [record for record in ordered
                 if record.block_id > last_block or recomputed[record.block_id] != record.block_hash]
    if differing:
        bad = differing[0]
        matching = [record.block_id for record in ordered if record.block_id < bad.block_id]
        before = max(matching, default=0)
        count = f"{len(differing)} of {len(records)} witnessed records differ"
        if bad.block_id > last_block:
            return (f"block {bad.block_id} was witnessed ({bad.label()}) but the books end at block {last_block}: "
                    f"blocks were removed, or these books are older than the witness (a restored backup); {count}")
        own = (f"; entry {first_mismatch} does not match its own hash" if first_mismatch is not None else
               "; every entry matches its own stored hash, so the rows were rewritten together with their hashes")
        since = (f"since block {before}, the last witnessed block that still matches" if before else
                 "from the first block on")
        return (f"block {bad.block_id} differs from the witness ({bad.label()}): the rows give "
                f"{recomputed[bad.block_id].hex()[:16]}…, the witness recorded {bad.block_hash.hex()[:16]}…; "
                f"history was changed after it was witnessed, {since}: blocks {before + 1}–{bad.block_id} "
                f"({_entries_between(conn, before, bad.block_id)}){own}; {count}")
    closes = [record for record in ordered if record.kind == "close"]
    if closes:
        for record, problem in zip(closes, anchor_problems(conn, [Anchor(record.month, record.block_hash)
                                                                  for record in closes])):
            if problem:
                return f"{record.label()}: {problem}"
    return None


def check_witness(ledger, records: Sequence[WitnessRecord], source: str,
                  read_problems: Sequence[str] = ()) -> Check:
    """The `witness` check of `ansinh verify --witness`: the records against one snapshot of the books.

    `read_problems` are what the reader found wrong with the witness itself (records
    missing from its sequence, a stream that allows deletes); any of them fails the check.
    """
    heads = sum(1 for record in records if record.kind == "head")
    detail = (f"{len(records)} witnessed records ({heads} heads, {len(records) - heads} closes) from {source}"
              + (f", up to block {max(record.block_id for record in records)}" if records else ""))
    if read_problems:
        return Check("witness", "; ".join(read_problems), detail)
    with consistent_snapshot(ledger) as conn:
        from ledger.archive import ArchiveError, mounted_archives

        try:
            list(mounted_archives(conn))  # archived months read back, as `verify` does (rolled back)
            problem = witness_problem(conn, records)
        except ArchiveError as error:
            problem = f"{error}: the archived month's entries cannot be checked against the witness"
        except Exception as error:  # noqa: BLE001 - tampered rows can break any query: report, never crash
            problem = f"the witness could not be checked ({type(error).__name__}: {str(error)[:200]})"
    return Check("witness", problem, detail)
