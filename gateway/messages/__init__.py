"""PX/1 messages: in from partners, out to them, and what happens to them in between.

api.py, partner_api.py  the partner endpoints (thin HTTP over the services below)
partner_reads.py  the partners' authenticated reads: receipts, inbox, tracking
intake.py        verify, validate and durably store a partner's message; the signed receipt
receipts.py      receipts already given, again byte for byte
tokens.py        bearer JWTs for partners' GET requests, with jti replay protection
ratelimit.py     per-partner token buckets
batches.py       evidence of batch requests (MM-SSB JSON Lines) and their lines
processing.py    the ``process_inbound`` outbox handler: runs the message type's processor
acks.py          ``receipt.ack`` from pull partners
partner_cancel.py  a partner cancels its own message
outbound.py      hub -> partner messages: sign, store, queue delivery (or the inbox)
hub_cancel.py    the hub cancels its own undelivered message
delivery.py      the ``deliver`` outbox handler: push to the partner, keep its signed receipt
inbox.py         the pull partners' inbox
tracking.py      a case end to end, as one partner sees it
"""
