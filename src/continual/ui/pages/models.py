"""The models page: every version with its metrics, training window, status and MLflow run.

Promoting or rolling back asks for confirmation, then calls the same
``Registry.promote`` as ``POST /models/{version}/promote``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nicegui import ui
from nicegui.events import GenericEventArguments
from starlette.requests import Request

from continual.core.errors import ContinualError
from continual.ui.context import DashboardContext, context_of
from continual.ui.layout import card_title, frame, signed_in
from continual.ui.view import version_rows

REFRESH = 5.0
_COLUMNS: list[dict[str, Any]] = [
    {"name": "version", "label": "Version", "field": "version", "align": "left"},
    {"name": "status", "label": "Status", "field": "status_text", "align": "left"},
    {"name": "accuracy", "label": "Holdout accuracy", "field": "accuracy"},
    {"name": "champion_accuracy", "label": "Champion on holdout", "field": "champion_accuracy"},
    {"name": "train_rows", "label": "Training rows", "field": "train_rows"},
    {"name": "window", "label": "Training window", "field": "window", "align": "left"},
    {"name": "created", "label": "Trained (UTC)", "field": "created", "align": "left"},
    {"name": "model_type", "label": "Model", "field": "model_type", "align": "left"},
    {"name": "candidates", "label": "Pool on holdout", "field": "candidates", "align": "left"},
    {"name": "run_id", "label": "MLflow run", "field": "run_id", "align": "left"},
    {"name": "action", "label": "", "field": "action", "align": "right"},
]
_STATUS_SLOT = """
<q-td :props="props">
  <q-badge outline
    :color="{champion: 'positive', retired: 'primary', rejected: 'negative'}[props.row.status] || 'grey-7'"
    :label="props.value" />
  <q-tooltip v-if="props.row.reason" max-width="320px">{{ props.row.reason }}</q-tooltip>
</q-td>
"""
_RUN_SLOT = """
<q-td :props="props">
  <span class="font-mono text-xs">{{ props.value.slice(0, 8) }}</span>
  <q-tooltip>MLflow run {{ props.value }}</q-tooltip>
</q-td>
"""
_ACTION_SLOT = """
<q-td :props="props">
  <q-btn v-if="props.row.action" dense flat no-caps color="primary" :label="props.row.action"
    :data-testid="'promote-' + props.row.version"
    @click="() => $parent.$emit('promote', props.row)" />
</q-td>
"""


# phones get one compact card per version, with its action in view
_ITEM_SLOT = """
<div class="q-pa-xs col-12">
  <q-card flat bordered class="q-pa-sm">
    <div class="row items-center justify-between no-wrap">
      <div class="row items-center q-gutter-sm">
        <span class="text-base text-weight-medium">v{{ props.row.version }}</span>
        <q-badge outline :label="props.row.status_text"
          :color="{champion: 'positive', retired: 'primary', rejected: 'negative'}[props.row.status] || 'grey-7'" />
      </div>
      <q-btn v-if="props.row.action" dense flat no-caps color="primary" :label="props.row.action"
        :data-testid="'promote-' + props.row.version"
        @click="() => $parent.$emit('promote', props.row)" />
    </div>
    <div class="text-xs text-grey-8 q-mt-xs">holdout {{ props.row.accuracy }}
      (champion then {{ props.row.champion_accuracy }}) · {{ props.row.train_rows }} rows,
      {{ props.row.window }}</div>
    <div class="text-xs text-grey-8">pool: {{ props.row.candidates }}</div>
    <div class="text-xs text-grey-7">{{ props.row.created }} · {{ props.row.model_type }} ·
      run <span class="font-mono">{{ props.row.run_id.slice(0, 8) }}</span></div>
  </q-card>
