"""jobs of every kind, proofreading levels, scans' resolution, API tokens, exports,
notifications and webhooks

Revision ID: 5d2e8b41c7a9
Revises: 3c1f0a9d2b7e
Create Date: 2026-12-02 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5d2e8b41c7a9'
down_revision = '3c1f0a9d2b7e'
branch_labels = None
depends_on = None


def upgrade():
    # OCR jobs become jobs of a kind (OCR, export, search and replace), tracked alike.
    with op.batch_alter_table('ocr_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_ocr_jobs_project_id')
    op.rename_table('ocr_jobs', 'jobs')
    op.rename_table('ocr_job_pages', 'job_pages')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='ocr'))
        batch_op.add_column(sa.Column('options', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('message', sa.Text(), nullable=True))
        batch_op.alter_column('engine', existing_type=sa.String(length=32), nullable=True)
        batch_op.alter_column('language', existing_type=sa.String(length=64), nullable=True)
        batch_op.create_index(batch_op.f('ix_jobs_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_started_at'), ['started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_started_by_id'), ['started_by_id'], unique=False)
    with op.batch_alter_table('job_pages', schema=None) as batch_op:
        # None while a page of a job started with its upload is being prepared.
        batch_op.alter_column('page_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_index(batch_op.f('ix_job_pages_page_id'), ['page_id'], unique=False)

    # Plain RENAME COLUMN (SQLite 3.25+, PostgreSQL): it carries the unique constraint with it,
    # which batch mode's copy of the table cannot do for an unnamed constraint.
    op.execute('ALTER TABLE revisions RENAME COLUMN ocr_job_id TO job_id')
    with op.batch_alter_table('revisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f('ix_revisions_job_id'), ['job_id'], unique=False)

    # Proofreading levels, the scan's resolution and orientation.
    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpi', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('rotation', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('status', sa.String(length=16), nullable=False, server_default='needs-work'))
        batch_op.add_column(sa.Column('proofread_once_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_pages_proofread_once_by_id_users', 'users', ['proofread_once_by_id'], ['id'])

    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('detect_orientation', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('webhook_url', sa.String(length=2048), nullable=True))

    with op.batch_alter_table('project_members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify', sa.Boolean(), server_default=sa.false(), nullable=False))

    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('exports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=64), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('min_status', sa.String(length=16), nullable=True),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('path', sa.String(length=512), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job_id')
    )
    with op.batch_alter_table('exports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exports_fingerprint'), ['fingerprint'], unique=False)
        batch_op.create_index(batch_op.f('ix_exports_project_id'), ['project_id'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=64), nullable=True),
    sa.Column('title', sa.String(length=256), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('link', sa.String(length=512), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('read_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_user_id'), ['user_id'], unique=False)

    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=64), nullable=True),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_project_id'), ['project_id'], unique=False)


def downgrade():
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_project_id'))
    op.drop_table('webhook_deliveries')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_user_id'))
        batch_op.drop_index(batch_op.f('ix_notifications_created_at'))
    op.drop_table('notifications')
    with op.batch_alter_table('exports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exports_project_id'))
        batch_op.drop_index(batch_op.f('ix_exports_fingerprint'))
    op.drop_table('exports')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))
    op.drop_table('api_tokens')

    with op.batch_alter_table('project_members', schema=None) as batch_op:
        batch_op.drop_column('notify')
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_column('webhook_url')
        batch_op.drop_column('detect_orientation')
    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.drop_constraint('fk_pages_proofread_once_by_id_users', type_='foreignkey')
        batch_op.drop_column('proofread_once_by_id')
        batch_op.drop_column('status')
        batch_op.drop_column('rotation')
        batch_op.drop_column('dpi')

    with op.batch_alter_table('revisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revisions_job_id'))
        batch_op.drop_column('status')
    op.execute('ALTER TABLE revisions RENAME COLUMN job_id TO ocr_job_id')

    with op.batch_alter_table('job_pages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_pages_page_id'))
        batch_op.alter_column('page_id', existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_started_by_id'))
        batch_op.drop_index(batch_op.f('ix_jobs_started_at'))
        batch_op.drop_index(batch_op.f('ix_jobs_state'))
        batch_op.drop_index(batch_op.f('ix_jobs_kind'))
        batch_op.drop_index(batch_op.f('ix_jobs_project_id'))
        batch_op.alter_column('language', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('engine', existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_column('message')
        batch_op.drop_column('options')
        batch_op.drop_column('kind')
    op.rename_table('job_pages', 'ocr_job_pages')
    op.rename_table('jobs', 'ocr_jobs')
    with op.batch_alter_table('ocr_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_ocr_jobs_project_id', ['project_id'], unique=False)
