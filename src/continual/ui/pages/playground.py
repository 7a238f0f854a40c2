"""The playground: generate data (once or as a stream, with the concept switch), run a check or
a retrain now, and try a prediction from a form built from the feature schema.

Generating is offered only while the schema is the generator's (``feature1..N``); with
the user's own data the card says why it is not there. Categorical inputs offer the
categories the champion was trained on, and take any other text too.

Each action calls the same service function as its REST route (``IngestService.generate``,
``Monitor.check``, ``RetrainService.retrain``, ``PredictService.predict``); failures
are shown as notifications, never as a broken page.
"""

from __future__ import annotations

import asyncio
import secrets

from nicegui import ui
from starlette.requests import Request

from continual.core.errors import Conflict, ContinualError
from continual.core.types import FeatureSchema
from continual.ui.context import DashboardContext, context_of
from continual.ui.layout import card_title, frame, signed_in
from continual.ui.playground_text import (
    check_text,
    generate_note,
    ingest_text,
    retrain_pending_text,
    retrain_text,
    synthetic_width,
)
from continual.ui.predict_form import PredictCard

REFRESH = 1.0
CONCEPTS = {0: "0", 1: "1", 2: "2", 3: "3"}
RATES = {10: "10 rows/s", 50: "50 rows/s", 200: "200 rows/s"}


class GenerateCard:
    """Synthetic rows: one batch, or a stream that follows the concept switch."""

    def __init__(self, ctx: DashboardContext) -> None:
        self.ctx = ctx
        self._syncing = False
        stream = ctx.stream
        with ui.card().props("flat bordered").classes("w-full gap-3"):
            label = ctx.services.settings.label_column
            card_title("Generate data")
            self.caption = ui.label(
                f"Labelled rows feature1..N with label {label}. Another concept is another "
                "decision boundary: switch it to make the champion wrong, and watch the loop "
                "recover."
            ).classes("text-xs text-slate-500 -mt-1")  # as card_title's caption
            self.note = (
                ui.label().classes("text-sm text-slate-600").props("data-testid=generate-note")
            )
            self.controls = ui.column().classes("w-full gap-3")
        with self.controls:
            with ui.row().classes("items-center gap-3"):
                ui.label("Concept").classes("text-sm text-slate-600")
                self.concept = ui.toggle(
                    CONCEPTS, value=stream.concept, on_change=self._steer
                ).props("no-caps unelevated toggle-color=primary data-testid=concept")
            with ui.row().classes("items-center gap-2 w-full no-wrap"):
                self.rows = (
                    ui.number("Rows", value=1000, min=1, max=100_000, precision=0, format="%d")
                    .props("outlined dense data-testid=rows")
                    .classes("w-32")
                )
                self.button = ui.button("Generate", icon="add", on_click=self.generate).props(
                    "unelevated no-caps data-testid=generate"
                )
            ui.separator()
            with ui.row().classes("items-center gap-2 w-full"):
                self.streaming = ui.switch(
                    "Stream rows continuously", value=stream.running, on_change=self._toggle
                ).props("data-testid=stream")
                self.rate = (
                    ui.select(
                        RATES,
                        value=stream.rate if stream.rate in RATES else 50,
                        on_change=self._steer,
                    )
                    .props("outlined dense options-dense data-testid=rate")
                    .classes("w-36")
                )
            self.status = (
                ui.label().classes("text-sm text-slate-600").props("data-testid=stream-status")
            )
            self.result = ui.label().classes("text-sm").props("data-testid=generate-result")
        self.follow_schema(ctx.services.ingest.schema())
        self.tick()

    def follow_schema(self, schema: FeatureSchema | None) -> None:
        """Offer generating only while the schema is the generator's; else say why not."""
        note = generate_note(schema)
        self.note.text = note
        self.note.set_visibility(bool(note))
        self.caption.set_visibility(not note)
        self.controls.set_visibility(not note)

    def width(self) -> int | None:
        """How many features generated rows need (``None``: the data is not synthetic)."""
        return synthetic_width(self.ctx.services.ingest.schema())

    async def generate(self) -> None:
        """Store one batch of the chosen concept."""
        if not signed_in(self.ctx):
            return
        width = await asyncio.to_thread(self.width)
        if width is None:
            ui.notify(
                "The stored data is not synthetic: generating would not fit its schema.",
                type="warning",
            )
            return
        n = int(self.rows.value or 0)
        concept = int(self.concept.value)
        self.button.disable()
        try:
            result = await asyncio.to_thread(
                self.ctx.services.ingest.generate, n, width, concept, secrets.randbelow(2**31)
            )
        except ContinualError as exc:
            ui.notify(exc.message, type="negative")
            return
        finally:
            self.button.enable()
        self.ctx.forget_overview()
        self.result.text = ingest_text(result.accepted, concept, result.scored_by, result.correct)

    async def _toggle(self) -> None:
        if self._syncing or not signed_in(self.ctx):
            return
        stream = self.ctx.stream
        if not self.streaming.value:
            await stream.stop()
            return
        width = await asyncio.to_thread(self.width)
        if width is None:
            self.streaming.value = False
            ui.notify(
                "The stored data is not synthetic: streaming would not fit its schema.",
                type="warning",
            )
            return
        stream.start(int(self.concept.value), int(self.rate.value), width)

    def _steer(self) -> None:
        if not self._syncing and signed_in(self.ctx):
            self.ctx.stream.steer(int(self.concept.value), int(self.rate.value))

    def tick(self) -> None:
        """Follow the shared stream: another tab may have started, steered or stopped it."""
        stream = self.ctx.stream
        self._syncing = True  # these changes come from the stream; do not steer it back
        try:
            if self.streaming.value != stream.running:
                self.streaming.value = stream.running
            if stream.running and self.concept.value != stream.concept:
                self.concept.value = stream.concept
            if stream.running and stream.rate in RATES and self.rate.value != stream.rate:
                self.rate.value = stream.rate
        finally:
            self._syncing = False
        if stream.running:
            self.status.text = (
                f"Streaming {stream.rate} rows/s of concept {stream.concept}: "
                f"{stream.generated} rows so far."
            )
        elif stream.error:
            self.status.text = f"The stream stopped: {stream.error}"
        elif stream.generated:
            self.status.text = f"Not streaming ({stream.generated} rows streamed so far)."
        else:
            self.status.text = "Not streaming."


