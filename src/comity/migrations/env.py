"""Alembic environment: runs migrations on the connection ``comity.db.upgrade`` passes."""

from __future__ import annotations

from alembic import context

from comity.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through comity.db.upgrade (`comity db upgrade`)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
