"""Alembic migrations for the task store, run programmatically by TaskStore.migrate()."""
