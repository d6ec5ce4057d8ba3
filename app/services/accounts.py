"""Users: creating them, checking passwords, and the bot that authors machine revisions."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import BOT_USERNAME, Role, User


class AccountError(ValueError):
    """A user-facing reason an account cannot be created."""


def create_user(username: str, password: str, role: str = Role.PROOFREADER) -> User:
    username = username.strip()
    if not username or len(username) > 64:
        raise AccountError("A username must have 1 to 64 characters.")
    if role not in set(Role):
        raise AccountError(f"Unknown role {role!r}; choose one of {', '.join(Role)}.")
    if len(password) < 8:
        raise AccountError("A password must have at least 8 characters.")
    if db.session.scalar(select(User).filter_by(username=username)) is not None:
        raise AccountError(f"The username {username!r} is taken.")
    user = User(username=username, role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def user_named(username: str) -> User | None:
    return db.session.scalar(select(User).filter_by(username=username.strip()))


def authenticate(username: str, password: str) -> User | None:
    user = user_named(username)
    if user is None or not user.check_password(password):
        return None
    return user


def bot_user() -> User:
    """The author of OCR revisions, created on first use; it has no usable password."""
    user = db.session.scalar(select(User).filter_by(username=BOT_USERNAME))
    if user is not None:
        return user
    try:
        # A savepoint: two processes may create the bot at once, and the loser must not
        # lose the transaction it is in.
        with db.session.begin_nested():
            user = User(username=BOT_USERNAME, role=Role.PROOFREADER, is_bot=True)
            user.set_password(secrets.token_hex(32))
            db.session.add(user)
    except IntegrityError:
        user = db.session.scalar(select(User).filter_by(username=BOT_USERNAME))
    return user
