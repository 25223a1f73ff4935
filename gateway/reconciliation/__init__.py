"""Reconciliation of the rails' statements against the ledger."""
