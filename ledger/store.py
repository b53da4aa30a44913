"""The store: one SQLAlchemy engine on SQLite (embedded default) or PostgreSQL.

Same code, same numbers on both. What differs is kept here and nowhere else: the
connection set-up (SQLite WAL and pragmas, `BEGIN IMMEDIATE` so one writer holds the
books), bulk writes (multi-row `INSERT` on SQLite, `COPY` on PostgreSQL), adding
deltas to the aggregate rows (`add_to_rows`), lookups by a list of keys (`fetch_in`,
`fetch_unique`), and how a writer locks the chain head. A fresh database is created
and migrated by Alembic on first use; a database at an unknown schema revision is
refused, never reused. Books already at `HEAD_REVISION` open without importing Alembic.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
import secrets
import sqlite3
import stat
import weakref
from itertools import chain, count, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, NamedTuple, Sequence

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:  # alembic is imported only when books must be created or upgraded (`migrate`)
    from alembic.config import Config

DEFAULT_DATABASE_URL = "sqlite:///ansinh.db"
SQLITE_CACHE_KIB = 131_072  # page cache per SQLite connection (PRAGMA cache_size): 128 MiB, keeps ingest < 500 MB RSS
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: The newest revision in ledger/migrations (alembic's head; pinned equal by tests/ledger/test_store_startup.py).
#: Books at this revision open without importing alembic, which costs ~0.2 s of every CLI command's start.
HEAD_REVISION = "0011"


class StoreError(Exception):
    """The database cannot be used as the books (wrong schema, missing secret, …)."""


def database_url(explicit: str | None = None) -> str:
    url = explicit or os.environ.get("ANSINH_DATABASE_URL") or DEFAULT_DATABASE_URL
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def is_sqlite(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            # temp_store stays FILE: a big sort (a month's postings for the settlement hash, verify's
            # rebuilds) spills to disk instead of holding every row in memory (2.7 GB at 44M postings).
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", f"cache_size=-{SQLITE_CACHE_KIB}",
                           "temp_store=FILE", "busy_timeout=60000", "foreign_keys=OFF"):
                dbapi_connection.execute(f"PRAGMA {pragma}")

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(url, pool_pre_ping=True)

        @event.listens_for(engine, "connect")
        def _postgres_session(dbapi_connection: Any, _record: Any) -> None:
            # The books' statements are short index lookups and appends; JIT compiling them
            # (triggered by the planner's cost estimate, e.g. before a table has statistics)
            # costs 10–100 ms a statement and saves nothing.
            dbapi_connection.execute("SET jit = off")
            dbapi_connection.commit()

        return engine
    raise StoreError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql+psycopg://")


def _alembic_config(conn: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    return config


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema; refuse a database of another schema.

    Books already at `HEAD_REVISION` (every open but the first after an upgrade of ansinh)
    are answered from one read of `alembic_version`; alembic and the migration scripts are
    loaded only when there is something to create, upgrade or refuse."""
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        current = None
        if "alembic_version" in tables:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        conn.rollback()
    if current == HEAD_REVISION:
        return
    from alembic import command
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    if current == scripts.get_current_head():
        return
    if current is None and tables - {"alembic_version"}:
        raise StoreError(f"the database holds other tables ({', '.join(sorted(tables)[:5])}…) and is not an ansinh ledger")
    known = {script.revision for script in scripts.walk_revisions()}
    if current is not None and current not in known:
        raise StoreError(f"the database is at schema revision {current!r}, unknown to this version of ansinh")
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "head")


def is_server_database(url: str) -> bool:
    """True for a database other people reach (PostgreSQL), False for an embedded SQLite file."""
    return make_url(url).get_backend_name() != "sqlite"


def load_secret(url: str, *, explicit: str | None = None, secret_file: str | None = None,
                strict: bool | None = None) -> str:
    """The master secret: `explicit`, ANSINH_SECRET or the file ANSINH_SECRET_FILE names; else
    (embedded SQLite only) a generated secret kept beside the file.

    `strict` (default: the url is a server database) refuses a weak or published secret
    (`ledger.master_secret.secret_problem`) with one line: books other people reach are
    never keyed by a guessable secret."""
    from ledger.master_secret import SecretError, secret_from_environment, secret_problem

    try:
        secret = secret_from_environment(explicit, secret_file)
    except SecretError as error:
        raise StoreError(str(error)) from None
    server = is_server_database(url)
    if secret:
        problem = secret_problem(secret) if (server if strict is None else strict) else None
        if problem is not None:
            raise StoreError(f"{problem} (it keys worker pseudonyms, id encryption, platform keys and tokens "
                             "of a server database)")
        return secret
    if server:
        raise StoreError("ANSINH_SECRET or ANSINH_SECRET_FILE must be set for a server database "
                         "(it keys worker pseudonyms)")
    database = make_url(url).database or ""
    if database in ("", ":memory:"):
        return "ansinh-demo-secret-in-memory"
    path = Path(database + ".secret")
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return path.read_text().strip()


