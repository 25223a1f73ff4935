"""Reconciliation rules: plain Python, no I/O.

A run reads a rail's statement line by line and the ledger's payments of that rail, and gives
**every statement line and every expected payment exactly one item**:

    statement line ──▶ exact key (end-to-end id = payment id, UETR, rail reference)
        ├─ found ───▶ matched | amount_mismatch | currency_mismatch | duplicate_line
        │             | returned | reversed | state_mismatch
        ├─ fee, fx ─▶ explained (bridge items, never a matching tolerance)
        └─ no key ──▶ unknown_line, with *proposed* payments (amount + currency + value date
                      window + reference): proposed to ops, never matched automatically
    expected payment (paid, on or before the business date, on no line of this statement)
        ──▶ pending (within the rail's T+N business days) | missing_on_statement (past it)
    unreadable line ──▶ quarantined

A line that would move a payment (``reconciled``, ``returned``) whose row was changed beside
the hub (``held``: it is not what its newest event recorded) is a ``state_mismatch`` instead
and moves nothing: nothing is written over such a payment, and the rest of the statement is
reconciled as usual.

Amounts are exact minor units. One line matches at most one payment, and one payment is met by
at most one outgoing line and one return line; a second one is a ``duplicate_line``. Batched
entries (``batch_ref``) are one booking of many transactions: each transaction is its own line
and matches its own payment, so a batch matches one-to-many.

The **bridge** explains the difference between the two sides per currency: ledger total
(what the ledger says left) minus statement total (what the statement says left) equals the
sum of the explained items' differences plus a residual, which is zero when every item is
matched, pending, returned, reversed or a fee/fx line.

The **verdict**: ``incomplete`` if any proof of the statement failed, its sequence does not
follow the previous statement of the same account, a line was quarantined or there is no
statement; else ``discrepancies`` if any item needs ops; else ``balanced``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import NamedTuple

from gateway.ports.rail import LineKind, StatementLine
from gateway.reconciliation.calendar import BusinessCalendar
from gateway.reconciliation.reasons import Action, reason_for

__all__ = [
    "BRIDGE_EXPLAINED", "CASE_KINDS", "DUE_DAYS", "HELD_DETAIL", "RULE_VERSION", "SETTLED",
    "CaseTerms", "CurrencyBridge", "ItemKind", "Item", "LedgerPayment", "Tally", "Verdict",
    "case_terms", "classify_expected", "classify_line", "line_keys", "line_subject", "propose",
    "reopens", "verdict",
]

# Bumped whenever a rule below changes what a run concludes: a run is identified by its inputs
# *and* the rules it applied, so the same statement under new rules is a new run.
RULE_VERSION = "recon-rules/1"
# How a held payment's item detail begins (``classify_line``); runs are found by it again.
HELD_DETAIL = "held, not "


class ItemKind(StrEnum):
    matched = "matched"
    pending = "pending"
    missing_on_statement = "missing_on_statement"
    unknown_line = "unknown_line"
    amount_mismatch = "amount_mismatch"
    currency_mismatch = "currency_mismatch"
    duplicate_line = "duplicate_line"
    returned = "returned"
    reversed = "reversed"
    state_mismatch = "state_mismatch"
    quarantined = "quarantined"
    fee = "fee"
    fx = "fx"


K = ItemKind
SETTLED = frozenset({K.matched, K.pending, K.fee, K.fx})  # nothing for ops
BRIDGE_EXPLAINED = SETTLED | {K.returned, K.reversed}  # differences the bridge explains
CASE_KINDS = frozenset(K) - SETTLED  # each opens or updates a case

# Business days ops have to act, per case kind (an assumption for PERKESO to set).
DUE_DAYS: dict[ItemKind, int] = {
    K.state_mismatch: 1, K.duplicate_line: 1, K.quarantined: 1, K.amount_mismatch: 2,
    K.currency_mismatch: 2, K.missing_on_statement: 2, K.returned: 3, K.reversed: 2,
    K.unknown_line: 3,
}

_PAID = frozenset({"paid", "reconciled"})
_NOTHING_MOVED = frozenset({"failed", "cancelled"})


class Verdict(StrEnum):
    balanced = "balanced"
    discrepancies = "discrepancies"
    incomplete = "incomplete"


# LedgerPayment and Item are named tuples, not frozen dataclasses: immutable all the same,
# and made once per line of a million-line run, where a frozen dataclass's __init__ (one
# object.__setattr__ per field) cost three times as much (~2.8 us a line, measured).


class LedgerPayment(NamedTuple):
    """What the ledger says of one payment, as reconciliation needs it."""

    pk: int
    payment_id: str
    state: str
    amount_minor: int
    currency: str
    rail_reference: str | None = None
    settles_on: date | None = None  # the business day its payout counts from (cut-off applied)
    # Reconciled by a run the current run supersedes (any earlier run of the same rail and
    # date, however many corrections back): the booking this statement restates, so it is
    # treated as paid, not as already booked.
    by_superseded: bool = False


class Item(NamedTuple):
    """One conclusion of a run: a line, a payment, or both, and what they say together.

    ``ledger_minor``/``statement_minor`` are signed (money out positive, back negative), each in
    its side's currency; ``to_state`` is the payment state the item moves the payment to.
    """

    kind: ItemKind
    payment: LedgerPayment | None = None
    line: StatementLine | None = None
    ledger_minor: int = 0
    ledger_currency: str | None = None
    statement_minor: int = 0
    statement_currency: str | None = None
    reason_code: str | None = None
    detail: str = ""
    to_state: str | None = None
    proposals: tuple[str, ...] = ()
    line_ref: str | None = None  # a quarantined line's reference (statement id and line no)

    @property
    def subject(self) -> str:
        """What a case about this item is about: the payment, or else the line."""
        if self.payment is not None:
            return self.payment.payment_id
        if self.line is not None:
            return line_subject(self.line)
        return f"line:{self.line_ref}" if self.line_ref else ""

    @property
    def back(self) -> bool:
        """Is this the money coming back (a return or reversal line)?"""
        return self.line is not None and self.line.kind in (LineKind.returned, LineKind.reversal)


def line_subject(line: StatementLine) -> str:
    """A line's identity for cases, stable across a corrected statement where possible."""
    for ref in (line.end_to_end_id, line.uetr, line.rail_reference):
        if ref:
            return f"line:{ref}"
    return f"line:{line.statement_id}#{line.line_no}"


