"""Domain errors raised by the store. The service turns them into HTTP errors in one place."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class InvalidInput(StoreError, ValueError):
    """A value the store refuses; ``field`` names it (``justification``, ``roles``…)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(StoreError, LookupError):
    """No such user, request or grant."""


class AlreadyExists(StoreError):
    """A user of that name exists already."""


class SelfDecision(StoreError):
    """An approver tried to approve or reject their own request."""


class AlreadyDecided(StoreError):
    """The request was decided already (or the grant is no longer active).

    ``status`` is the state found, so a caller can say "approved by someone else".
    """

    def __init__(self, what: str, status: str) -> None:
        super().__init__(f"{what} is {status}, not pending" if what.startswith("request")
                         else f"{what} is {status}, not active")
        self.status = status


class TooManyPending(StoreError):
    """The user has as many pending requests as they may (``limit``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"you have {limit} pending requests already: wait for a decision "
                         "(or ask again for one of the same platforms, which updates it)")
        self.limit = limit
