"""The overview: status, champion, live accuracy, the accuracy chart and per-feature drift.

The first render already holds the live numbers (the page awaits one read before it
answers); a timer then pushes changes over the websocket every ``REFRESH`` seconds, so
the page follows the loop without a reload. Every open tab shares one read per second
(``DashboardContext.overview``).
"""

from __future__ import annotations

import time
from typing import Any

from nicegui import ui
from starlette.requests import Request

from continual.ui.chart import chart_options
from continual.ui.context import DashboardContext, context_of
from continual.ui.layout import card_title, frame, signed_in
from continual.ui.view import Overview, drift_rows, drift_summary, status_cards

REFRESH = 2.0
_DRIFT_COLUMNS: list[dict[str, Any]] = [
    {"name": "feature", "label": "Feature", "field": "feature", "align": "left"},
    {"name": "kind", "label": "Kind", "field": "kind", "align": "left"},
    {"name": "test", "label": "Test", "field": "test", "align": "left"},
    {"name": "statistic", "label": "Statistic", "field": "statistic"},
    {"name": "p_value", "label": "p-value", "field": "p_value"},
    {"name": "psi", "label": "PSI", "field": "psi"},
    {"name": "verdict", "label": "Verdict", "field": "verdict", "align": "left"},
    {"name": "out_of_range", "label": "Out of range", "field": "out_of_range"},
    {"name": "unseen", "label": "Unseen", "field": "unseen"},
]
_VERDICT = """
<q-badge :color="props.row.verdict === 'drifted' ? 'negative' : 'positive'"
  :label="props.row.verdict" />
"""
_VERDICT_SLOT = f'<q-td :props="props">{_VERDICT}</q-td>'
# phones get one line per feature instead of a seven-column table
_DRIFT_ITEM_SLOT = f"""
<div class="q-pa-xs col-12">
  <div class="row items-center justify-between no-wrap q-py-xs">
    <span class="text-weight-medium">{{{{ props.row.feature }}}}</span>
    <span class="text-xs text-grey-8">{{{{ props.row.test }}}} {{{{ props.row.statistic }}}}
      (p {{{{ props.row.p_value }}}}) · PSI {{{{ props.row.psi }}}}
      · out of range {{{{ props.row.out_of_range }}}} · unseen {{{{ props.row.unseen }}}}</span>
    {_VERDICT}
  </div>
</div>
"""


class _Stat:
    """One headline card: caption, big value, small line under it."""

    def __init__(self, caption: str, testid: str) -> None:
        with ui.card().props("flat bordered").classes("p-3 gap-0 min-w-0 no-shadow"):
            ui.label(caption).classes("text-xs uppercase tracking-wide text-slate-500")
            self.value = (
                ui.label().classes("text-xl font-semibold truncate").props(f"data-testid={testid}")
            )
            self.sub = ui.label().classes("text-xs text-slate-500 truncate")
            self.tip = ui.tooltip("")

    def show(self, value: str, sub: str, tip: str = "") -> None:
        """Set the value, the line under it and the tooltip (hidden when empty)."""
        self.value.text = value
        self.sub.text = sub
        self.tip.text = tip
        self.tip.set_visibility(bool(tip))