class LoopCard:
    """Run a check or a retrain now and show the verdict."""

    def __init__(self, ctx: DashboardContext) -> None:
        self.ctx = ctx
        with ui.card().props("flat bordered").classes("w-full gap-3"):
            card_title(
                "Run the loop now",
                "The same check the scheduler runs (it retrains when due), or a retrain on demand.",
            )
            with ui.row().classes("gap-2"):
                self.check_button = ui.button(
                    "Run a check", icon="fact_check", on_click=self.check
                ).props("unelevated no-caps data-testid=run-check")
                self.retrain_button = ui.button(
                    "Retrain now", icon="model_training", on_click=self.retrain
                ).props("outline no-caps data-testid=retrain")
                self.spinner = ui.spinner(size="md")
                self.spinner.set_visibility(False)
            self.result = (
                ui.label().classes("text-sm whitespace-pre-line").props("data-testid=loop-result")
            )

    def _busy(self, busy: bool) -> None:
        for button in (self.check_button, self.retrain_button):
            button.set_enabled(not busy)
        self.spinner.set_visibility(busy)

    async def check(self) -> None:
        """Run one check and show its decision."""
        if not signed_in(self.ctx):
            return
        self._busy(True)
        try:
            result = await self.ctx.services.monitor.check("dashboard")
        except ContinualError as exc:
            ui.notify(exc.message, type="negative")
            return
        finally:
            self._busy(False)
        self.ctx.forget_overview()
        self.result.text = check_text(result)

    async def retrain(self) -> None:
        """Train a challenger now and show the gate's verdict."""
        if not signed_in(self.ctx):
            return
        self._busy(True)
        self.result.text = retrain_pending_text(self.ctx.services.retrainer.tracking_ready)
        try:
            result = await self.ctx.services.retrainer.retrain("dashboard: retrain requested")
        except Conflict as exc:
            self.result.text = ""
            ui.notify(exc.message, type="warning")
            return
        except ContinualError as exc:
            self.result.text = f"The retrain failed: {exc.message}"
            ui.notify(exc.message, type="negative")
            return
        finally:
            self._busy(False)
        self.ctx.forget_overview()
        self.result.text = retrain_text(result)


def register() -> None:
    """Add the playground page to NiceGUI (once per process)."""

    @ui.page("/playground", title="continual · playground")
    def playground_page(request: Request) -> None:
        ctx = context_of(request.scope)
        with (
            frame("/playground"),
            ui.element("div").classes("grid grid-cols-1 md:grid-cols-2 gap-4 w-full items-start"),
        ):
            with ui.column().classes("gap-4 min-w-0"):
                generate = GenerateCard(ctx)
            with ui.column().classes("gap-4 min-w-0"):
                LoopCard(ctx)
                predict = PredictCard(ctx)

        async def tick() -> None:
            await predict.tick()  # it reads (and so caches) the schema once there is one
            generate.follow_schema(predict.schema)
            generate.tick()

        ui.timer(REFRESH, tick)