def line_keys(line: StatementLine) -> tuple[str, ...]:
    """The exact keys a line can match by, in order of trust."""
    return tuple(k for k in (line.end_to_end_id, line.uetr, line.rail_reference) if k)


def _signed(line: StatementLine) -> int:
    return -line.amount.minor if line.credit else line.amount.minor


def classify_line(line: StatementLine, payment: LedgerPayment | None, *,
                  seen: bool, held: str | None = None) -> Item:
    """Classify a statement line against the payment its exact keys found (None: none).

    ``seen``: the payment already met a line of the same direction (out, or back) in this
    run, so this one is a duplicate. ``held``: why the payment's row is not what its newest
    event recorded (it was changed beside the hub); a line that would move it says so.
    """
    item = _classify_line(line, payment, seen=seen)
    if held is None or item.to_state is None:
        return item
    return item._replace(kind=K.state_mismatch, to_state=None,
                         detail=f"{HELD_DETAIL}{item.to_state}: {held}")


def _classify_line(line: StatementLine, payment: LedgerPayment | None, *,
                   seen: bool) -> Item:
    money = _signed(line)
    cur = line.amount.currency
    if line.kind in (LineKind.fee, LineKind.fx):
        return Item(K(line.kind.value), line=line, statement_minor=money, statement_currency=cur,
                    detail=f"{line.kind.value} line")
    if line.kind == LineKind.other:
        return Item(K.unknown_line, line=line, statement_minor=money, statement_currency=cur,
                    detail="a booking that is not a payout (funding, interest...)")
    if payment is None:
        moved = 0 if line.kind == LineKind.not_paid else money
        return Item(K.unknown_line, line=line, statement_minor=moved, statement_currency=cur,
                    detail="no payment has this line's keys")
    p = payment

    def own(kind: ItemKind, detail: str, *, ledger: int = 0, statement: int = 0,
            to_state: str | None = None) -> Item:
        return Item(kind, payment=p, line=line, ledger_minor=ledger, ledger_currency=p.currency,
                    statement_minor=statement, statement_currency=cur,
                    reason_code=line.return_reason, detail=detail, to_state=to_state)

    if line.kind == LineKind.not_paid:
        if p.state in _PAID:
            return own(K.state_mismatch, ledger=p.amount_minor, detail=(
                f"the rail says no money moved; the ledger says {p.state}"))
        if p.state in _NOTHING_MOVED:
            return own(K.matched, f"not paid, as the ledger says ({p.state})")
        return own(K.state_mismatch, f"the rail says not paid; the ledger says {p.state}")
    if line.kind in (LineKind.returned, LineKind.reversal):
        kind = K.returned if line.kind == LineKind.returned else K.reversed
        if seen:
            return own(K.duplicate_line, statement=money,
                        detail=f"a second {kind.value} line for this payment")
        if p.state not in _PAID and p.state != "returned":
            return own(K.state_mismatch, statement=money, detail=(
                f"money came back for a payout the ledger says is {p.state}"))
        if cur != p.currency or line.amount.minor != p.amount_minor:
            k = K.currency_mismatch if cur != p.currency else K.amount_mismatch
            return own(k, ledger=-p.amount_minor, statement=money, detail=(
                f"{kind.value} of {line.amount.minor} {cur} for a payment of "
                f"{p.amount_minor} {p.currency}"))
        return own(kind, ledger=-p.amount_minor, statement=money,
                    to_state="returned" if p.state in _PAID else None,
                    detail=f"{kind.value} by the rail"
                    + (f" ({line.return_reason})" if line.return_reason else ""))
    # An outgoing payout line.
    if line.credit:
        return own(K.unknown_line, statement=money, detail="a credit booked as a payout")
    if seen or (p.state == "reconciled" and not p.by_superseded):
        where = "in this statement" if seen else "on an earlier statement"
        return own(K.duplicate_line, statement=money,
                    detail=f"the payout was already booked {where}")
    if p.state not in _PAID and p.state != "returned":
        return own(K.state_mismatch, statement=money, detail=(
            f"the statement shows money moved; the ledger says {p.state}"))
    if cur != p.currency:
        return own(K.currency_mismatch, ledger=p.amount_minor, statement=money,
                    detail=f"paid in {cur}, instructed in {p.currency}")
    if line.amount.minor != p.amount_minor:
        return own(K.amount_mismatch, ledger=p.amount_minor, statement=money,
                    detail=f"statement {line.amount.minor}, ledger {p.amount_minor} (minor "
                    "units)")
    return own(K.matched, ledger=p.amount_minor, statement=money,
                to_state="reconciled" if p.state == "paid" else None,
                detail="matched by key")


