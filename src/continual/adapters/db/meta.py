"""Small facts (``meta``), the feature schema, and the codes of categorical values."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import msgspec
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from continual.adapters.db import tables as _tables  # noqa: F401 - registers the tables
from continual.adapters.db.base import Db
from continual.core.frame import Levels, levels_of
from continual.core.types import FeatureSchema, FeatureValue

_META = SQLModel.metadata.tables["meta"]
_CATEGORIES = SQLModel.metadata.tables["categories"]
_decode_schema = msgspec.json.Decoder(FeatureSchema).decode


class MetaRepository:
    """Key/value facts and the fixed feature schema."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def get_meta(self, key: str) -> str | None:
        """Return a stored fact, or ``None``."""
        with self.db.connect() as conn:
            return conn.execute(select(_META.c.value).where(_META.c.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        """Store a fact, replacing any earlier value."""
        with self.db.begin() as conn:
            done = conn.execute(update(_META).where(_META.c.key == key).values(value=value))
            if done.rowcount == 0:
                conn.execute(_META.insert().values(key=key, value=value))

    def get_schema(self) -> FeatureSchema | None:
        """The stored feature schema, if the first data or the config fixed one."""
        raw = self.get_meta("feature_schema")
        return None if raw is None else _decode_schema(raw)

    def fix_schema(self, schema: FeatureSchema) -> FeatureSchema:
        """Store ``schema`` unless one exists; return the one that holds (first writer wins)."""
        try:
            with self.db.begin() as conn:
                value = msgspec.json.encode(schema).decode()
                conn.execute(_META.insert().values(key="feature_schema", value=value))
        except IntegrityError:
            pass
        stored = self.get_schema()
        assert stored is not None
        return stored


class CategoryRepository:
    """The code of each categorical value: given once, never changed, shared by replicas.

    Codes are cached in memory; a value not seen before gets the next free code in its
    own short transaction (a code without rows is harmless), and a clash with another
    replica's new code is settled by reading the table again."""

    def __init__(self, db: Db) -> None:
        self.db = db
        self._codes: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    def _load(self) -> None:
        codes: dict[str, dict[str, int]] = {}
        with self.db.connect() as conn:
            for name, code, value in conn.execute(
                select(_CATEGORIES.c.feature, _CATEGORIES.c.code, _CATEGORIES.c.value)
            ).all():
                codes.setdefault(name, {})[value] = int(code)
        self._codes = codes

    def codes(
        self, schema: FeatureSchema, values: Sequence[Sequence[FeatureValue]]
    ) -> list[dict[str, int]]:
        """Per feature, value -> code for every value of ``values`` (rows in schema order;
        new values are added)."""
        out: list[dict[str, int]] = []
        for j, f in enumerate(schema.features):
            if f.kind == "numeric":
                out.append({})
                continue
            seen = {str(v[j]) for v in values}
            known = self._codes.get(f.name, {})
            if not seen <= known.keys():
                self._add(f.name, seen)
                known = self._codes.get(f.name, {})
            out.append(known)
        return out

    def _add(self, feature: str, values: set[str]) -> None:
        with self._lock:
            for _attempt in range(20):
                self._load()
                known = self._codes.get(feature, {})
                new = sorted(values - known.keys())
                if not new:
                    return
                start = max(known.values(), default=-1) + 1
                try:
                    with self.db.begin() as conn:
                        conn.execute(
                            _CATEGORIES.insert(),
                            [
                                {"feature": feature, "code": start + i, "value": v}
                                for i, v in enumerate(new)
                            ],
                        )
                except IntegrityError:
                    continue  # another replica took these codes first: read them again
            self._load()

    def levels(self, schema: FeatureSchema) -> Levels:
        """Per feature, code -> value, as read now (a frame decodes its codes with it)."""
        self._load()
        return levels_of([self._codes.get(f.name, {}) for f in schema.features])
