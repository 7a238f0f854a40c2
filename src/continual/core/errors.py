"""The one error tree of continual. Only the web layer turns these into status codes.

::

    ContinualError
    ├── InvalidInput          bad input from a caller (422); names the field
    │   └── PayloadTooLarge   a body or batch over the configured caps (413)
    ├── NotFound              an unknown model version or resource (404)
    ├── Conflict              the request clashes with work under way (409)
    ├── Unavailable           a dependency or the model is not ready (503)
    │   └── TrackingUnavailable   MLflow could not be reached in time
    └── TrainingFailed        a retrain could not produce a challenger
"""

from __future__ import annotations

from typing import Any


class ContinualError(Exception):
    """Base of every error the service raises on purpose."""

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class InvalidInput(ContinualError):
    """The caller sent something we cannot accept; nothing was stored."""


class PayloadTooLarge(InvalidInput):
    """A body or a batch is over the configured size caps."""


class NotFound(ContinualError):
    """The named resource does not exist."""


class Conflict(ContinualError):
    """The request clashes with work already under way (for example a running retrain)."""


class Unavailable(ContinualError):
    """A dependency (database, model, MLflow) cannot serve this request right now."""


class TrackingUnavailable(Unavailable):
    """MLflow did not answer within its bounded timeout and retries."""


class TrainingFailed(ContinualError):
    """Training could not produce a challenger (too few rows, one class, a fit error)."""
