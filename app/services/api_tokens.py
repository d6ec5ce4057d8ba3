"""API tokens: `Authorization: Bearer <token>` signs a script in as a user.

A token is shown once, when made (`flask users token NAME`); only its SHA-256 is stored, so a
copy of the database gives no usable token. `flask users revoke-tokens NAME` ends them all.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select, update

from app.extensions import db
from app.models import ApiToken, User, utcnow

#: Tokens start with this, so that one pasted in the wrong place is recognisable.
PREFIX = "ocrp_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def issue_token(user: User) -> str:
    """A new token for `user`; the caller shows it once, it is not stored."""
    token = PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_hash=_digest(token)))
    db.session.commit()
    return token


def user_for_token(token: str) -> User | None:
    """The user a live token belongs to, or None (unknown, revoked, or the bot's)."""
    if not token or len(token) > 200:
        return None
    row = db.session.scalar(
        select(ApiToken).filter_by(token_hash=_digest(token)).where(ApiToken.revoked_at.is_(None))
    )
    if row is None or row.user.is_bot:
        return None
    row.last_used_at = utcnow()
    db.session.commit()
    return row.user


def revoke_tokens(user: User) -> int:
    """Revoke every live token of `user`; returns how many."""
    revoked = db.session.execute(
        update(ApiToken)
        .filter_by(user_id=user.id)
        .where(ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount
    db.session.commit()
    return revoked


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
