"""The seams: small Protocols the hub calls and adapters or domain packages implement.

partner.py     a partner adapter (decode, encode, receipts, delivery)
rail.py        a payout rail (submit, status, callbacks, statements)
processing.py  a processor of inbound messages, and the outbound sender it may use
"""
