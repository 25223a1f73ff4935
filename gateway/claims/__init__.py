"""Claims as partners notify them: recorded once, answered ``claim.status received``.

processors.py  the ``claim.notify`` and ``document.deliver`` processors
"""
