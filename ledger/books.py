"""`Ledger`: an open set of books — the engine, the rules pack chosen, the identity keys.

Every entry point (CLI, HTTP, stream consumer) opens one `Ledger` and calls the
functions of `ledger.ingest`, `ledger.close`, `ledger.reports` and `ledger.verify`
with it. It caches only what cannot change once committed (platform, worker and
rules-version row ids), and only after the transaction that created them commits.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Callable, Iterable, Iterator, Sequence

import orjson
from sqlalchemy import Connection, Engine

from ledger.identity import IdentityKeys, birth_year, province_code, sex
from ledger.postings import row_seal
from ledger.store import database_url, fetch_in, insert_rows, load_secret, make_engine, migrate, query
from ledger.store import StoreError
from rules import PackError, RulesPack, RulesVersion, load_pack, pack_from_environment


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class UnitOfWork:
    """One transaction on the books, opened by `Ledger.unit_of_work`.

    Callers that book more than events in the same transaction (the stream consumer: its
    position and the outcomes) pass it to `ledger.ingest.ingest_batch(work=…)`. `pending`
    collects the platform, worker and rules-version ids the transaction created; the ledger
    caches them only once the transaction has committed.
    """

    connection: Connection
    pending: dict = field(default_factory=dict)


class Ledger:
    def __init__(self, engine: Engine, pack: RulesPack, keys: IdentityKeys,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.engine = engine
        self.pack = pack
        self.keys = keys
        self.clock = clock
        self.keys_checked = True  # False: stand-in keys (Ledger.open(check_secret=False)); never decrypt with them
        self._platform_ids: dict[str, int] = {}
        self._worker_ids: dict[str, int] = {}
        self._version_ids: dict[str, int] = {}
        self._versions_by_day: dict[date, RulesVersion] = {}

    @classmethod
    def open(cls, url: str | None = None, pack: str | RulesPack | None = None,
             clock: Callable[[], datetime] = utc_now, secret: str | None = None,
             check_secret: bool = True) -> "Ledger":
        """Open (creating and migrating if new) the books at `url`; `secret` defaults to ANSINH_SECRET.

        Books written with another secret are refused (StoreError naming the key: `check_keys`).
        `check_secret=False` only for a verify with no secret at hand (`ansinh restore`): the
        identity keys are then stand-ins, and `verify` skips `identity_decrypts`.
        """
        resolved = database_url(url)
        engine = make_engine(resolved)
        migrate(engine)
        chosen = _pack_for_books(engine, pack)
        keys = IdentityKeys.from_secret(secret or load_secret(resolved))
        if not check_secret:
            books = cls(engine, chosen, keys, clock)
            books.keys_checked = False
            return books
        try:
            check_keys(engine, keys.check_values(), probe=lambda conn: identity_probe(conn, keys),
                       recorded_at=iso_utc(clock()))
        except StoreError:
            engine.dispose()
            raise
        return cls(engine, chosen, keys, clock)

    def close(self) -> None:
        self.engine.dispose()

    # -- rules ---------------------------------------------------------------
    def version_on(self, day: date) -> RulesVersion:
        version = self._versions_by_day.get(day)
        if version is None:
            version = self._versions_by_day[day] = self.pack.version_on(day)
        return version

    # -- ids (looked up or created inside the caller's write transaction) ------
    def platform_ids(self, conn: Connection, names: Iterable[str], pending: dict) -> dict[str, int]:
        wanted = set(names) - self._platform_ids.keys()
        found = dict(self._platform_ids)
        if wanted:
            for name, row_id in fetch_in(conn, "SELECT name, id FROM platform WHERE name IN ({marks})", wanted):
                found[name] = row_id
            missing = sorted(wanted - found.keys())
            if missing:
                next_id = (query(conn, "SELECT coalesce(max(id), 0) FROM platform")[0][0] or 0) + 1
                rows = [(next_id + offset, name) for offset, name in enumerate(missing)]
                insert_rows(conn, "platform", ("id", "name", "seal"),
                            [(*row, row_seal("platform", row)) for row in rows])
                found.update({name: row_id for row_id, name in rows})
        pending.setdefault("platform", {}).update({n: found[n] for n in set(names)})
        return found

    def worker_ids(self, conn: Connection, national_ids: Iterable[str], pending: dict,
                   create: bool = True, pseudonyms: Sequence[str] | None = None) -> dict[str, int]:
        """Row ids for raw national ids (looked up by pseudonym; created when `create`).

        `pseudonyms`: `keys.pseudonym` of each of `national_ids` (distinct), when the caller
        has them already (`ledger.ingest.check_batch` computes them ahead, in the checking process).
        """
        result: dict[str, int] = {}
        by_pseudonym: dict[str, str] = {}
        if pseudonyms is None:
            national_ids = set(national_ids)
            pseudonyms = list(map(self.keys.pseudonym, national_ids))
        for national_id, pseudonym in zip(national_ids, pseudonyms, strict=True):
            cached = self._worker_ids.get(pseudonym)
            if cached is not None:
                result[national_id] = cached
            else:
                by_pseudonym[pseudonym] = national_id
        if by_pseudonym:
            for pseudonym, row_id in fetch_in(conn, "SELECT pseudonym, id FROM worker WHERE pseudonym IN ({marks})",
                                              by_pseudonym):
                result[by_pseudonym.pop(pseudonym)] = row_id
                pending.setdefault("worker", {})[pseudonym] = row_id
        if by_pseudonym:  # a corrected national id resolves to the worker it was recorded for
            for pseudonym, row_id in fetch_in(conn, "SELECT pseudonym, worker_id FROM worker_identity_change "
                                                    "WHERE pseudonym IN ({marks})", by_pseudonym):
                result[by_pseudonym.pop(pseudonym)] = row_id
                pending.setdefault("worker", {})[pseudonym] = row_id
        if by_pseudonym and create:
            next_id = (query(conn, "SELECT coalesce(max(id), 0) FROM worker")[0][0] or 0) + 1
            rows = []
            for offset, (pseudonym, national_id) in enumerate(sorted(by_pseudonym.items())):
                row_id = next_id + offset
                row = (row_id, pseudonym, self.keys.encrypt(national_id), province_code(national_id),
                       birth_year(national_id), sex(national_id))
                rows.append((*row, row_seal("worker", row)))
                result[national_id] = row_id
                pending.setdefault("worker", {})[pseudonym] = row_id
            insert_rows(conn, "worker", ("id", "pseudonym", "national_id_encrypted", "province", "birth_year", "sex",
                                         "seal"), rows)
        return result

    def worker_id(self, conn: Connection, national_id: str) -> int | None:
        return self.worker_ids(conn, [national_id], {}, create=False).get(national_id)

    def national_id_for_pseudonym(self, pseudonym: str) -> str | None:
        """The raw national id of a worker known by pseudonym (decrypted; never log it)."""
        with self.engine.connect() as conn:
            rows = query(conn, "SELECT national_id_encrypted FROM worker WHERE pseudonym = ?", (pseudonym,))
            conn.rollback()
        return self.keys.decrypt(bytes(rows[0][0])) if rows else None

    def rules_version_id(self, conn: Connection, version: RulesVersion, pending: dict) -> int:
        cached = self._version_ids.get(version.version_id)
        if cached is not None:
            return cached
        rows = query(conn, "SELECT id FROM rules_version WHERE version_id = ?", (version.version_id,))
        if rows:
            row_id = rows[0][0]
        else:
            row_id = (query(conn, "SELECT coalesce(max(id), 0) FROM rules_version")[0][0] or 0) + 1
            document = orjson.dumps(version_document(version), option=orjson.OPT_SORT_KEYS).decode()
            row = (row_id, version.version_id, version.pack, version.effective_from.isoformat(), document)
            insert_rows(conn, "rules_version", ("id", "version_id", "pack", "effective_from", "document_json", "seal"),
                        [(*row, row_seal("rules_version", row))])
        pending.setdefault("version", {})[version.version_id] = row_id
        return row_id

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        """Open the books' write transaction; commit when the block ends, then cache its new ids.

        An exception rolls the whole transaction back and caches nothing.
        """
        with self.engine.begin() as conn:
            work = UnitOfWork(conn)
            yield work
        self.committed(work.pending)

    def committed(self, pending: dict) -> None:
        """Keep the ids created by a transaction that has now committed."""
        self._platform_ids.update(pending.get("platform", {}))
        self._worker_ids.update(pending.get("worker", {}))
        self._version_ids.update(pending.get("version", {}))


WRONG_SECRET_HINT = ("open them with the secret they were written with (ANSINH_SECRET, or the .secret file "
                     "beside embedded books)")


def check_keys(engine: Engine, values: dict[str, str], *, recorded_at: str,
               probe: Callable[[Connection], str | None] | None = None) -> None:
    """Refuse books written with other keys; record the check values of keys new to the books.

    `values` maps key ids to `ledger.identity.key_check_value` of the keys at hand. A key id
    the books already know must give the value stored (else StoreError, one line naming the
    key). Key ids they do not know yet are recorded, but first `probe` (when given) must find
    nothing wrong with the data already written with them (books of a release before key
    check values: `identity_probe`). Other keys (platform keys, tokens) call this with theirs.
    """
    with engine.connect() as conn:
        stored = dict(query(conn, "SELECT key_id, check_value FROM key_check"))
        conn.rollback()
    for key_id in sorted(values):
        if key_id in stored and stored[key_id] != values[key_id]:
            raise StoreError(f"the secret does not match these books: key {key_id} gives check value "
                             f"{values[key_id]}, the books were written with {stored[key_id]}; {WRONG_SECRET_HINT}")
    missing = sorted(set(values) - set(stored))
    if not missing:
        return
    with engine.begin() as conn:
        problem = probe(conn) if probe is not None else None
        if problem:
            raise StoreError(f"the secret does not match these books: {problem}; {WRONG_SECRET_HINT}")
        for key_id in missing:
            query(conn, "INSERT INTO key_check (key_id, check_value, recorded_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (key_id) DO NOTHING", (key_id, values[key_id], recorded_at))
        again = dict(query(conn, "SELECT key_id, check_value FROM key_check"))
    for key_id in missing:  # another process recorded it meanwhile, with another secret
        if again.get(key_id) != values[key_id]:
            raise StoreError(f"the secret does not match these books: key {key_id} gives check value "
                             f"{values[key_id]}, the books were written with {again.get(key_id)}; {WRONG_SECRET_HINT}")


def identity_probe(conn: Connection, keys: IdentityKeys, sample: int = 3) -> str | None:
    """Whether `keys` open the identities already stored: a few workers' ids decrypt, and each
    decrypted id gives the worker's pseudonym. None when they do (or there are no workers)."""
    rows = query(conn, "SELECT id, pseudonym, national_id_encrypted FROM worker ORDER BY id LIMIT ?", (sample,))
    for worker_id, pseudonym, blob in rows:
        try:
            national_id = keys.decrypt(bytes(blob))
        except Exception:  # noqa: BLE001 - cryptography's InvalidTag or a damaged blob: either way not this key
            return f"key encryption/v1 does not decrypt the national id of worker {worker_id}"
        if keys.pseudonym(national_id) != pseudonym:
            return f"key pseudonym/v1 does not give the pseudonym of worker {worker_id}"
    return None


