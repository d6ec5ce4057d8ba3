"""Who may see a project and who may act on it: the rules in one place.

Roles are of two kinds. A user's own role (proofreader, editor, admin) says what they may do
anywhere: editors create projects, admins do everything. A project's members (ProjectMember)
say who takes part in that project. A public project, the default, is seen by every signed-in
user and edited by every editor, as digitisation teams share their books; a private one is
seen only by its members and admins, and edited only by its member editors and admins.

"An editor of the project" (starting, cancelling, retrying and resuming batch OCR) is therefore
an admin, a member with the editor role, or, on a public project, any editor.
"""

from __future__ import annotations

from sqlalchemy import Select, exists, or_, select

from app.models import MemberRole, Project, ProjectMember, Role, User


def _member_role(user: User, project: Project) -> str | None:
    for member in project.members:
        if member.user_id == user.id:
            return member.role
    return None


def can_see(user: User | None, project: Project) -> bool:
    """The project's page, pages, images and batch OCR status."""
    if user is None or not getattr(user, "is_authenticated", False) or user.is_bot:
        return False
    if user.role == Role.ADMIN or not project.is_private:
        return True
    return _member_role(user, project) is not None


def is_project_editor(user: User | None, project: Project) -> bool:
    """Start, cancel, retry and resume batch OCR of the project."""
    if not can_see(user, project):
        return False
    if user.role == Role.ADMIN or _member_role(user, project) == MemberRole.EDITOR:
        return True
    return not project.is_private and user.role == Role.EDITOR


def visible_projects(user: User) -> Select:
    """The projects `user` sees, newest first."""
    query = select(Project).order_by(Project.created_at.desc())
    if user.role == Role.ADMIN:
        return query
    is_member = exists().where(
        ProjectMember.project_id == Project.id, ProjectMember.user_id == user.id
    )
    return query.where(or_(Project.is_private.is_(False), is_member))
