"""How the champion relates to the last located change: was it fitted on the rows since
it, and how many have arrived since (what a *refresh* is judged on, ``core.policy``)."""

from __future__ import annotations

import msgspec

from continual.core.ports import MetaPort, VersionsPort


class Young(msgspec.Struct, frozen=True):
    """The champion's fit, if it was fitted on the rows since a located change."""

    change_row: int | None = None
    fit_rows: int | None = None
    rows_since_change: int = 0
    last_refresh_rows: int = 0


class RefreshState:
    """Reads the champion's fit from its params (cached per version) and the last refresh
    asked for from ``meta``."""

    def __init__(self, versions: VersionsPort, meta: MetaPort) -> None:
        self.versions = versions
        self.meta = meta
        self._fits: dict[str, tuple[int, int] | None] = {}

    def young(self, version: str | None, last_row_id: int) -> Young:
        """How the champion relates to the last located change (blocking; cached per
        version, plus one meta read)."""
        if version is None:
            return Young()
        if version not in self._fits:
            record = self.versions.version(version)
            params = {} if record is None else record.params
            raw_change, raw_rows = params.get("change_row", ""), params.get("n_samples", "")
            ok = raw_change.isdigit() and raw_rows.isdigit()
            self._fits[version] = (int(raw_change), int(raw_rows)) if ok else None
        fit = self._fits[version]
        if fit is None or self.meta.get_meta("refresh_saturated") == version:
            return Young()
        change, rows = fit
        since = last_row_id - change + 1
        last = 0
        raw = self.meta.get_meta("refresh") or ""
        asked_change, _, asked_rows = raw.partition(":")
        if asked_change == str(change) and asked_rows.isdigit():
            last = int(asked_rows)
        return Young(change, rows, since, last)