class OverviewPanel:
    """The overview's elements and how each follows a fresh ``Overview``."""

    def __init__(self, ctx: DashboardContext, data: Overview) -> None:
        self.ctx = ctx
        self.scheduler = ctx.services.settings.scheduler_enabled
        with (
            ui.card()
            .props("flat bordered")
            .classes("w-full bg-blue-50 border-blue-200") as self.empty
        ):
            ui.label("No champion yet").classes("font-semibold")
            with ui.row().classes("items-center gap-1 text-sm"):
                ui.label("Send labelled rows (POST /data, continual ingest) or open the")
                ui.link("Playground", "/playground").classes("text-primary")
                ui.label(
                    "to generate data: the next check trains a first model, or press Retrain now."
                )
        with ui.element("div").classes(
            "grid grid-cols-2 md:grid-cols-3 lg:grid-cols-6 gap-3 w-full"
        ):
            with ui.card().props("flat bordered").classes("p-3 gap-1 min-w-0"):
                ui.label("Status").classes("text-xs uppercase tracking-wide text-slate-500")
                self.status = (
                    ui.badge("")
                    .classes("text-base px-2 py-1 self-start")
                    .props("data-testid=status")
                )
                self.status_sub = (
                    ui.label()
                    .classes("text-xs text-slate-500 break-words")
                    .props("data-testid=status-note")
                )
            self.champion = _Stat("Champion", "champion-version")
            self.accuracy = _Stat("Live accuracy", "live-accuracy")
            self.samples = _Stat("Samples in window", "samples")
            self.checks = _Stat("Last check", "last-check")
            self.retrain = _Stat("Last retrain", "last-retrain")
        with ui.card().props("flat bordered").classes("w-full gap-2"):
            card_title(
                "Live accuracy over time",
                "One point per check. Dashed: the threshold. Markers: retrains, promotions, rollbacks.",
            )
            self.chart = (
                ui.echart(chart_options(data))
                .classes("w-full h-72")
                .props("data-testid=accuracy-chart")
            )
            self._chart_key = self._key(data)
        with ui.card().props("flat bordered").classes("w-full gap-2"):
            card_title(
                "Data drift", "Recent inputs against the champion's training data, per feature."
            )
            self.drift_text = ui.label().classes("text-sm text-slate-600")
            self.drift = (
                ui.table(
                    columns=_DRIFT_COLUMNS,
                    rows=drift_rows(data.status.drift, data.status.quality),
                    row_key="feature",
                )
                .props(
                    'flat dense wrap-cells :grid="window.innerWidth < 600" data-testid=drift-table'
                )
                .classes("w-full")
            )
            self.drift.add_slot("body-cell-verdict", _VERDICT_SLOT)
            self.drift.add_slot("item", _DRIFT_ITEM_SLOT)
        self.show(data)

    @staticmethod
    def _key(data: Overview) -> tuple[Any, ...]:
        last = data.checks[-1].at if data.checks else None
        return (len(data.checks), last, tuple(e.id for e in data.markers), data.status.threshold)

    def show(self, data: Overview) -> None:
        """Bring every element up to date with ``data``."""
        cards = status_cards(data.status, time.time(), self.scheduler)
        self.empty.set_visibility(data.status.model_version is None)
        self.status.text = cards.status_text
        self.status.props(f"color={cards.status_color}")
        self.status_sub.text = cards.status_note
        has_champion = data.status.model_version is not None
        champion_tip = f"{cards.model_type}, champion since {cards.since_title}"
        self.champion.show(cards.version, cards.since, champion_tip if has_champion else "")
        self.accuracy.show(cards.accuracy, cards.threshold)
        if cards.below_threshold:
            self.accuracy.value.classes(add="text-negative")
        else:
            self.accuracy.value.classes(remove="text-negative")
        self.samples.show(cards.samples, cards.samples_hint)
        decision = f"{cards.last_decision} · " if cards.last_decision else ""
        self.checks.show(
            cards.last_check, f"{decision}next {cards.next_check}", cards.last_check_title
        )
        self.retrain.show(
            cards.last_retrain,
            "running now" if cards.retraining else "",
            cards.last_retrain_title,
        )
        key = self._key(data)
        if key != self._chart_key:  # redraw only when there is something new to draw
            self.chart.options.clear()
            self.chart.options.update(chart_options(data))
            self.chart.update()
            self._chart_key = key
        self.drift_text.text = drift_summary(data.status.drift)
        rows = drift_rows(data.status.drift, data.status.quality)
        if rows != self.drift.rows:
            self.drift.rows = rows
        self.drift.set_visibility(bool(rows))

    async def refresh(self) -> None:
        """One timer tick: stop if the session ended, else show the latest read."""
        if not signed_in(self.ctx):
            return
        self.show(await self.ctx.overview())


def register() -> None:
    """Add the overview page to NiceGUI (once per process)."""

    @ui.page("/", title="continual · overview")
    async def overview_page(request: Request) -> None:
        ctx = context_of(request.scope)
        data = await ctx.overview()
        with frame("/"):
            panel = OverviewPanel(ctx, data)
        ui.timer(REFRESH, panel.refresh)
