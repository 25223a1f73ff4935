"""How a process starts and what it runs beside requests.

bootstrap.py  first start: the development instance, and production's refusals
jobs.py       housekeeping loops: evidence chaining, jti purge, pension schedules
"""
