"""Processors of inbound partner messages about payments and pensions.

Each runs inside the inbound task's unit of work (gateway.messages.processing), so its effects
commit with the message's processing, exactly once. A message about another partner's pension
or payment changes nothing (and is logged): a partner can never act on another's beneficiary.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from gateway.errors import InvalidMessageError
from gateway.payments import pensions
from gateway.payments import repository as repo
from gateway.payments.domain import Cause, PaymentState
from gateway.payments.service import PaymentService
from gateway.ports.processing import ProcessingContext
from gateway.protocol.envelope import (
    BeneficiaryUpdate,
    DeathNotify,
    Envelope,
    LifeCertificateSubmit,
)
from gateway.protocol.envelope import PaymentConfirm as PaymentConfirmPayload
from gateway.storage.tables import payments, pension_schedules

__all__ = ["beneficiary_update", "death_notify", "life_certificate_submit", "payment_confirm"]

log = logging.getLogger(__name__)


# Payments whose outcome is not known yet (an update to one already at the rail is refused).
_OPEN = [PaymentState.instructed.value, PaymentState.sending.value, PaymentState.unknown.value,
         PaymentState.submitted.value, PaymentState.cancel_requested.value]


def _service(ctx: ProcessingContext) -> PaymentService:
    return PaymentService((), ctx.outbound)  # no rail needed: nothing here is sent to a rail


async def death_notify(ctx: ProcessingContext, env: Envelope) -> None:
    p = DeathNotify.model_validate(env.payload)
    stopped, cancelled = await pensions.stop_for_death(
        ctx.conn, _service(ctx), ctx.partner_id, p.pension_ref, p.claim_ref,
        f"{p.person.national_id.scheme}:{p.person.national_id.value}", p.died_on, ctx.now)
    log.info("death.notify %s: %d schedule(s) stopped, %d payment(s) cancelled", env.id,
             stopped, cancelled)


async def life_certificate_submit(ctx: ProcessingContext, env: Envelope) -> None:
    p = LifeCertificateSubmit.model_validate(env.payload)
    nid = p.beneficiary.national_id
    await pensions.record_life_certificate(ctx.conn, ctx.partner_id, p.pension_ref,
                                           f"{nid.scheme}:{nid.value}", p.certified_on, ctx.now)


async def payment_confirm(ctx: ProcessingContext, env: Envelope) -> None:
    p = PaymentConfirmPayload.model_validate(env.payload)
    row = (await repo.by_ids(ctx.conn, [p.payment_id], lock=True)).get(p.payment_id)
    if row is None or row.partner_id != ctx.partner_id:
        log.warning("payment.confirm %s for an unknown payment ignored", env.id)
        return
    detail = f"{p.outcome} on {p.confirmed_on.isoformat()}" + (f": {p.reason}" if p.reason
                                                                 else "")
    await _service(ctx).note(ctx.conn, row, Cause.partner_confirmed, detail, ctx.now,
                             confirmed=p.outcome)


def _unpayable(ctx: ProcessingContext, rail: str, account: str) -> str | None:
    """Why ``rail`` cannot pay ``account``, or None."""
    try:
        ctx.check_account(rail, account)
    except InvalidMessageError as exc:
        return exc.detail
    return None


async def beneficiary_update(ctx: ProcessingContext, env: Envelope) -> None:
    p = BeneficiaryUpdate.model_validate(env.payload)
    if p.payout is None:
        return  # contact details are not kept by payments
    new = {"provider": p.payout.provider, "account": p.payout.account,
           "account_name": p.payout.account_name}
    # An account the rail cannot pay is never applied; the message is already accepted (its
    # receipt stands), so the refusal and its reason go on the payment's and schedule's events.
    refused = f"payout account not changed by {env.id}: "
    if p.pension_ref is not None:
        s = (await ctx.conn.execute(select(pension_schedules).where(
            pension_schedules.c.pension_ref == p.pension_ref,
            pension_schedules.c.partner_id == ctx.partner_id).with_for_update())
        ).mappings().first()
        if s is not None:
            why = _unpayable(ctx, s.rail, p.payout.account)
            if why is None:
                await pensions.change_payout(
                    ctx.conn, s, new, Cause.payout_updated.value,
                    f"payout account changed by beneficiary.update {env.id} from "
                    f"{ctx.partner_id}", ctx.now)
            else:
                await pensions.change_payout(ctx.conn, s, None,
                                             Cause.payout_update_refused.value,
                                             refused + why, ctx.now)
        match = payments.c.pension_ref == p.pension_ref
    else:
        match = payments.c.claim_ref == p.claim_ref
    # Only payments never attempted can change account; one that may be at the rail is sent
    # (and resent) exactly as first instructed, and the refusal is recorded on it.
    ids = list((await ctx.conn.execute(select(payments.c.payment_id).where(
        match, payments.c.partner_id == ctx.partner_id,
        payments.c.state.in_(_OPEN)))).scalars())
    service = _service(ctx)
    for row in (await repo.by_ids(ctx.conn, ids, lock=True)).values():
        why = _unpayable(ctx, row.rail, p.payout.account)
        if why is not None:
            await service.note(ctx.conn, row, Cause.payout_update_refused, refused + why,
                               ctx.now)
        elif row.state == PaymentState.instructed.value:
            await service.note(ctx.conn, row, Cause.payout_updated,
                               f"payout account changed by beneficiary.update {env.id} from "
                               f"{ctx.partner_id}", ctx.now, **new)
        elif row.state in _OPEN:
            await service.note(ctx.conn, row, Cause.payout_update_refused,
                               f"payout account not changed by {env.id}: the payout may "
                               f"already be at the rail ({row.state}); it keeps the account "
                               "it was sent with", ctx.now)
