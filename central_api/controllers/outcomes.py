"""How a reconcile pass that cannot converge ends, one way for every controller.

A reconciler raises one of two outcomes; :func:`report` writes it to the object's
conditions and :func:`settle` turns it into what the runtime does next:

- :class:`Blocked`: waiting for something outside the object (a reference that is not Ready,
  its tenant, a namespace being deleted). Nothing is wrong with the object or the backend,
  so no backoff: the pass simply runs again after ``after`` seconds (or when the object
  changes).
- :class:`Failed`: the backend refused or did not answer. Retried with growing backoff when
  ``retry`` (the backend may come back); otherwise only a change of the object, or the
  periodic resync, can help, so nothing is queued.

Either way the named condition and ``Ready`` turn False with the same reason and message,
the shape ``kubectl wait --for=condition=Ready`` and the console show.
"""

from __future__ import annotations

from ..kinds.common import Reconciled
from .runtime import Result

WAIT_SECONDS = 2.0
"""How soon a blocked pass looks again by default."""


class Outcome(Exception):
    """A pass that did not converge; ``reason`` is the conditions' CamelCase reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Blocked(Outcome):
    def __init__(self, reason: str, message: str, after: float = WAIT_SECONDS) -> None:
        super().__init__(reason, message)
        self.after = after


class Failed(Outcome):
    def __init__(self, reason: str, message: str, retry: bool = True) -> None:
        super().__init__(reason, message)
        self.retry = retry

    @classmethod
    def of(cls, exc: Exception) -> Failed:
        """An unexpected error as a retried failure: its ``reason`` if it has one (provider
        errors do), else its type's name."""
        if isinstance(exc, Failed):
            return exc
        return cls(str(getattr(exc, "reason", "") or type(exc).__name__), str(exc))


def report(obj: Reconciled, condition_type: str, outcome: Outcome) -> None:
    """``condition_type`` and ``Ready`` False with the outcome's reason and message."""
    obj.set_condition(condition_type, False, outcome.reason, str(outcome))
    obj.set_condition("Ready", False, outcome.reason, str(outcome))


def settle(outcome: Outcome) -> Result:
    """What the runtime does next; raises a retryable failure so that it backs off."""
    if isinstance(outcome, Blocked):
        return Result(requeue_after=outcome.after)
    if isinstance(outcome, Failed) and outcome.retry:
        raise outcome
    return Result()
