"""The processors of partner messages owned by the partner flows, installed by the hub."""

from __future__ import annotations

from gateway.claims.processors import process_claim_notify, process_document_deliver
from gateway.messages.acks import process_receipt_ack
from gateway.messages.cancel import process_message_cancel
from gateway.messages.processing import Processor

__all__ = ["PARTNER_PROCESSORS", "install_partner_processors"]

PARTNER_PROCESSORS: dict[str, Processor] = {
    "claim.notify": process_claim_notify,
    "document.deliver": process_document_deliver,
    "message.cancel": process_message_cancel,
    "receipt.ack": process_receipt_ack,
}


def install_partner_processors(processors: dict[str, Processor]) -> None:
    """Register the partner flows' processors (refuses to replace another owner's)."""
    for type_, processor in PARTNER_PROCESSORS.items():
        existing = processors.setdefault(type_, processor)
        if existing is not processor:
            raise RuntimeError(f"a processor for {type_} is already registered")
