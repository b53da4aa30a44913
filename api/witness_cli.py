"""`ansinh witness publish|show`, and the witness steps of `close` and `verify` (registered in api/cli.py).

When records are published (docs/witness.md):
- `ansinh close --witness URL` publishes the month's anchor right after the close;
- `ansinh witness publish --witness URL` publishes the current chain head (run it from
  cron, e.g. every minute), or with `--close YYYY-MM` a close's anchor again (after a
  close whose publish failed);
- `ansinh consume` publishes the head every ANSINH_WITNESS_SECONDS (default 60) while
  ANSINH_WITNESS is set.
`ansinh verify --witness URL` reads the witness first, then checks the books against it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:  # imported where used: `ansinh --help` never loads NATS or the ledger
    from api.witness import WitnessTarget
    from ledger.verify import Check

console = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)
witness_app = typer.Typer(help="The outside witness: chain heads and close anchors kept where the books' "
                               "administrator cannot rewrite them (docs/witness.md).", no_args_is_help=True)
WitnessOption = Annotated[str, typer.Option(
    "--witness", envvar="ANSINH_WITNESS", metavar="nats://HOST:PORT[/STREAM]|FILE",
    help="where witness records go: a NATS JetStream stream (deny-delete, deny-purge) or a file")]
DbOption = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL; default ANSINH_DATABASE_URL "
                                                            "or ./ansinh.db")]


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {escape(message)}", markup=True, highlight=False)
    raise typer.Exit(1)


def target_of(text: str) -> WitnessTarget:
    from api.witness import WitnessError, WitnessTarget, publish, read  # noqa: F401
    try:
        return WitnessTarget.parse(text)
    except WitnessError as error:
        console.print(f"[red]error:[/red] --witness: {escape(str(error))}", markup=True, highlight=False)
        raise typer.Exit(2)


def publish_close(ledger, month: str, witness: str) -> str:
    """Publish a closed month's anchor; returns the line to print. Raises WitnessError."""
    from api.witness import WitnessError, WitnessTarget, publish, read  # noqa: F401
    from ledger.events import parse_month
    from ledger.store import consistent_snapshot
    from ledger.witness import close_record

    target = WitnessTarget.parse(witness)
    with consistent_snapshot(ledger) as conn:
        record = close_record(conn, parse_month(month))
    new = publish(target, [record])
    return (f"witnessed the anchor of {month} (block {record.block_id}) at {target.describe()}"
            + ("" if new else " (it was already there)"))


def publish_head(ledger, target: WitnessTarget) -> str:
    from api.witness import WitnessError, WitnessTarget, publish, read  # noqa: F401
    from ledger.store import consistent_snapshot
    from ledger.witness import current_head

    with consistent_snapshot(ledger) as conn:
        record = current_head(conn)
    if record is None:
        return "the books have no block yet: nothing to witness"
    new = publish(target, [record])
    return (f"witnessed the chain head, block {record.block_id} {record.block_hash.hex()[:16]}…, at "
            f"{target.describe()}" + ("" if new else " (unchanged since the last record)"))


def witness_checks(ledger, witnessed: list[tuple[WitnessTarget, list, list[str]]]) -> list[Check]:
    """One `witness` check per witness read (before the books' snapshot was taken)."""
    from ledger.witness import check_witness

    return [check_witness(ledger, records, target.describe(), problems) for target, records, problems in witnessed]


def read_witnesses(texts: list[str]) -> list[tuple[WitnessTarget, list, list[str]]]:
    """Every record of each witness, read before `verify` looks at the books: each record is then
    of a block the books had committed, so a head published meanwhile cannot look like a lost block."""
    from api.witness import WitnessError, WitnessTarget, publish, read  # noqa: F401
    witnessed = []
    for text in texts:
        target = target_of(text)
        try:
            records, problems = read(target)
        except WitnessError as error:
            _fail(str(error))
        witnessed.append((target, records, problems))
    return witnessed


@witness_app.command("publish")
def publish_command(
    witness: WitnessOption,
    close: Annotated[Optional[str], typer.Option("--close", metavar="YYYY-MM",
                                                 help="publish this closed month's anchor instead of the head")] = None,
    db: DbOption = None,
) -> None:
    """Publish the current chain head (or a close's anchor) to the witness."""
    from api.witness import WitnessError, WitnessTarget, publish, read  # noqa: F401
    from api.cli_books import open_books as _open

    target = target_of(witness)
    ledger = _open(db, None)
    try:
        line = publish_close(ledger, close, witness) if close else publish_head(ledger, target)
    except (WitnessError, ValueError) as error:
        _fail(str(error))
    finally:
        ledger.close()
    out.print(line)


@witness_app.command("show")
def show_command(witness: WitnessOption) -> None:
    """List the witness's records (kind, block, hash, month, when the block was written)."""
    from api.witness import WitnessError, WitnessTarget, publish, read  # noqa: F401
    from ledger.events import month_text

    target = target_of(witness)
    try:
        records, problems = read(target)
    except WitnessError as error:
        _fail(str(error))
    for record in records:
        month = month_text(record.month) if record.month is not None else ""
        out.print(f"{record.kind:5} block {record.block_id:>8} {record.block_hash.hex()} {month:7} "
                  f"{record.recorded_at}")
    out.print(f"{len(records)} records at {target.describe()}")
    for problem in problems:
        console.print(f"[red]problem:[/red] {escape(problem)}", markup=True, highlight=False)
    if problems:
        raise typer.Exit(1)
