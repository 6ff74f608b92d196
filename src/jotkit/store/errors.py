"""The store's errors: what a caller of any store operation may have to handle."""

from __future__ import annotations

from jotkit.codes import ERR_CONFLICT, ERR_STORE

__all__ = ["Conflict", "StoreError"]


class StoreError(RuntimeError):
    """The database is unreachable or refused an operation. Nothing was written, unless
    ``outcome_unknown``: the connection failed while committing, so the change may be in."""

    code = ERR_STORE

    def __init__(self, message: str, *, outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


class Conflict(StoreError):
    """The row already exists (a user with that email...)."""

    code = ERR_CONFLICT
