"""People: users with one role each, tokens that belong to a user (with an expiry, read-only, revoked),
jobs that record who submitted them on behalf of their owner, and projects' members.

Existing databases come forward with their people: a first admin user (`admin`) owns the admin
token(s) the server wrote before, and every distinct `jobs.owner` becomes a user (an artist, without a
password: they log in once an admin gives them one, or a token) so that their jobs keep their owner.

Revision ID: 0008
Revises: 0007
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_FALSE = sa.text("false")
FIRST_ADMIN = "admin"


def upgrade() -> None:
    now = datetime.now(timezone.utc)
    users = op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("source", sa.String(16), nullable=False, server_default="local"),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=_FALSE),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False))
    op.create_table(
        "project_members",
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True))
    op.add_column("tokens", sa.Column("user_id", sa.Integer))
    op.add_column("tokens", sa.Column("expires_at", sa.DateTime(timezone=True)))
    op.add_column("tokens", sa.Column("read_only", sa.Boolean, nullable=False, server_default=_FALSE))
    op.add_column("tokens", sa.Column("revoked_at", sa.DateTime(timezone=True)))
    op.create_index("ix_tokens_user_id", "tokens", ["user_id"])
    op.add_column("jobs", sa.Column("submitted_by", sa.String(100)))

    conn = op.get_bind()
    tokens = sa.table("tokens", sa.column("kind", sa.String), sa.column("user_id", sa.Integer))
    jobs = sa.table("jobs", sa.column("owner", sa.String))
    conn.execute(sa.insert(users).values(name=FIRST_ADMIN, role="admin", source="local", disabled=False,
                                         created_at=now))
    admin_id = conn.execute(sa.select(users.c.id).where(users.c.name == FIRST_ADMIN)).scalar_one()
    conn.execute(sa.update(tokens).where(tokens.c.kind == "admin").values(user_id=admin_id))
    owners = [r[0] for r in conn.execute(sa.select(jobs.c.owner).distinct()) if r[0] and r[0] != FIRST_ADMIN]
    if owners:
        conn.execute(sa.insert(users), [{"name": name, "role": "artist", "source": "local", "disabled": False,
                                         "created_at": now} for name in sorted(owners)])


def downgrade() -> None:
    # plain DROP COLUMN (SQLite 3.35 and later): only the new index names these columns
    op.drop_column("jobs", "submitted_by")
    op.drop_index("ix_tokens_user_id", table_name="tokens")
    for column in ("revoked_at", "read_only", "expires_at", "user_id"):
        op.drop_column("tokens", column)
    op.drop_table("project_members")
    op.drop_table("users")