def classify_expected(p: LedgerPayment, day: date, settlement_days: int,
                      cal: BusinessCalendar) -> Item:
    """Classify a paid payment that is on no line of the statement of ``day``."""
    start = p.settles_on or day
    age = cal.business_days_between(start, day)
    if age <= settlement_days:
        return Item(K.pending, payment=p, ledger_minor=p.amount_minor, ledger_currency=p.currency,
                    detail=f"T+{age} of T+{settlement_days}")
    return Item(K.missing_on_statement, payment=p, ledger_minor=p.amount_minor,
                ledger_currency=p.currency,
                detail=f"T+{age}, past the rail's T+{settlement_days}")


def propose(line: StatementLine, candidates: Iterable[LedgerPayment], *,
            window_days: int, limit: int = 5) -> tuple[str, ...]:
    """Payment ids a keyless line may be (same amount and currency, settled within
    ``window_days`` calendar days of its value date, no conflicting reference), for ops to
    confirm: never a match, even when there is only one."""
    when = line.value_on or line.booked_on
    found = []
    for p in candidates:
        if p.currency != line.amount.currency or p.amount_minor != line.amount.minor:
            continue
        if p.settles_on is not None and abs((p.settles_on - when).days) > window_days:
            continue
        if line.rail_reference and p.rail_reference and line.rail_reference != p.rail_reference:
            continue
        found.append(p.payment_id)
    return tuple(sorted(found)[:limit])


@dataclass
class CurrencyBridge:
    """Per currency: ledger total - statement total = explained + residual."""

    ledger: int = 0
    statement: int = 0
    explained: int = 0

    @property
    def residual(self) -> int:
        return self.ledger - self.statement - self.explained


