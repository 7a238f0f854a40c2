"""Serves the OpenAPI document for the feature schema in force, as JSON and as Swagger UI.

The document changes once, when the feature schema is fixed (by configuration or by the
first data, on any replica): before, rows are any names with number or string values;
after, exactly the schema's features and label. Both renderings (``/schema/openapi.json``
and ``/schema/swagger``) ask ``LiveDocument`` for it, so the page and a client generated
from the JSON follow the same contract.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin

from continual.core.types import FeatureSchema
from continual.settings import Settings
from continual.web.openapi import JSON, corrected


class LiveDocument:
    """The corrected document, made once per feature schema (there are at most two)."""

    def __init__(self, settings: Settings, schema_of: Callable[[], FeatureSchema | None]) -> None:
        self.settings = settings
        self.schema_of = schema_of  # cached once fixed; until then one small read per request
        self._docs: dict[FeatureSchema | None, JSON] = {}

    def get(self, generated: JSON) -> JSON:
        """The document for the schema in force now."""
        features = self.schema_of()
        doc = self._docs.get(features)
        if doc is None:
            doc = self._docs[features] = corrected(generated, self.settings, features)
        return doc


class LiveJson(JsonRenderPlugin):
    """``/schema/openapi.json``: the live document."""

    def __init__(self, live: LiveDocument) -> None:
        super().__init__()
        self.live = live

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The live document as JSON."""
        return self.render_json(request, self.live.get(openapi_schema))


class LiveSwagger(SwaggerRenderPlugin):
    """``/schema/swagger`` (and ``/schema``): Swagger UI over the live document."""

    def __init__(self, live: LiveDocument) -> None:
        super().__init__()
        self.live = live

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The Swagger page with the live document embedded."""
        return super().render(request, self.live.get(openapi_schema))