SQLITE_ROWS_PER_INSERT = 500  # rows per multi-row INSERT on SQLite (benchmarks/ingest.py: ~1.6x executemany)


def insert_rows(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple],
                binary: bool = False) -> None:
    """Bulk append: multi-row INSERTs on SQLite, COPY on PostgreSQL (same rows, same result).

    `binary` (PostgreSQL only) copies in PostgreSQL's binary format, the column types read
    from the catalogue first: no text to format and parse for integers and bytes. Every
    value must then already be of its column's Python type (int for integers, bytes for
    bytea, str for text), where text COPY would also accept e.g. "7" for an integer.

    SQLite runs a statement of many `VALUES (…), (…)` rows with its triggers firing per
    row as usual; it costs about 60 % of `executemany` of one row at a time.
    """
    if not rows:
        return
    raw = conn.connection.driver_connection
    names = ", ".join(columns)
    if is_sqlite(conn):
        one = "(" + ", ".join("?" * len(columns)) + ")"
        limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        per = max(1, min(SQLITE_ROWS_PER_INSERT, limit // len(columns)))
        whole = len(rows) - len(rows) % per
        if whole:
            statement = f"INSERT INTO {table} ({names}) VALUES " + ", ".join([one] * per)
            flatten = chain.from_iterable
            for start in range(0, whole, per):
                raw.execute(statement, list(flatten(rows[start:start + per])))
        if whole < len(rows):
            raw.executemany(f"INSERT INTO {table} ({names}) VALUES {one}", rows[whole:])
        return
    with raw.cursor() as cursor:
        types = None
        if binary:
            cursor.execute("SELECT attname, atttypid FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                           "AND attnum > 0 AND NOT attisdropped", (table,))
            type_of = dict(cursor.fetchall())
            types = [type_of[column] for column in columns]
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")) as copy:
            if types is not None:
                copy.set_types(types)
            write_row = copy.write_row
            for row in rows:
                write_row(row)


class Same(NamedTuple):
    """A column of `insert_columns` whose every row holds `value`."""

    value: Any


def insert_columns(conn: Connection, table: str, columns: Sequence[str], values: Sequence[Sequence | Same],
                   count: int, binary: bool = False) -> None:
    """`insert_rows` of `count` rows given as columns: per column a sequence of `count` values, or `Same`.

    SQLite: each multi-row INSERT's parameters are laid out from the columns by slice
    assignment (no tuple per row and no flattening of them); a `Same(None)` column costs
    nothing. PostgreSQL: the rows are zipped and copied as by `insert_rows`. The values
    must be plain Python values (`tolist()` of an array first), as for `insert_rows`.
    """
    if not count:
        return
    if not is_sqlite(conn):
        insert_rows(conn, table, columns, list(zip(*(repeat(column.value, count) if type(column) is Same else column
                                                    for column in values))), binary)
        return
    raw = conn.connection.driver_connection
    width = len(columns)
    per = max(1, min(SQLITE_ROWS_PER_INSERT, raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    one = "(" + ", ".join("?" * width) + ")"
    for start in range(0, count, per):
        rows = min(per, count - start)
        flat: list = [None] * (width * rows)
        for at, column in enumerate(values):
            if type(column) is Same:
                if column.value is not None:
                    flat[at::width] = [column.value] * rows
            else:
                flat[at::width] = column[start:start + rows]
        raw.execute(head + ", ".join([one] * rows), flat)


def execute_many(conn: Connection, sql_text: str, rows: Sequence[tuple]) -> None:
    """executemany of one statement written with `?` marks, on either driver."""
    if not rows:
        return
    raw = conn.connection.driver_connection
    if is_sqlite(conn):
        raw.executemany(sql_text, rows)
        return
    with raw.cursor() as cursor:
        cursor.executemany(sql_text.replace("?", "%s"), rows)


def pg_array(values: Sequence[Any], sql_type: str | None = None) -> tuple[str, Any]:
    """A list as one PostgreSQL array parameter: `(SQL expression with one %s, its value)`.

    psycopg writes a list parameter value by value in Python (0.6–0.9 µs each: 15–20 ms for the
    20,000 keys of an ingest chunk); a list of ints, or of non-empty texts free of newlines (event
    ids, pseudonyms), goes as one text the server splits (`string_to_array`, ~0.05 µs a value).
    Anything else (bytes, None, an empty text, a newline) goes as the list. `sql_type` casts the
    array (`bigint`, `text`); without it the ints' array is `bigint[]` and the texts' `text[]`.
    """
    kinds = set(map(type, values))
    if kinds == {int}:
        return f"string_to_array(%s, ',')::{sql_type or 'bigint'}[]", ",".join(map(str, values))
    if kinds == {str}:
        joined = "\n".join(values)
        if joined.count("\n") == len(values) - 1 and min(map(len, values)) > 0:
            return f"string_to_array(%s, E'\\n')::{sql_type or 'text'}[]", joined
    return "%s" if sql_type is None else f"%s::{sql_type}[]", list(values)


def add_to_rows(conn: Connection, table: str, key_columns: Sequence[str], value_columns: Sequence[str],
                rows: Sequence[tuple]) -> None:
    """Add each row's values to the row of `table` with its key, creating it when missing.

    `rows` are `(*key, *values)` with each key at most once. SQLite: executemany of an
    upsert. PostgreSQL: one upsert of `unnest` arrays (one round trip, not one per row).
    """
    if not rows:
        return
    columns = (*key_columns, *value_columns)
    names = ", ".join(columns)
    keys = ", ".join(key_columns)
    updates = ", ".join(f"{column} = {table}.{column} + excluded.{column}" for column in value_columns)
    raw = conn.connection.driver_connection
    if is_sqlite(conn):
        marks = ", ".join("?" * len(columns))
        raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}) "
                        f"ON CONFLICT ({keys}) DO UPDATE SET {updates}", rows)
        return
    arrays = [pg_array(column, "bigint") for column in zip(*rows)]
    with raw.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({names}) SELECT * FROM unnest({', '.join(sql for sql, _v in arrays)}) "
                       f"ON CONFLICT ({keys}) DO UPDATE SET {updates}", [value for _sql, value in arrays])


def fetch_in(conn: Connection, sql_text: str, values: Iterable[Any], chunk: int = 900) -> list[tuple]:
    """Run `sql_text` (with one `IN ({marks})` placeholder) over values.

    SQLite: in chunks of `chunk` marks. PostgreSQL: one statement, `= ANY(%s)` of an
    array, so the plan does not change with the list's length.
    """
    values = list(values)
    if not values:
        return []
    raw = conn.connection.driver_connection
    if not is_sqlite(conn) and "IN ({marks})" in sql_text:
        array, value = pg_array(values)
        with raw.cursor() as cursor:
            cursor.execute(sql_text.replace("IN ({marks})", f"= ANY({array})"), [value])
            return cursor.fetchall()
    rows: list[tuple] = []
    mark = "?" if is_sqlite(conn) else "%s"
    for start in range(0, len(values), chunk):
        part = values[start:start + chunk]
        statement = sql_text.format(marks=", ".join([mark] * len(part)))
        if is_sqlite(conn):
            rows.extend(raw.execute(statement, part).fetchall())
        else:
            with raw.cursor() as cursor:
                cursor.execute(statement, part)
                rows.extend(cursor.fetchall())
    return rows


def fetch_unique(conn: Connection, table: str, columns: Sequence[str], where: str, key_column: str,
                 keys: Iterable[str]) -> list[tuple]:
    """`(key, *columns)` of the rows of `table` matching `where` whose unique `key_column` is in `keys`.

    SQLite: `IN` lists (`fetch_in`). PostgreSQL: one index probe per key
    (`unnest` + `LATERAL … LIMIT 1`), a plan that stays the same while the table grows
    and before it has statistics, where `= ANY(…)` may scan a whole platform's rows.
    `where` is trusted SQL text (no user input).
    """
    names = ", ".join(columns)
    if is_sqlite(conn):
        return fetch_in(conn, f"SELECT {key_column}, {names} FROM {table} WHERE {where} "
                              f"AND {key_column} IN ({{marks}})", keys)
    keys = list(keys)
    if not keys:
        return []
    array, value = pg_array(keys, "text")
    with conn.connection.driver_connection.cursor() as cursor:
        cursor.execute(f"SELECT k.key, found.* FROM unnest({array}) AS k(key) CROSS JOIN LATERAL "
                       f"(SELECT {names} FROM {table} WHERE {where} AND {key_column} = k.key LIMIT 1) AS found",
                       [value])
        return cursor.fetchall()


def query(conn: Connection, sql_text: str, params: Sequence[Any] = ()) -> list[tuple]:
    """A read with `?` marks on the raw driver (fast, no ORM row objects)."""
    raw = conn.connection.driver_connection
    if is_sqlite(conn):
        return raw.execute(sql_text, tuple(params)).fetchall()
    with raw.cursor() as cursor:
        cursor.execute(sql_text.replace("?", "%s"), tuple(params))
        return cursor.fetchall() if cursor.description else []


def stream_rows(conn: Connection, sql_text: str, params: Sequence[Any] = (),
                batch: int = 50_000) -> Iterator[list[tuple]]:
    """A read with `?` marks, in lists of at most `batch` rows: memory stays flat in the result's size.

    PostgreSQL reads through a server-side cursor (the caller's transaction holds it).
    """
    raw = conn.connection.driver_connection
    if is_sqlite(conn):
        cursor = raw.execute(sql_text, tuple(params))
        while rows := cursor.fetchmany(batch):
            yield rows
        return
    with raw.cursor(name=f"ansinh_stream_{next(_CURSOR_NUMBERS)}") as cursor:
        cursor.itersize = batch
        cursor.execute(sql_text.replace("?", "%s"), tuple(params))
        while rows := cursor.fetchmany(batch):
            yield rows


_CURSOR_NUMBERS = count(1)


def month_rows(conn: Connection, month: int) -> tuple[str, tuple]:
    """`FROM … WHERE …` text naming the journal rows booked into `month`, to be read in id order
    (`ORDER BY id`), and its parameters.

    PostgreSQL: the month's partition (pruned at plan time). SQLite: the rows between the
    month's first and last entry id, read in rowid order; the two ids come from one covering
    range of `journal_worker_month` (booking_month, worker_id, rowid). Its entries are in worker
    order, so reading the month through it would sort the month; the rowid range reads the
    month in id order, with the few rows of other months booked meanwhile filtered out.
    """
    if not is_sqlite(conn):
        return "journal WHERE booking_month = ?", (month,)
    first, last = query(conn, "SELECT min(id), max(id) FROM journal WHERE booking_month = ?", (month,))[0]
    if first is None:
        first, last = 1, 0
    return "journal NOT INDEXED WHERE id BETWEEN ? AND ? AND booking_month = ?", (first, last, month)


def lock_chain_head(conn: Connection) -> tuple[bytes, int]:
    """Take the writer's lock (PostgreSQL row lock; SQLite holds BEGIN IMMEDIATE) and read the head."""
    suffix = "" if is_sqlite(conn) else " FOR UPDATE"
    head_hash, block_count = query(conn, "SELECT chain_head_hash, block_count FROM ledger_state WHERE id = 1" + suffix)[0]
    return bytes(head_hash), int(block_count)


@contextmanager
def consistent_snapshot(ledger) -> Iterator[Connection]:
    """A connection that sees one consistent state of the books while writers go on.

    PostgreSQL: one REPEATABLE READ transaction, so every query of a verify run reads
    the same snapshot while other processes commit (under the default READ COMMITTED
    each query would see more entries than the one before it, and a live ledger would
    fail spuriously). SQLite: a deferred `BEGIN`, whose first read fixes the WAL
    snapshot; unlike the writers' `BEGIN IMMEDIATE` it does not stop ingest meanwhile.
    """
    with ledger.engine.connect() as conn:  # `ledger`: anything with an `engine` (a Ledger)
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
            try:
                yield conn
            finally:
                conn.connection.driver_connection.rollback()
            return
        raw = conn.connection.driver_connection
        raw.execute("BEGIN")
        try:
            yield conn
        finally:
            raw.execute("ROLLBACK")


def month_plus(month: int, count: int) -> int:
    """The booking month (YYYYMM) `count` months after `month`."""
    index = (month // 100) * 12 + month % 100 - 1 + count
    return (index // 12) * 100 + index % 12 + 1


def is_partitioned_journal(conn: Connection) -> bool:
    """True on PostgreSQL books whose journal is partitioned by month (revision 0008); asked
    once per engine (the layout changes only by migration, before the books are opened)."""
    if is_sqlite(conn):
        return False
    engine = conn.engine
    known = _PARTITIONED.get(engine)
    if known is None:
        known = bool(query(conn, "SELECT EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass('journal') "
                                 "AND relkind = 'p') AND to_regclass('event_key') IS NOT NULL")[0][0])
        _PARTITIONED[engine] = known
    return known


_PARTITIONED: "weakref.WeakKeyDictionary[Engine, bool]" = weakref.WeakKeyDictionary()


def ensure_month_partitions(conn: Connection, months: Iterable[int]) -> list[int]:
    """Create the journal partitions of these booking months where missing (partitioned books
    only; one round trip when all exist). Returns the months whose partition was created."""
    months = sorted({int(month) for month in months})
    if not months or not is_partitioned_journal(conn):
        return []
    missing = [month for (month,) in query(conn, "SELECT m FROM unnest(?::int[]) AS m "
                                                 "WHERE to_regclass('journal_' || m) IS NULL", (months,))]
    for month in missing:
        query(conn, "SELECT ansinh_journal_partition(?)", (month,))
    return missing


