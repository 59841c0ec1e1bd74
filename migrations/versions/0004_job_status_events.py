"""job_status_events: every status change of a job, in order (the live event streams)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 01:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'job_status_events',
        sa.Column('job_id', sa.String(length=32), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('iteration', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'],
                                name=op.f('fk_job_status_events_job_id_jobs'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('job_id', 'seq', name=op.f('pk_job_status_events')),
    )
    # Jobs that existed before: their current status as their first event.
    op.execute("INSERT INTO job_status_events (job_id, seq, status, attempts, error, iteration, "
               "created_at) SELECT id, 1, status, attempts, error, iteration, updated_at "
               "FROM jobs")


def downgrade() -> None:
    op.drop_table('job_status_events')
