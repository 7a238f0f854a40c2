"""The playground's predict form, built from the feature schema: one field per feature.

A categorical feature offers the categories the champion was trained on (most frequent
first, from ``Monitor.categories``) and takes any other text too: an unseen category is
valid input. Predicting calls ``PredictService.predict``, as ``POST /predict`` does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nicegui import ui

from continual.core.errors import ContinualError
from continual.core.types import FeatureSchema
from continual.ui.context import DashboardContext
from continual.ui.format import percent
from continual.ui.layout import card_title, signed_in


class PredictCard:
    """A form built from the feature schema; it appears once the first data fixed one."""

    def __init__(self, ctx: DashboardContext) -> None:
        self.ctx = ctx
        self.schema: FeatureSchema | None = ctx.services.ingest.schema()
        self.categories = ctx.services.monitor.categories()
        self.inputs: dict[str, Any] = {}
        with ui.card().props("flat bordered").classes("w-full gap-3"):
            card_title("Predict", "Score one row with the champion, as POST /predict does.")
            self.form = ui.column().classes("w-full gap-2")
        self._build()

    def _build(self) -> None:
        self.form.clear()
        self.inputs = {}
        with self.form:
            if self.schema is None:
                ui.label("No feature schema yet: generate or send data first.").classes(
                    "text-sm text-slate-500"
                )
                return
            with ui.element("div").classes("grid grid-cols-2 gap-2 w-full"):
                for feature in self.schema.features:
                    if feature.kind == "numeric":
                        field: Any = ui.number(feature.name, value=0.0, format="%.3f")
                    else:
                        # the champion's categories, most frequent first; typing another
                        # (then Enter) is allowed: an unseen category is valid input
                        options = list(self.categories.get(feature.name, []))
                        field = ui.select(
                            options,
                            label=feature.name,
                            value=options[0] if options else None,
                            new_value_mode="add-unique",
                        ).props('hint="pick one, or type another and press Enter"')
                    self.inputs[feature.name] = field.props(
                        f"outlined dense data-testid=feature-{feature.name}"
                    ).classes("min-w-0")
            ui.button("Predict", icon="bolt", on_click=self.predict).props(
                "unelevated no-caps data-testid=predict"
            )
            self.result = ui.label().classes("text-sm").props("data-testid=predict-result")

    async def tick(self) -> None:
        """Build the form when a schema appears; follow the champion's categories."""
        if self.schema is None:
            self.schema = await asyncio.to_thread(self.ctx.services.ingest.schema)
            if self.schema is not None:
                self.categories = await asyncio.to_thread(self.ctx.services.monitor.categories)
                self._build()
            return
        categories = await asyncio.to_thread(self.ctx.services.monitor.categories)
        if categories == self.categories:
            return
        self.categories = categories
        for name, options in categories.items():
            field = self.inputs.get(name)
            if field is not None:
                value = field.value
                merged = options + ([value] if value and value not in options else [])
                field.set_options(merged, value=value if value else (merged or [None])[0])

    def predict(self) -> None:
        """Predict the form's row with the champion."""
        if not signed_in(self.ctx) or self.schema is None:
            return
        row: dict[str, object] = {}
        for feature in self.schema.features:
            value = self.inputs[feature.name].value
            if feature.kind == "numeric":
                row[feature.name] = float(value) if value is not None else 0.0
            else:
                row[feature.name] = str(value or "")
        try:
            version, predictions = self.ctx.services.predictor.predict([row], name="features")
        except ContinualError as exc:
            ui.notify(exc.message, type="negative")
            return
        p = predictions[0]
        shares = ", ".join(f"{k}: {percent(v)}" for k, v in p.probabilities.items())
        self.result.text = (
            f"Prediction {p.prediction} with confidence {percent(p.confidence)} "
            f"({shares}) by v{version}. Prediction id {p.prediction_id}."
        )
