"""Reverse ETL into CRMs: plan against a ledger, batch, write, record."""
