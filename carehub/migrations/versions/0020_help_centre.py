"""help centre: answer articles in English and French, their search structures, and what residents searched for
and found useful.

- PostgreSQL: carehub_help_document() (IMMUTABLE) builds an article's weighted tsvector in its own language's
  configuration (title A, summary and keywords B, body C), stored in the generated column search_document (outside
  the models, so queries never fetch it) with a GIN index.
- SQLite: an FTS5 table help_articles_fts (rowid = article id; porter stemming over unicode61 with diacritics
  removed, so "deneigement" finds "déneigement") kept in step by triggers.
CAUTION: a later SQLite batch migration that recreates help_articles drops these triggers; it must create them again.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 00:46:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import carehub.db

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_PG = [
    r"""
CREATE FUNCTION carehub_help_config(lang text) RETURNS regconfig LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN lang = 'fr' THEN 'french'::regconfig ELSE 'english'::regconfig END
$$
""",
    r"""
CREATE FUNCTION carehub_help_document(lang text, title text, summary text, keywords text, body text)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT setweight(to_tsvector(carehub_help_config(lang), coalesce(title, '')), 'A') ||
         setweight(to_tsvector(carehub_help_config(lang),
                               coalesce(summary, '') || ' ' || coalesce(keywords, '')), 'B') ||
         setweight(to_tsvector(carehub_help_config(lang), coalesce(body, '')), 'C')
$$
""",
    # Stored, not only indexed: ranking reads every matching row's document, and recomputing it from the text
    # per row made the query ~10x slower on 2,000 articles.
    r"""
ALTER TABLE help_articles ADD COLUMN search_document tsvector
 GENERATED ALWAYS AS (carehub_help_document(language, title, summary, keywords::text, body_text)) STORED
""",
    "CREATE INDEX ix_help_articles_search ON help_articles USING gin (search_document)",
]

_PG_DROP = [
    "DROP INDEX ix_help_articles_search",
    "ALTER TABLE help_articles DROP COLUMN search_document",
    "DROP FUNCTION carehub_help_document(text, text, text, text, text)",
    "DROP FUNCTION carehub_help_config(text)",
]

_SQLITE_ROW = (
    "(new.id, new.title, new.summary, "
    "(SELECT coalesce(group_concat(value, ' '), '') FROM json_each(new.keywords)), new.body_text)"
)
_SQLITE = [
    "CREATE VIRTUAL TABLE help_articles_fts USING fts5(title, summary, keywords, body, "
    "tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER help_articles_fts_insert AFTER INSERT ON help_articles BEGIN "
    f"INSERT INTO help_articles_fts(rowid, title, summary, keywords, body) VALUES {_SQLITE_ROW}; END",
    "CREATE TRIGGER help_articles_fts_update AFTER UPDATE OF title, summary, keywords, body_text ON help_articles "
    "BEGIN DELETE FROM help_articles_fts WHERE rowid = old.id; "
    f"INSERT INTO help_articles_fts(rowid, title, summary, keywords, body) VALUES {_SQLITE_ROW}; END",
    "CREATE TRIGGER help_articles_fts_delete AFTER DELETE ON help_articles BEGIN "
    "DELETE FROM help_articles_fts WHERE rowid = old.id; END",
]
_SQLITE_DROP = [
    "DROP TRIGGER help_articles_fts_delete",
    "DROP TRIGGER help_articles_fts_update",
    "DROP TRIGGER help_articles_fts_insert",
    "DROP TABLE help_articles_fts",
]


def upgrade() -> None:
    op.create_table(
        "help_articles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("body_markdown", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("related_services", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("review_due_at", carehub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reviewed_at", carehub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("embedding_model", sa.String(length=100), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("created_at", carehub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", carehub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", carehub.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["agents.id"]),
        sa.ForeignKeyConstraint(["updated_by"], ["agents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", "language"),
    )
    op.create_index("ix_help_articles_key", "help_articles", ["key"])
    op.create_index("ix_help_articles_topic", "help_articles", ["topic"])
    op.create_index("ix_help_articles_status", "help_articles", ["status"])
    op.create_table(
        "help_searches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", carehub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("query", sa.String(length=200), nullable=False),
        sa.Column("result_count", sa.Integer(), nullable=False),
        sa.Column("top_score", sa.Float(), nullable=False),
        sa.Column("good", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_help_searches_at", "help_searches", ["at"])
    op.create_table(
        "help_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("at", carehub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["help_articles.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_help_feedback_article_id", "help_feedback", ["article_id"])
    op.create_index("ix_help_feedback_at", "help_feedback", ["at"])
    statements = _PG if op.get_bind().dialect.name == "postgresql" else _SQLITE
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    statements = _PG_DROP if op.get_bind().dialect.name == "postgresql" else _SQLITE_DROP
    for statement in statements:
        op.execute(statement)
    op.drop_index("ix_help_feedback_at", table_name="help_feedback")
    op.drop_index("ix_help_feedback_article_id", table_name="help_feedback")
    op.drop_table("help_feedback")
    op.drop_index("ix_help_searches_at", table_name="help_searches")
    op.drop_table("help_searches")
    op.drop_index("ix_help_articles_status", table_name="help_articles")
    op.drop_index("ix_help_articles_topic", table_name="help_articles")
    op.drop_index("ix_help_articles_key", table_name="help_articles")
    op.drop_table("help_articles")
