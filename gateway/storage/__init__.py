"""Persistence: SQLAlchemy Core on SQLite (embedded) and PostgreSQL (production).

types.py    column types and the metadata's naming convention
tables/     every table, by the noun that owns it
engine.py   the async engine for each database
uow.py      the unit of work: the only thing that commits
commit_order.py  reading and ordering by commit order on PostgreSQL
migrate.py  Alembic migrations run from code
"""