@dataclass
class Tally:
    """Counts, totals and the bridge of a run, accumulated item by item (constant memory)."""

    counts: dict[str, int] = field(default_factory=dict)
    # kind -> currency -> [items, ledger minor, statement minor]
    totals: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    bridge: dict[str, CurrencyBridge] = field(default_factory=dict)

    def add(self, item: Item) -> None:
        self._add(item.kind, item.ledger_currency, item.statement_currency, 1,
                  item.ledger_minor, item.statement_minor)

    def add_all(self, items: Iterable[Item]) -> None:
        """``add`` of each, summed per (kind, currencies) first: the same tally, for a batch
        of thousands, at one dictionary step an item."""
        groups: dict[tuple[ItemKind, str | None, str | None], list[int]] = {}
        for item in items:
            g = groups.get(key := (item.kind, item.ledger_currency, item.statement_currency))
            if g is None:
                groups[key] = [1, item.ledger_minor, item.statement_minor]
            else:
                g[0] += 1
                g[1] += item.ledger_minor
                g[2] += item.statement_minor
        for (kind, lc, sc), (n, led, stm) in groups.items():
            self._add(kind, lc, sc, n, led, stm)

    def _add(self, kind: ItemKind, lc: str | None, sc: str | None, n: int, led: int,
             stm: int) -> None:
        """``n`` items of ``kind`` in currencies ``lc``/``sc``, their amounts summed."""
        k = kind.value
        self.counts[k] = self.counts.get(k, 0) + n
        by_cur = self.totals.setdefault(k, {})
        if lc is not None and lc == sc:
            sides = [(lc, led, stm)]
        else:
            sides = ([(lc, led, 0)] if lc is not None else []) + (
                [(sc, 0, stm)] if sc is not None else [])
        for cur, cur_led, cur_stm in sides:
            row = by_cur.setdefault(cur, [0, 0, 0])
            row[1] += cur_led
            row[2] += cur_stm
            b = self.bridge.setdefault(cur, CurrencyBridge())
            b.ledger += cur_led
            b.statement += cur_stm
            if kind in BRIDGE_EXPLAINED:
                b.explained += cur_led - cur_stm
        first = lc or sc
        if first is not None:
            by_cur.setdefault(first, [0, 0, 0])[0] += n

    @property
    def needs_ops(self) -> bool:
        return any(n and ItemKind(k) not in SETTLED for k, n in self.counts.items())


def taken_at_its_word(*, failed_proofs: int, sequence_gaps: int) -> bool:
    """Is a statement acted on? Only one that proves itself (every proof holds, its sequence
    numbers follow the statement before): the rail's whole, true day. One that does not is
    still classified and reported, but moves no payment and clears no case."""
    return not failed_proofs and not sequence_gaps


def verdict(tally: Tally, *, failed_proofs: int, sequence_gaps: int,
            statement_missing: bool) -> Verdict:
    """The run's verdict (see the module docstring)."""
    if (failed_proofs or sequence_gaps or statement_missing
            or tally.counts.get(K.quarantined.value, 0)):
        return Verdict.incomplete
    return Verdict.discrepancies if tally.needs_ops else Verdict.balanced


@dataclass(frozen=True, slots=True)
class CaseTerms:
    priority: str  # high | normal
    due_on: date
    action: str
    retry: bool


def case_terms(item: Item, opened_on: date, cal: BusinessCalendar) -> CaseTerms:
    """Priority, due date and action of the case an item opens."""
    reason = reason_for(item.reason_code)
    overpaid = item.kind in (K.amount_mismatch, K.currency_mismatch) and (
        item.statement_minor > item.ledger_minor)
    high = (item.kind in (K.state_mismatch, K.duplicate_line, K.reversed, K.quarantined)
            or overpaid or (reason is not None and reason.action == Action.verify_death))
    action = reason.action.value if reason is not None else Action.ops_review.value
    return CaseTerms("high" if high else "normal",
                     cal.add_business_days(opened_on, DUE_DAYS.get(item.kind, 3)), action,
                     reason.retry if reason is not None else False)


# An ops resolution that leaves the verdict to the rail's next word: a later run that still
# finds the case reopens it.
REASK = "reask"


def reopens(resolution: str | None, resolved_line_ref: str | None,
            found_line_ref: str | None) -> bool:
    """May a run that finds a closed case's (subject, kind) again reopen it?

    A case a run closed (no ``resolution``) reopens whenever it is found again. A case ops
    closed covers the evidence they saw: it reopens only when the run finds its cause again,
    on a statement line other than the one it was resolved on (``resolved_line_ref``), or
    when ops re-asked the rail (``reask``) and the run still finds it. A ledger-side case
    (no line: ``missing_on_statement``) found again by a later run stays closed: ops' word
    stands until the payment shows up on a statement, which is another kind of item.
    """
    if resolution is None or resolution == REASK:
        return True
    return found_line_ref is not None and found_line_ref != resolved_line_ref


def sequence_gaps(previous: Mapping[str, int], current: Sequence[tuple[str, int]]) -> list[str]:
    """Each break in the electronic sequence numbers of statements of the same account: the
    first must follow the previous run's last, and each the one before it in the file."""
    last = dict(previous)
    gaps = []
    for account, seq in current:
        before = last.get(account)
        if before is not None and seq != before + 1:
            gaps.append(f"account {account}: sequence {seq} does not follow {before}")
        last[account] = seq
    return gaps
