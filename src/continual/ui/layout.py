"""The frame every signed-in page shares: header with navigation and log-out, content column.

Links are prefix-free (``/models``): NiceGUI prepends the mount path in the browser, so
the same pages work under ``/dashboard`` or behind a proxy's extra prefix.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import app, ui

from continual.ui.auth import SESSION_KEY
from continual.ui.context import DashboardContext

NAV: tuple[tuple[str, str, str], ...] = (
    ("/", "Overview", "dashboard"),
    ("/models", "Models", "layers"),
    ("/events", "Events", "receipt_long"),
    ("/playground", "Playground", "science"),
)
PRIMARY = "#2563eb"


def signed_in(ctx: DashboardContext) -> bool:
    """Whether this browser still has a session; if not, send it to the login page.

    Pages are guarded by the middleware, but a page stays open over the websocket:
    actions and timers call this so an expired session stops acting at once.
    """
    if ctx.signed_in(app.storage.user):
        return True
    ui.navigate.to("/login")
    return False


def log_out() -> None:
    """End this browser's session and show the login page."""
    app.storage.user.pop(SESSION_KEY, None)
    ui.navigate.to("/login")


def style() -> None:
    """Colours and page background shared by every page (the login page included)."""
    ui.colors(primary=PRIMARY)
    ui.query("body").classes("bg-slate-50 text-slate-900")


@contextmanager
def frame(current: str) -> Iterator[None]:
    """Header with navigation, then a centred content column for the page's body."""
    style()
    with ui.header(elevated=False).classes(
        "bg-white text-slate-900 border-b border-slate-200 items-center gap-1 px-2 sm:px-4 py-1 no-wrap"
    ):
        with ui.row().classes("items-center gap-2 mr-1 sm:mr-4 no-wrap"):
            ui.icon("autorenew", color="primary").classes("text-2xl")
            ui.label("continual").classes("text-lg font-semibold max-sm:hidden")
        for path, label, icon in NAV:
            active = path == current
            tone = "text-primary bg-blue-50" if active else "text-slate-600 hover:bg-slate-100"
            with (
                ui.link(target=path)
                .classes(f"{tone} no-underline rounded-md px-2 py-1 flex items-center gap-1")
                .props(f"data-testid=nav-{label.lower()} aria-label={label}")
            ):
                ui.icon(icon).classes("text-xl")
                ui.label(label).classes("max-md:hidden text-sm font-medium")
        ui.space()
        ui.button(icon="logout", on_click=log_out).props(
            "flat round dense color=grey-8 data-testid=logout aria-label='Log out'"
        ).tooltip("Log out")
    with ui.column().classes("w-full max-w-6xl mx-auto p-3 sm:p-4 gap-4"):
        yield


def card_title(text: str, caption: str | None = None) -> None:
    """A card's heading and an optional one-line explanation under it."""
    ui.label(text).classes("text-base font-semibold")
    if caption:
        ui.label(caption).classes("text-xs text-slate-500 -mt-1")
