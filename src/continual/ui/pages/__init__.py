"""The dashboard's pages, one module each; ``register`` adds them all to NiceGUI.

NiceGUI's page registry is process-wide, so ``register`` runs once per process
(``continual.ui.mount`` guarantees it); each page finds its app through the request.
"""

from __future__ import annotations

from continual.ui.pages import events, login, models, overview, playground


def register() -> None:
    """Add every dashboard page to NiceGUI's global app."""
    login.register()
    overview.register()
    models.register()
    events.register()
    playground.register()
