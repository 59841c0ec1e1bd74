"""webhook_deliveries.sweep_id: a sweep's own delivery (job_id empty), at most one per sweep

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 02:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sweep_id', sa.String(length=32), nullable=True))
        batch_op.alter_column('job_id', existing_type=sa.String(length=32), nullable=True)
        batch_op.create_unique_constraint(batch_op.f('uq_webhook_deliveries_sweep_id'),
                                          ['sweep_id'])
        batch_op.create_foreign_key(batch_op.f('fk_webhook_deliveries_sweep_id_sweeps'),
                                    'sweeps', ['sweep_id'], ['id'], ondelete='CASCADE')


def downgrade() -> None:
    op.execute("DELETE FROM webhook_deliveries WHERE job_id IS NULL")
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_webhook_deliveries_sweep_id_sweeps'),
                                 type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_webhook_deliveries_sweep_id'), type_='unique')
        batch_op.alter_column('job_id', existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_column('sweep_id')
