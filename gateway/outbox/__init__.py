"""The transactional outbox: work recorded in the same commit as its cause, done after it.

records.py   enqueue, complete, reschedule, dead-letter (always inside the caller's unit of work)
handlers.py  the handler seam (one kind of work) and handle_each
claiming.py  claim due work: FOR UPDATE SKIP LOCKED + a lease on PostgreSQL, BEGIN IMMEDIATE on
             SQLite; FIFO per ordering key
retry.py     the one retry policy (tenacity waits), chosen by the error's class
breaker.py   a circuit breaker per destination
dispatcher.py  the loop: claim, run handlers, apply the policy to failures
"""
