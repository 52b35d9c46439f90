"""Cold moves: migration records keep what Nova's os-migrations shows (uuid, nodes, flavors, who asked)
and what a revert needs (the vm_state to return to).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = (
    ("uuid", 36),
    ("source_node", 255),
    ("dest_node", 255),
    ("old_flavor_id", 255),
    ("new_flavor_id", 255),
    ("old_vm_state", 255),
    ("user_id", 255),
    ("project_id", 255),
)


def upgrade() -> None:
    with op.batch_alter_table("migrations") as batch:
        for name, length in _COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length)))
        batch.create_index("ix_migrations_uuid", ["uuid"], unique=True)
        batch.create_index("ix_migrations_created_at", ["created_at"])


def downgrade() -> None:
    with op.batch_alter_table("migrations") as batch:
        batch.drop_index("ix_migrations_created_at")
        batch.drop_index("ix_migrations_uuid")
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
