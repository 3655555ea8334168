"""A bank: the Account aggregate (the write side) and the `balances` projection (a
read model), as an esctl model.

    esctl --db bank.db import sample_streams/bank/events.ndjson
    esctl --db bank.db --model sample_streams/bank/model.py project run balances
    esctl --db bank.db query "select * from balances order by account"

Amounts are whole currency units (integers), so balances are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from esctl.aggregates import Aggregate, CommandRejected, command, evolve
from esctl.projections import Projection, Table

# --- the write side: an account that refuses overdrafts ---------------------------------


@dataclass(frozen=True)
class AccountState:
    opened: bool = False
    owner: str | None = None
    balance: int = 0


def _amount(args: dict[str, Any]) -> int:
    amount = args.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise CommandRejected(f"amount must be a positive whole number, got {amount!r}")
    return amount


class Account(Aggregate):
    category = "account"  # streams account-ada, account-42, ...
    initial = AccountState

    @evolve("Opened")
    def opened(state: AccountState, data: dict[str, Any]) -> AccountState:
        return replace(state, opened=True, owner=data.get("owner"))

    @evolve("Deposited")
    def deposited(state: AccountState, data: dict[str, Any]) -> AccountState:
        return replace(state, balance=state.balance + data["amount"])

    @evolve("Withdrawn")
    def withdrawn(state: AccountState, data: dict[str, Any]) -> AccountState:
        return replace(state, balance=state.balance - data["amount"])

    @command("open")
    def open(state: AccountState, args: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        if state.opened:
            raise CommandRejected("the account is already open")
        owner = args.get("owner")
        if not isinstance(owner, str) or not owner:
            raise CommandRejected("open needs an owner")
        return [("Opened", {"owner": owner})]

    @command("deposit")
    def deposit(state: AccountState, args: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        if not state.opened:
            raise CommandRejected("no such account: open it first")
        return [("Deposited", {"amount": _amount(args)})]

    @command("withdraw")
    def withdraw(state: AccountState, args: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        if not state.opened:
            raise CommandRejected("no such account: open it first")
        amount = _amount(args)
        if amount > state.balance:
            raise CommandRejected(f"insufficient funds: balance {state.balance}, withdrawal {amount}")
        return [("Withdrawn", {"amount": amount})]


# --- the read side: one row per account --------------------------------------------------

balances = Projection(
    "balances",
    Table("balances", {"account": str, "balance": int, "version": int}, pk="account", indexes=["balance"]),
    categories=["account"],
    description="The balance of every account and the version of the event it reflects.",
)


def account_id(stream: str) -> str:
    return stream.partition("-")[2]


def next_version(row: dict[str, Any] | None, event: Any) -> dict[str, Any]:
    """The row this event applies to. esctl hands a projection each event once, in
    position order (so in version order within a stream): this check never fires
    here, and shows what a handler may rely on. Applied out of order (a deposit
    before the opening, a version skipped or repeated) the row would be wrong."""
    if row is None or row["version"] != event.version - 1:
        seen = "no row" if row is None else f"version {row['version']}"
        raise ValueError(f"{event.stream} v{event.version} applied out of order ({seen})")
    return row


@balances.on("Opened")
def on_opened(event: Any, db: Any) -> None:
    # insert, not upsert: opening twice would be an error, not a silent reset.
    db["balances"].insert({"account": account_id(event.stream), "balance": 0, "version": event.version})


@balances.on("Deposited")
def on_deposited(event: Any, db: Any) -> None:
    row = next_version(db["balances"].get(account_id(event.stream)), event)
    db["balances"].update(
        row["account"], {"balance": row["balance"] + event.data["amount"], "version": event.version}
    )


@balances.on("Withdrawn")
def on_withdrawn(event: Any, db: Any) -> None:
    row = next_version(db["balances"].get(account_id(event.stream)), event)
    db["balances"].update(
        row["account"], {"balance": row["balance"] - event.data["amount"], "version": event.version}
    )
