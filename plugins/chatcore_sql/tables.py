"""The tables, as SQLAlchemy Core metadata: the schema the migrations in `migrations/` build.

Times are integer milliseconds since the epoch (BigInteger); ids are opaque strings made by
the storage. Every change here needs a new migration; a test fails when the two disagree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Named constraints make migrations deterministic on every database (and let SQLite's batch
# mode find them again later).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

ID = 32  # uuid4().hex

users = Table(
    "users",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("username", String(64), nullable=False),
    # The unique key: usernames are unique case-insensitively and keep their case.
    Column("username_lower", String(64), nullable=False),
    Column("display_name", String(256), nullable=False),
    # Lower-cased by Python for prefix search: the databases' own lower() differ (SQLite folds
    # ASCII only, PostgreSQL follows the database's locale).
    Column("display_name_lower", String(256), nullable=False),
    Column("avatar_media_id", String(64), nullable=True),
    Column("password_hash", Text, nullable=False),
    Column("created_ts", BigInteger, nullable=False),
    UniqueConstraint("username_lower"),
)

# One login is one refresh-token family, started by a password login.
logins = Table(
    "logins",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("user_id", String(ID), ForeignKey("users.id"), nullable=False, index=True),
    Column("created_ts", BigInteger, nullable=False),
    Column("ended_ts", BigInteger, nullable=True),
    Index(None, "ended_ts"),
)

# Refresh tokens are stored only as hashes; a used one is kept to detect reuse (theft).
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(128), primary_key=True),
    Column("login_id", String(ID), ForeignKey("logins.id"), nullable=False, index=True),
    Column("created_ts", BigInteger, nullable=False),
    Column("expires_ts", BigInteger, nullable=False),
    Column("used_ts", BigInteger, nullable=True),
)

# One JSON object per user, stored as text so both databases treat it alike.
user_settings = Table(
    "user_settings",
    metadata,
    Column("user_id", String(ID), ForeignKey("users.id"), primary_key=True),
    Column("data", Text, nullable=False),
    Column("updated_ts", BigInteger, nullable=False),
)
