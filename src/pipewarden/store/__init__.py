"""Stores: DuckDB (embedded default) and PostgreSQL (psycopg 3, COPY)."""
