"""The bottom layer: tables, engine, migrations, ingest, account import and demo data."""
