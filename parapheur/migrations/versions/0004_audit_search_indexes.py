"""indexes for the auditors' search: dossiers by creation date, audit events by actor

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dossiers") as batch_op:
        batch_op.create_index("ix_dossiers_created_at", ["created_at"], unique=False)
    with op.batch_alter_table("audit_events") as batch_op:
        batch_op.create_index("ix_audit_events_actor_kind", ["actor", "kind"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch_op:
        batch_op.drop_index("ix_audit_events_actor_kind")
    with op.batch_alter_table("dossiers") as batch_op:
        batch_op.drop_index("ix_dossiers_created_at")