</div>
"""


class _ConfirmDialog:
    """Asks before a version becomes the champion; answers the reason, or ``None``."""

    def __init__(self) -> None:
        with ui.dialog() as self.dialog, ui.card().classes("w-full max-w-md gap-3"):
            self.title = ui.label().classes("text-lg font-semibold")
            self.text = ui.label().classes("text-sm text-slate-600")
            self.reason = (
                ui.input("Reason (kept in the event log)")
                .classes("w-full")
                .props("outlined dense maxlength=200")
            )
            with ui.row().classes("w-full justify-end gap-2"):
                ui.button("Cancel", on_click=lambda: self.dialog.submit(None)).props(
                    "flat no-caps data-testid=cancel"
                )
                self.ok = ui.button(on_click=lambda: self.dialog.submit(self.reason.value)).props(
                    "unelevated no-caps data-testid=confirm"
                )

    async def ask(self, row: dict[str, Any], champion: str | None) -> str | None:
        """Open the dialog for ``row``; the reason typed, or ``None`` if cancelled."""
        version = row["version"]
        rollback = row["status"] == "retired"
        self.title.text = f"Make version {version} the champion?"
        replaces = f"It replaces version {champion}" if champion else "It starts serving"
        self.text.text = (
            f"{replaces} at once; its live accuracy is measured afresh from the next rows."
        )
        self.reason.value = (
            "rolled back from the dashboard" if rollback else "promoted from the dashboard"
        )
        self.ok.text = row["action"]
        answer = await self.dialog
        return answer if isinstance(answer, str) else None


class ModelsPanel:
    """The versions table and its promote / roll back action."""

    def __init__(self, ctx: DashboardContext, rows: list[dict[str, Any]]) -> None:
        self.ctx = ctx
        self.confirm = _ConfirmDialog()
        with ui.card().props("flat bordered").classes("w-full gap-2"):
            card_title(
                "Model versions",
                "Newest first. Holdout accuracy: the challenger and the champion of the day on the "
                "same newest rows, the gate's evidence.",
            )
            self.table = (
                ui.table(columns=_COLUMNS, rows=rows, row_key="version", pagination=20)
                .props('flat dense :grid="window.innerWidth < 600" data-testid=models-table')
                .classes("w-full")
            )
            self.table.add_slot("body-cell-status", _STATUS_SLOT)
            self.table.add_slot("body-cell-run_id", _RUN_SLOT)
            self.table.add_slot("body-cell-action", _ACTION_SLOT)
            self.table.add_slot("item", _ITEM_SLOT)
            self.table.on("promote", self.promote)
            self.empty = ui.label("No versions yet: a retrain registers the first one.").classes(
                "text-sm text-slate-500"
            )
            self.empty.set_visibility(not rows)

    async def promote(self, event: GenericEventArguments) -> None:
        """Confirm, then make the clicked version the champion."""
        if not signed_in(self.ctx):
            return
        row: dict[str, Any] = event.args
        champion = next((r["version"] for r in self.table.rows if r["status"] == "champion"), None)
        reason = await self.confirm.ask(row, champion)
        if reason is None or not signed_in(self.ctx):
            return
        version = str(row["version"])
        try:
            await self.ctx.services.registry.promote(
                version, reason.strip() or "changed from the dashboard", kind="rollback"
            )
        except ContinualError as exc:
            ui.notify(exc.message, type="negative")
            return
        self.ctx.forget_overview()
        ui.notify(f"Version {version} is the champion.", type="positive")
        await self.refresh()

    async def refresh(self) -> None:
        """Reload the versions; the table changes only when they did."""
        if not signed_in(self.ctx):
            return
        rows = await load_rows(self.ctx)
        if rows != self.table.rows:
            self.table.rows = rows
        self.empty.set_visibility(not rows)


async def load_rows(ctx: DashboardContext) -> list[dict[str, Any]]:
    """The models table's rows, read off the event loop."""
    return version_rows(await asyncio.to_thread(ctx.services.reads.versions))


def register() -> None:
    """Add the models page to NiceGUI (once per process)."""

    @ui.page("/models", title="continual · models")
    async def models_page(request: Request) -> None:
        ctx = context_of(request.scope)
        rows = await load_rows(ctx)
        with frame("/models"):
            panel = ModelsPanel(ctx, rows)
        ui.timer(REFRESH, panel.refresh)
