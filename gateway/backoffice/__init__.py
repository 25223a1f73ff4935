"""The back-office API: PERKESO's own systems instruct payments and pensions, query them,
send hub messages to partners, and operate the outbox (dead letters).

auth.py     service-to-service bearer tokens (GATEWAY_BACKOFFICE_TOKENS_FILE), with scopes
api.py      the router under ``/v1/backoffice`` and the rails' callbacks (thin HTTP)
service.py  the use cases behind it: each opens and commits its unit of work
"""
