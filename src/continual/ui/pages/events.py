"""The events page: the decision log, newest first, filterable by kind, with the numbers.

Events come from ``Store.events`` (the same call as ``GET /events``); the "Check
decisions" filter lists the checks' own verdicts, which are kept apart from events so
that a check every few seconds does not bury the retrains and promotions.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nicegui import ui
from starlette.requests import Request

from continual.ui.context import DashboardContext, context_of
from continual.ui.layout import card_title, frame, signed_in
from continual.ui.view import CHECKS_FILTER, EVENT_KINDS, check_rows, event_rows

PAGE = 50
REFRESH = 5.0
ALL = "all"
_FILTERS: dict[str, str] = {
    ALL: "All events",
    CHECKS_FILTER: "Check decisions",
    **{kind: kind.replace("_", " ") for kind in EVENT_KINDS},
}
_COLUMNS: list[dict[str, Any]] = [
    {"name": "at", "label": "Time (UTC)", "field": "at", "align": "left"},
    {"name": "kind", "label": "Kind", "field": "kind", "align": "left"},
    {"name": "message", "label": "What happened", "field": "message", "align": "left"},
    {"name": "numbers", "label": "Numbers", "field": "numbers", "align": "left"},
]
_BADGE = """
<q-badge outline :label="props.row.kind" :color="
  ['promoted', 'recovered'].includes(props.row.kind) ? 'positive'
  : ['rejected', 'retrain_failed', 'degraded', 'check_failed', 'model_refused',
     'model_load_failed', 'alert_failed', 'alias_sync_failed'].includes(props.row.kind) ? 'negative'
  : props.row.kind === 'rollback' ? 'warning' : 'primary'" />
"""
_KIND_SLOT = f'<q-td :props="props">{_BADGE}</q-td>'
# phones get one compact card per event instead of a four-column table
_ITEM_SLOT = f"""
<div class="q-pa-xs col-12">
  <q-card flat bordered class="q-pa-sm">
    <div class="row items-center justify-between no-wrap">{_BADGE}
      <span class="text-xs text-grey-7">{{{{ props.row.at }}}}</span></div>
    <div class="text-sm q-mt-xs">{{{{ props.row.message }}}}</div>
    <div class="text-xs text-grey-7 q-mt-xs">{{{{ props.row.numbers }}}}</div>
  </q-card>
</div>
"""


class EventsPanel:
    """The filter, the table and paging backwards."""

    def __init__(self, ctx: DashboardContext, kind: str) -> None:
        self.ctx = ctx
        self.kind = kind if kind in _FILTERS else ALL
        self.paged = False
        with ui.card().props("flat bordered").classes("w-full gap-2"):
            with ui.row().classes("w-full items-start justify-between gap-2"):
                with ui.column().classes("gap-1"):
                    card_title("Decision log", "What the loop decided and why, newest first.")
                self.filter = (
                    ui.select(_FILTERS, value=self.kind, label="Kind", on_change=self._on_filter)
                    .props("outlined dense options-dense data-testid=kind-filter")
                    .classes("w-56")
                )
            self.table = (
                ui.table(columns=_COLUMNS, rows=[], row_key="id", pagination=0)
                .props(
                    'flat dense wrap-cells hide-bottom :grid="window.innerWidth < 600" '
                    "data-testid=events-table"
                )
                .classes("w-full")
            )
            self.table.add_slot("body-cell-kind", _KIND_SLOT)
            self.table.add_slot("item", _ITEM_SLOT)
            self.empty = ui.label("Nothing recorded yet.").classes("text-sm text-slate-500")
            self.older = ui.button("Load older", on_click=self.load_older).props(
                "flat no-caps data-testid=load-older"
            )

    async def _on_filter(self) -> None:
        self.kind = str(self.filter.value)
        self.paged = False
        await self.reload()

    async def _read(self, before: int | None) -> list[dict[str, Any]]:
        reads = self.ctx.services.reads
        if self.kind == CHECKS_FILTER:
            return check_rows(await asyncio.to_thread(reads.checks, PAGE * 4))
        kind = None if self.kind == ALL else self.kind
        return event_rows(await asyncio.to_thread(reads.events, PAGE, kind, before))

    async def reload(self) -> None:
        """Show the newest page for the current filter."""
        if not signed_in(self.ctx):
            return
        rows = await self._read(None)
        if rows != self.table.rows:
            self.table.rows = rows
        self._after(rows)

    async def load_older(self) -> None:
        """Append the page before the oldest event shown."""
        if not signed_in(self.ctx) or not self.table.rows:
            return
        oldest = self.table.rows[-1]["id"]
        rows = await self._read(int(oldest))
        self.paged = True
        self.table.rows = [*self.table.rows, *rows]
        self._after(rows)

    def _after(self, page: list[dict[str, Any]]) -> None:
        self.empty.set_visibility(not self.table.rows)
        # checks are not paged (the newest few hundred are kept in view)
        self.older.set_visibility(self.kind != CHECKS_FILTER and len(page) == PAGE)

    async def tick(self) -> None:
        """Timer: follow new events unless the reader has paged back."""
        if not self.paged:
            await self.reload()


def register() -> None:
    """Add the events page to NiceGUI (once per process)."""

    @ui.page("/events", title="continual · events")
    async def events_page(request: Request, kind: str = ALL) -> None:
        ctx = context_of(request.scope)
        with frame("/events"):
            panel = EventsPanel(ctx, kind)
        await panel.reload()
        ui.timer(REFRESH, panel.tick)
