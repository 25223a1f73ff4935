"""The ops admin API (``/admin/v1``): people see, correct and act, four eyes on money and
trust, every request on the record. See docs/admin.md."""
