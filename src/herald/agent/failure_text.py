"""What an event's record may say about an exception: a reason a user can act on, never internals."""

from __future__ import annotations

from herald.domain.errors import HeraldError


def failure_text(exc: BaseException) -> str:
    """``Class: message`` for Herald's own errors, whose messages are written for users
    (a driver's refusal, a missing volume); ``internal error (Class)`` for anything else.

    An unexpected exception's text may hold addresses, paths or SQL: it belongs in the log only.
    """
    if isinstance(exc, HeraldError):
        return f"{type(exc).__name__}: {exc.text}"
    return f"internal error ({type(exc).__name__})"
