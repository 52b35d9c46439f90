"""Alembic migrations for the Herald schema (run them with ``herald db upgrade``)."""