def _pack_for_books(engine: Engine, pack: str | RulesPack | None) -> RulesPack:
    """The pack the books are kept under. One set of books never mixes packs.

    Unchosen (no --pack, no ANSINH_PACK), the books' own pack is used; a chosen pack that
    differs from the one that already priced entries is refused with a clear error.
    """
    with engine.connect() as conn:
        used = [row[0] for row in query(conn, "SELECT DISTINCT pack FROM rules_version")]
        conn.rollback()
    if pack is None and not os.environ.get("ANSINH_PACK") and len(used) == 1:
        try:
            return load_pack(used[0])
        except PackError:
            raise StoreError(f"these books were kept under rules pack {used[0]!r}, which is not shipped; "
                             f"open them with --pack PATH_TO_{used[0]}.yaml") from None
    chosen = pack if isinstance(pack, RulesPack) else pack_from_environment(pack)
    if used and chosen.name not in used:
        raise StoreError(f"these books are kept under rules pack {used[0]!r}, not {chosen.name!r}: "
                         f"a set of books never mixes packs (policy what-ifs go through `ansinh simulate`)")
    return chosen


def version_from_document(pack: str, effective_from: str, document_json: str) -> RulesVersion:
    """The rules version exactly as stored beside the entries it priced (for `verify`)."""
    return RulesVersion.from_document(pack, date.fromisoformat(effective_from), orjson.loads(document_json))


def version_document(version: RulesVersion) -> dict:
    """The rules version as plain data, stored beside the entries it produced."""
    return version.as_document()
