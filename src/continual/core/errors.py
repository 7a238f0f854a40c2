"""The one error tree of continual. Only the web layer turns these into status codes.

::

    ContinualError
    ├── InvalidInput          bad input from a caller (422); names the field
    │   └── PayloadTooLarge   a body or batch over the configured caps (413)
    ├── NotFound              an unknown model version or resource (404)
    ├── Conflict              the request clashes with work under way (409)
    ├── Unavailable           a dependency or the model is not ready (503)
    │   ├── TrackingUnavailable   MLflow could not be reached in time
    │   ├── StorageBusy       the database stayed locked past its busy timeout
    │   └── StorageFailed     the database failed otherwise
    ├── StorageFull           the database could not write: disk full or I/O (507)
    ├── TrainingFailed        a retrain could not produce a challenger
    └── DuplicateBatch        a retried batch, already stored (answered, not an error)
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


class StorageBusy(Unavailable):
    """The database stayed locked by another writer past its busy timeout (503)."""


class StorageFailed(Unavailable):
    """The database failed the request for another reason (503)."""


class StorageFull(ContinualError):
    """The database could not write: a full disk, a file-size limit or an I/O error (507)."""


class DuplicateBatch(ContinualError):
    """A batch was stored before under this idempotency key; nothing was written again.

    Not a failure: ingest answers it as ``duplicate``. A key reused for a different
    batch is a ``Conflict`` instead."""
