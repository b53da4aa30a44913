"""The chart of accounts, as small integer codes stored in every posting.

An account is the triple (account_kind, owner_id, scheme):

| account | kind | owner | scheme | normal side |
|---|---|---|---|---|
| worker's scheme account | worker | worker row id | si / oa / ui | credit (what the fund owes the worker) |
| platform receivable | platform | platform row id | none | debit (what the platform owes the fund) |
| state subsidy receivable | state | 0 | si / oa / ui | debit (what the state budget owes) |
| subsidy clearing | clearing | month (yyyymm) | si / oa / ui | zero once the month is closed |
| money received | bank | 0 | none | debit (cash at the fund's bank: platforms', the state's and workers' top-ups) |
| late-payment interest | late_interest | platform row id | none | credit (interest earned on overdue dues) |

A posting's `party` says whose money a worker-account leg is: the worker's own
(withheld from a trip, or paid in directly as a top-up, RULES.md §11), the platform's
share, or the state's subsidy. Sign: + debit, − credit.
"""
from __future__ import annotations

import enum

from rules.model import PARTIES, SCHEMES


class AccountKind(enum.IntEnum):
    worker = 1
    platform = 2
    state = 3
    clearing = 4
    bank = 5
    late_interest = 6


class EntryType(enum.IntEnum):
    event = 1  # a completed trip, delivery or order
    refund = 2  # reverses part of an event
    subsidy_claim = 3  # month close: state receivable against clearing
    subsidy = 4  # month close: clearing to one worker's accounts
    payment = 5  # money received: bank against a platform's or the state's receivable (ledger/money.py)
    late_interest = 6  # month close: interest on a platform's overdue dues
    topup = 7  # money a worker paid in: bank against the worker's si account, party worker (RULES.md §11)


NO_SCHEME = 0
SCHEME_CODE = {scheme: index + 1 for index, scheme in enumerate(SCHEMES)}
SCHEME_NAME = {code: scheme for scheme, code in SCHEME_CODE.items()}
NO_PARTY = 0
PARTY_CODE = {**{party: index + 1 for index, party in enumerate(PARTIES)}, "state": len(PARTIES) + 1}
PARTY_NAME = {code: party for party, code in PARTY_CODE.items()}
