"""Payout rails: one package per rail, each with its adapter and its loopback simulator.

- ``merchantrade``: e-wallet REST JSON rail (one payout per request, HMAC-signed).
- ``iso20022``: bank rail (``pain.001`` batches, ``pain.002`` status, ``camt.053``/``camt.054``).

Shared, private helpers: ``_hmac`` (request and callback signatures), ``_transport`` (httpx
failures and answers translated to the seam's delivery errors), ``_config`` (timeouts),
``_money`` (statement amounts in currencies the gateway does not pay in), ``_sim`` (fault
injection, the threaded loopback server and callback delivery used by both simulators).

``rail_client`` is the client for rail calls: httpcore's pool costs more CPU per request than
the request at a payout batch's 64 connections; its ``RailTransport`` (``_pool``) does not.
"""

from adapters.rails._pool import rail_client

__all__ = ["rail_client"]
