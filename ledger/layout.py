"""The books' layout in plain SQL: column and table names, the guards, the `legs` view, partitions.

No SQLModel and no SQLAlchemy here: the ingest, close, report and verify paths read these names
on every CLI command, and building the table classes of `ledger.schema` (pydantic models) cost
~0.3 s of each command's start (docs/performance.md). `ledger.schema` re-exports every name for
the migrations, which need the classes too.
"""
from __future__ import annotations

# Small integer codes stored in postings (names in ledger.accounts).
APPEND_ONLY_TABLES = ("journal", "posting", "block", "month_close", "household_tier", "rules_version")

#: Tables added by revision 0002 (the HTTP service's access records).
ACCESS_TABLES = ("platform_key", "seen_signature")

#: Tables added by revision 0009; append-only.
CREDIT_TABLES = ("credited_month",)

#: Tables added by revision 0006; append-only.
IDENTITY_TABLES = ("worker_identity_change", "key_check")
#: Tables made append-only by revision 0006 (created by 0001).
SEALED_BY_0006 = ("worker", "platform")

#: The stream consumer's tables (api/stream.py), created by revision 0005 (IF NOT EXISTS: books
#: that a consumer of an earlier version already used keep theirs). Not SQLModel classes: the
#: consumer reads and writes them with plain SQL, and they are not part of the journal.
STREAM_TABLE_STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS stream_position (
        stream_key VARCHAR(300) PRIMARY KEY,
        last_seq BIGINT NOT NULL,
        updated_at VARCHAR(40) NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS stream_outcome_block (
        stream_key VARCHAR(300) NOT NULL,
        first_seq BIGINT NOT NULL,
        last_seq BIGINT NOT NULL,
        outcomes TEXT NOT NULL,
        PRIMARY KEY (stream_key, first_seq))""",
)

#: Tables added by revision 0003 (bills, claims, interest, payments); append-only like the journal.
MONEY_TABLES = ("money_record", "money_close")


#: The compact share columns of a journal row, in SHARE_KEYS order (scheme, party): each is the
#: amount of the leg on the worker's account of that scheme for that party.
SHARE_COLUMNS = ("si_worker_vnd", "si_platform_vnd", "oa_worker_vnd", "oa_platform_vnd", "ui_worker_vnd",
                 "ui_platform_vnd")
COMPACT_COLUMNS = ("receivable_vnd", *SHARE_COLUMNS)
#: The six shares as read: a share with no leg is NULL (rows since revision 0011) or 0 (before).
SHARES_READ = tuple(f"coalesce({column}, 0)" for column in SHARE_COLUMNS)
#: A compact row's receivable plus its six shares: 0 when it balances.
COMPACT_SUM = " + ".join(("receivable_vnd", *SHARES_READ))
#: `compact_entries_balance` of revisions 0007–0010 (every share NOT NULL); revision 0011 replaces
#: it by `NULLABLE_COMPACT_BALANCE_CHECK`.
COMPACT_BALANCE_CHECK = ("receivable_vnd IS NULL OR (" + " AND ".join(f"{c} IS NOT NULL" for c in SHARE_COLUMNS)
                         + " AND receivable_vnd + " + " + ".join(SHARE_COLUMNS) + " = 0)")


#: `compact_entries_balance` since revision 0011: a compact row's receivable and its shares sum to
#: zero, a share with no leg NULL or 0.
NULLABLE_COMPACT_BALANCE_CHECK = f"receivable_vnd IS NULL OR {COMPACT_SUM} = 0"


def _legs_view() -> str:
    """Every leg of the books, numbered as `write_block` hashes them: the `posting` rows, and for
    each compact row leg 0 the platform receivable, then its non-zero shares in SHARE_KEYS order."""
    nonzero = [f"(CASE WHEN {c} <> 0 THEN 1 ELSE 0 END)" for c in SHARE_COLUMNS]
    parts = ["SELECT entry_id, leg, account_kind, owner_id, scheme, party, amount_vnd FROM posting",
             "SELECT id, 0, 2, platform_id, 0, 0, receivable_vnd FROM journal "
             "WHERE receivable_vnd IS NOT NULL AND (" + " OR ".join(f"{c} <> 0" for c in SHARE_COLUMNS) + ")"]
    for index, column in enumerate(SHARE_COLUMNS):
        scheme, party = index // 2 + 1, index % 2 + 1
        leg = " + ".join(["1", *nonzero[:index]])
        parts.append(f"SELECT id, {leg}, 1, worker_id, {scheme}, {party}, {column} FROM journal "
                     f"WHERE receivable_vnd IS NOT NULL AND {column} <> 0")
    return "CREATE VIEW legs (entry_id, leg, account_kind, owner_id, scheme, party, amount_vnd) AS\n" + \
        "\nUNION ALL ".join(parts)


LEGS_VIEW = _legs_view()

SQLITE_GUARDS = [
    *[
        f"""CREATE TRIGGER {table}_append_only_update BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, 'append_only: UPDATE of {table} refused'); END"""
        for table in APPEND_ONLY_TABLES
    ],
    *[
        f"""CREATE TRIGGER {table}_append_only_delete BEFORE DELETE ON {table}
            BEGIN SELECT RAISE(ABORT, 'append_only: DELETE from {table} refused'); END"""
        for table in APPEND_ONLY_TABLES
    ],
    """CREATE TRIGGER posting_guard BEFORE INSERT ON posting BEGIN
         SELECT RAISE(ABORT, 'entries_balance: postings of a recorded entry are frozen')
           WHERE EXISTS (SELECT 1 FROM journal WHERE id = NEW.entry_id);
       END""",
]

# A compact row (an event or a refund) is balanced by its CHECK; only a multi-leg entry's postings
# are summed, by the second trigger (a WHEN clause skips it for compact rows: the per-row probe of
# `posting` was a third of the ingest's insert time). A compact row may have no postings at all.
SQLITE_JOURNAL_GUARDS = [
    "DROP TRIGGER IF EXISTS journal_guard",
    """CREATE TRIGGER journal_guard BEFORE INSERT ON journal BEGIN
         SELECT RAISE(ABORT, 'closed_months_frozen: entry booked into a closed month')
           WHERE NEW.booking_month <= (SELECT max(month) FROM month_close);
       END""",
    """CREATE TRIGGER journal_balance_guard BEFORE INSERT ON journal WHEN NEW.receivable_vnd IS NULL BEGIN
         SELECT RAISE(ABORT, 'entries_balance: postings of the entry do not sum to zero')
           WHERE (SELECT coalesce(sum(amount_vnd), 0) FROM posting WHERE entry_id = NEW.id) <> 0;
       END""",
    """CREATE TRIGGER journal_compact_guard BEFORE INSERT ON journal WHEN NEW.receivable_vnd IS NOT NULL BEGIN
         SELECT RAISE(ABORT, 'compact_entries_balance: a compact entry does not balance')
           WHERE NOT (""" + COMPACT_BALANCE_CHECK.replace("receivable_vnd", "NEW.receivable_vnd").replace(
        "si_", "NEW.si_").replace("oa_", "NEW.oa_").replace("ui_", "NEW.ui_") + """);
       END""",
]

# The journal guard's balance check probes the posting primary key once per new entry (a
# correlated sum): a join with a GROUP BY over `posting` was planned as a merge join over the
# whole table and grew with the book (docs/performance.md; replaced in revision 0004).
POSTGRES_JOURNAL_GUARD = """CREATE OR REPLACE FUNCTION ansinh_journal_guard() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE bad_id bigint;
       BEGIN
         SELECT n.id INTO bad_id FROM new_rows n
           WHERE n.booking_month <= (SELECT max(month) FROM month_close) LIMIT 1;
         IF bad_id IS NOT NULL THEN
           RAISE EXCEPTION 'closed_months_frozen: entry % booked into a closed month', bad_id;
         END IF;
         SELECT n.id INTO bad_id FROM new_rows n
           WHERE n.receivable_vnd IS NULL
             AND (SELECT coalesce(sum(p.amount_vnd), 0) FROM posting p WHERE p.entry_id = n.id) <> 0 LIMIT 1;
         IF bad_id IS NOT NULL THEN
           RAISE EXCEPTION 'entries_balance: postings of entry % do not sum to zero', bad_id;
         END IF;
         RETURN NULL;
       END $$"""

POSTGRES_GUARDS = [
    """CREATE OR REPLACE FUNCTION ansinh_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'append_only: % of % refused', TG_OP, TG_TABLE_NAME; END $$""",
    *[
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION ansinh_refuse_change()"""
        for table in APPEND_ONLY_TABLES
    ],
    POSTGRES_JOURNAL_GUARD,
    """CREATE TRIGGER journal_guard AFTER INSERT ON journal REFERENCING NEW TABLE AS new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION ansinh_journal_guard()""",
    """CREATE OR REPLACE FUNCTION ansinh_posting_guard() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF EXISTS (SELECT 1 FROM new_rows n JOIN journal j ON j.id = n.entry_id) THEN
           RAISE EXCEPTION 'entries_balance: postings of a recorded entry are frozen';
         END IF;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER posting_guard AFTER INSERT ON posting REFERENCING NEW TABLE AS new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION ansinh_posting_guard()""",
]


