"""Alembic migrations of dropnet's schema (shipped as service._migrations)."""
