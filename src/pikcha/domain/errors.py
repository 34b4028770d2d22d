"""The error tree of Pikcha.

Every failure a user can act on is a :class:`PikchaError`. Adapters translate
the errors of their drivers into one of these at their edge and chain the
original (``raise ... from exc``); the CLI turns any of them into one line and
exit code 2.
"""

from __future__ import annotations


class PikchaError(Exception):
    """The root of every error Pikcha raises on purpose."""


class ConfigurationError(PikchaError):
    """A setting, URL, flag or secret is missing or wrong."""


class RecordError(PikchaError):
    """A source record does not have the shape or values the shop's data needs.

    Names the record (its file or id), the field and the problem.
    """

    def __init__(self, record: str, field: str, problem: str) -> None:
        self.record = record
        self.field = field
        self.problem = problem
        super().__init__(f"{record}: field '{field}': {problem}")


class EnvelopeError(PikchaError):
    """An event envelope cannot be decoded or does not hold a valid event."""


class IntegrityError(PikchaError):
    """An operation would break an invariant of a port (uniqueness, ordering)."""


class NotFoundError(PikchaError):
    """A named thing (object, stream, table, entity) does not exist."""


class InfrastructureError(PikchaError):
    """An outside system failed; ``transient`` says whether a retry may help."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        self.transient = transient
        super().__init__(message)


class LockedError(InfrastructureError):
    """A resource that one process owns at a time is held by another one.

    Transient unless said otherwise: the owner lets go when it ends, so waiting
    may help; a lock this same process holds is not transient.
    """

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message, transient=transient)