#: On PostgreSQL a compact row's balance is a table CHECK (SQLite cannot add one to an existing table).
POSTGRES_COMPACT_CHECK = (f"ALTER TABLE journal ADD CONSTRAINT compact_entries_balance CHECK ({COMPACT_BALANCE_CHECK})")


def guard_statements(dialect_name: str) -> list[str]:
    """The guards of revision 0001 (the journal's own are replaced by `compact_guard_statements`)."""
    return POSTGRES_GUARDS if dialect_name == "postgresql" else SQLITE_GUARDS


def compact_guard_statements(dialect_name: str) -> list[str]:
    """Revision 0006: the journal's guards for the compact layout, its CHECK, and the `legs` view."""
    if dialect_name == "postgresql":
        return [POSTGRES_JOURNAL_GUARD, "ALTER TABLE journal DROP CONSTRAINT IF EXISTS compact_entries_balance",
                POSTGRES_COMPACT_CHECK, "DROP VIEW IF EXISTS legs", LEGS_VIEW]
    return [*SQLITE_JOURNAL_GUARDS, "DROP VIEW IF EXISTS legs", LEGS_VIEW]


def append_only_statements(dialect_name: str, tables: tuple[str, ...]) -> list[str]:
    """The `append_only` guard for tables added by a later revision (0001 guards its own)."""
    if dialect_name == "postgresql":
        return [f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table}
                    FOR EACH STATEMENT EXECUTE FUNCTION ansinh_refuse_change()""" for table in tables]
    return [f"""CREATE TRIGGER {table}_append_only_{verb} BEFORE {verb.upper()} ON {table}
                BEGIN SELECT RAISE(ABORT, 'append_only: {verb.upper()} of {table} refused'); END"""
            for table in tables for verb in ("update", "delete")]


# Revision 0008 (PostgreSQL only): the journal partitioned by booking month (docs/scale.md).
# A unique index of a partitioned table must include the partition key, so the idempotency key
# (platform_id, event_id) moves to `event_key`, written by the journal guard in the statement
# that writes the rows (one set-based INSERT per COPY): no journal row is booked without its key.
EVENT_KEY_TABLE = """CREATE TABLE event_key (
    platform_id INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    entry_id BIGINT NOT NULL,
    booking_month INTEGER NOT NULL,
    CONSTRAINT event_key_pkey PRIMARY KEY (platform_id, event_id))"""

#: `ansinh archive` (ledger/archive.py): each archiving and restoring of a month, append-only;
#: a month is archived now when its latest row says so.
ARCHIVED_MONTH_TABLE = """CREATE TABLE archived_month (
    id BIGINT PRIMARY KEY,
    month INTEGER NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('archived', 'restored')),
    file TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    entry_count BIGINT NOT NULL,
    hashes_sha256 TEXT NOT NULL,
    recorded_at TEXT NOT NULL)"""

POSTGRES_PARTITIONED_JOURNAL_GUARD = POSTGRES_JOURNAL_GUARD.replace(
    "         RETURN NULL;\n       END $$",
    """         INSERT INTO event_key (platform_id, event_id, entry_id, booking_month)
           SELECT n.platform_id, n.event_id, n.id, n.booking_month FROM new_rows n WHERE n.event_id IS NOT NULL;
         RETURN NULL;
       END $$""")
assert POSTGRES_PARTITIONED_JOURNAL_GUARD != POSTGRES_JOURNAL_GUARD

#: The guards of one journal partition: a statement names the table it writes, and only that
#: table's statement triggers fire — so an UPDATE, TRUNCATE or INSERT aimed at a partition
#: directly meets the same guards as one aimed at `journal` (docs/scale.md).
PARTITION_TRIGGERS = (
    "CREATE TRIGGER journal_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {name} "
    "FOR EACH STATEMENT EXECUTE FUNCTION ansinh_refuse_change()",
    "CREATE TRIGGER journal_guard AFTER INSERT ON {name} REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION ansinh_journal_guard()",
)

#: `ansinh_journal_partition(month)`: the partition `journal_YYYYMM` of one booking month, with its
#: guards, in the journal's own schema; false when it exists already. Called by `write_block` for a
#: month it has not seen and by `close_month` for the months ahead.
POSTGRES_PARTITION_FUNCTION = """CREATE OR REPLACE FUNCTION ansinh_journal_partition(month integer)
       RETURNS boolean LANGUAGE plpgsql AS $$
       DECLARE
         home text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE c.oid = 'journal'::regclass);
         name text := 'journal_' || month;
       BEGIN
         IF to_regclass(format('%I.%I', home, name)) IS NOT NULL THEN
           RETURN false;
         END IF;
         EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.journal FOR VALUES FROM (%s) TO (%s)',
                        home, name, home, month, month + 1);
         EXECUTE format('""" + PARTITION_TRIGGERS[0].format(name="%I.%I") + """', home, name);
         EXECUTE format('""" + PARTITION_TRIGGERS[1].format(name="%I.%I") + """', home, name);
         RETURN true;
       END $$"""


def partitioned_journal_statements() -> list[str]:
    """Revision 0008 on PostgreSQL: `journal` (as left by 0007) becomes a table partitioned by
    booking month, one partition per month present plus `journal_default`; rows move unchanged."""
    return [
        "DROP VIEW IF EXISTS legs",
        "ALTER TABLE journal RENAME TO journal_0007",
        "ALTER TABLE journal_0007 DROP CONSTRAINT compact_entries_balance",
        "ALTER INDEX journal_pkey RENAME TO journal_0007_pkey",
        "ALTER INDEX journal_event_key RENAME TO journal_0007_event_key",
        "DROP INDEX IF EXISTS journal_booking_month",
        "DROP INDEX IF EXISTS journal_original",
        "CREATE TABLE journal (LIKE journal_0007 INCLUDING DEFAULTS) PARTITION BY RANGE (booking_month)",
        "ALTER TABLE journal ADD CONSTRAINT journal_pkey PRIMARY KEY (id, booking_month)",
        POSTGRES_COMPACT_CHECK,
        "CREATE INDEX journal_original ON journal (original_entry_id) WHERE original_entry_id IS NOT NULL",
        EVENT_KEY_TABLE,
        POSTGRES_PARTITIONED_JOURNAL_GUARD,
        POSTGRES_PARTITION_FUNCTION,
        "CREATE TABLE journal_default PARTITION OF journal DEFAULT",
        *[statement.format(name="journal_default") for statement in PARTITION_TRIGGERS],
        "SELECT ansinh_journal_partition(booking_month) FROM (SELECT DISTINCT booking_month FROM journal_0007) AS m",
        # Rows move before the parent's guards exist: moved rows of closed months are not new bookings.
        "INSERT INTO journal SELECT * FROM journal_0007 ORDER BY id",
        "INSERT INTO event_key (platform_id, event_id, entry_id, booking_month) SELECT platform_id, event_id, id, "
        "booking_month FROM journal_0007 WHERE event_id IS NOT NULL",
        "DROP TABLE journal_0007",
        "CREATE TRIGGER journal_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON journal "
        "FOR EACH STATEMENT EXECUTE FUNCTION ansinh_refuse_change()",
        """CREATE TRIGGER journal_guard AFTER INSERT ON journal REFERENCING NEW TABLE AS new_rows
           FOR EACH STATEMENT EXECUTE FUNCTION ansinh_journal_guard()""",
        "CREATE TRIGGER event_key_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON event_key "
        "FOR EACH STATEMENT EXECUTE FUNCTION ansinh_refuse_change()",
        ARCHIVED_MONTH_TABLE,
        "CREATE TRIGGER archived_month_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON archived_month "
        "FOR EACH STATEMENT EXECUTE FUNCTION ansinh_refuse_change()",
        LEGS_VIEW,
    ]


#: Revision 0010: a worker's entries of a month by id, for the per-trip record (ledger/trips.py).
#: SQLite's index entries end in the rowid, which is the id; PostgreSQL's name it (on the
#: partitioned parent: every partition, present or created later, gets its own).
WORKER_MONTH_INDEX = {
    "sqlite": "CREATE INDEX IF NOT EXISTS journal_worker_month ON journal (worker_id, booking_month)",
    "postgresql": "CREATE INDEX IF NOT EXISTS journal_worker_month ON journal (worker_id, booking_month, id)",
}


# Revision 0011 (issue 15, bytes per event; docs/performance.md "Bytes per event").
#
# PostgreSQL: `event_key` is keyed by a 16-byte digest of the idempotency key instead of its text:
# `ansinh_event_key(platform_id, event_id)`, the first 16 bytes of SHA-256 over the platform id
# (4 bytes, big-endian) and the event id's UTF-8 bytes, as a `uuid` (fixed width, no length byte,
# compared by memcmp). The journal guard writes the keys with it, so no code path can book an event
# without its key; ingest computes the same digests in Python to look them up
# (`ledger.archive.event_key_digests`, held equal by a test). A key found is checked against the
# journal row's own (platform_id, event_id) (`ledger.archive.fetch_events`): two ids with one digest
# (odds ~n²/2¹²⁹, ~10⁻¹⁹ for 10¹⁰ events) are refused with an error, never taken as duplicates.
EVENT_KEY_FUNCTION = """CREATE OR REPLACE FUNCTION ansinh_event_key(platform_id integer, event_id text)
       RETURNS uuid LANGUAGE sql STABLE STRICT PARALLEL SAFE AS
       $$ SELECT encode(substring(sha256(int4send(platform_id) || convert_to(event_id, 'UTF8')) FROM 1 FOR 16),
                        'hex')::uuid $$"""

POSTGRES_DIGEST_JOURNAL_GUARD = POSTGRES_JOURNAL_GUARD.replace(
    "         RETURN NULL;\n       END $$",
    """         INSERT INTO event_key (key, entry_id, booking_month)
           SELECT ansinh_event_key(n.platform_id, n.event_id), n.id, n.booking_month
             FROM new_rows n WHERE n.event_id IS NOT NULL;
         RETURN NULL;
       END $$""")
assert POSTGRES_DIGEST_JOURNAL_GUARD != POSTGRES_JOURNAL_GUARD

#: `ansinh_journal_partition(month)` since revision 0011: a new month's partition has the journal's
#: columns in the order that pads least — fixed-width columns by alignment (8, 4, 2, 1 bytes), then
#: the variable-width ones (event id, hashes, texts) — read from the catalogue, so a column added
#: to the journal later is placed too. It is created apart, given the journal's CHECKs and
#: attached: a partition's physical order may differ from its parent's (rows are routed by column
#: name; every reader names its columns). −8 bytes a typical event row. Partitions that hold rows
#: keep the order they were written in.
POSTGRES_COMPACT_PARTITION_FUNCTION = """CREATE OR REPLACE FUNCTION ansinh_journal_partition(month integer)
       RETURNS boolean LANGUAGE plpgsql AS $$
       DECLARE
         home text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE c.oid = 'journal'::regclass);
         name text := 'journal_' || month;
         columns text;
         checked record;
       BEGIN
         IF to_regclass(format('%I.%I', home, name)) IS NOT NULL THEN
           RETURN false;
         END IF;
         SELECT string_agg(format('%I %s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                                  CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END), ', '
                           ORDER BY a.attlen < 0, position(t.typalign IN 'disc'), a.attnum)
           INTO columns
           FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
          WHERE a.attrelid = 'journal'::regclass AND a.attnum > 0 AND NOT a.attisdropped;
         EXECUTE format('CREATE TABLE %I.%I (%s)', home, name, columns);
         FOR checked IN SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint
                         WHERE conrelid = 'journal'::regclass AND contype = 'c' LOOP
           EXECUTE format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', home, name, checked.conname, checked.definition);
         END LOOP;
         EXECUTE format('ALTER TABLE %I.journal ATTACH PARTITION %I.%I FOR VALUES FROM (%s) TO (%s)',
                        home, home, name, month, month + 1);
         EXECUTE format('""" + PARTITION_TRIGGERS[0].format(name="%I.%I") + """', home, name);
         EXECUTE format('""" + PARTITION_TRIGGERS[1].format(name="%I.%I") + """', home, name);
         RETURN true;
       END $$"""

#: Revision 0011: partitions created ahead that hold no row yet are made again in the new order.
POSTGRES_RECREATE_EMPTY_PARTITIONS = """DO $$
       DECLARE
         part record;
         empty boolean;
       BEGIN
         FOR part IN SELECT c.relname, n.nspname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                       JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE i.inhparent = 'journal'::regclass AND c.relname ~ '^journal_[0-9]{6}$' LOOP
           EXECUTE format('SELECT NOT EXISTS (SELECT 1 FROM %I.%I)', part.nspname, part.relname) INTO empty;
           IF empty THEN
             EXECUTE format('DROP TABLE %I.%I', part.nspname, part.relname);
             PERFORM ansinh_journal_partition(substr(part.relname, 9)::integer);
           END IF;
         END LOOP;
       END $$"""

#: The aggregates are the only rows that change (one upsert per worker-month and block): pages kept
#: part empty let PostgreSQL update a row in its own page (a HOT update: no new index entry) and
#: prune the old versions there, instead of appending every version until autovacuum comes.
AGGREGATE_FILLFACTOR = 50


def digest_event_key_statements() -> list[str]:
    """Revision 0011 on PostgreSQL: `event_key` rebuilt with the digest key (rows keep their entry
    and month); the guard writes the new rows; the balance CHECK takes a NULL share as 0; new
    partitions (and those created ahead, still empty) get the column order that pads least; the
    aggregates get their fill factor."""
    return [
        EVENT_KEY_FUNCTION,
        "ALTER TABLE event_key RENAME TO event_key_0010",
        "ALTER INDEX event_key_pkey RENAME TO event_key_0010_pkey",
        "CREATE TABLE event_key (key uuid NOT NULL, entry_id BIGINT NOT NULL, booking_month INTEGER NOT NULL)",
        "INSERT INTO event_key (key, entry_id, booking_month) SELECT ansinh_event_key(platform_id, event_id), "
        "entry_id, booking_month FROM event_key_0010 ORDER BY 1",
        # built after the rows (a sorted build packs the pages); a digest shared by two keys fails here
        "ALTER TABLE event_key ADD CONSTRAINT event_key_pkey PRIMARY KEY (key)",
        "DROP TABLE event_key_0010",
        "CREATE TRIGGER event_key_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON event_key "
        "FOR EACH STATEMENT EXECUTE FUNCTION ansinh_refuse_change()",
        POSTGRES_DIGEST_JOURNAL_GUARD,
        *POSTGRES_NULLABLE_COMPACT_CHECK,
        POSTGRES_COMPACT_PARTITION_FUNCTION,
        POSTGRES_RECREATE_EMPTY_PARTITIONS,
        f"ALTER TABLE worker_month SET (fillfactor = {AGGREGATE_FILLFACTOR})",
        f"ALTER TABLE platform_month SET (fillfactor = {AGGREGATE_FILLFACTOR})",
    ]


#: Revision 0011, both stores: a share with no leg is written NULL (`write_block`); the balance
#: guard takes NULL as 0. SQLite's trigger, PostgreSQL's CHECK (declared on the partitioned parent,
#: so every partition, a restored one included, carries it; re-adding it reads every row once).
SQLITE_NULLABLE_COMPACT_GUARD = [
    "DROP TRIGGER IF EXISTS journal_compact_guard",
    """CREATE TRIGGER journal_compact_guard BEFORE INSERT ON journal WHEN NEW.receivable_vnd IS NOT NULL BEGIN
         SELECT RAISE(ABORT, 'compact_entries_balance: a compact entry does not balance')
           WHERE (""" + " + ".join(["NEW.receivable_vnd", *(f"coalesce(NEW.{column}, 0)" for column in SHARE_COLUMNS)])
    + """) <> 0;
       END""",
]
POSTGRES_NULLABLE_COMPACT_CHECK = [
    "ALTER TABLE journal DROP CONSTRAINT compact_entries_balance",
    f"ALTER TABLE journal ADD CONSTRAINT compact_entries_balance CHECK ({NULLABLE_COMPACT_BALANCE_CHECK})",
]

#: Revision 0011 on SQLite: one index, `journal_worker_month` on (booking_month, worker_id) — the
#: rowid (the id) ends each entry — serves the per-trip record (a worker's month in id order) and
#: every month query; `journal_booking_month` (booking_month, rowid) is dropped.
SQLITE_MONTH_WORKER_INDEX = "CREATE INDEX journal_worker_month ON journal (booking_month, worker_id)"
