"""How the command line reaches a running service: where (``--url``), with which key
(``--key``), how long it waits (``--timeout``), how it prints an answer (text, or the raw
JSON with ``--json``), and the one line it prints when a request fails.

Exit codes: 1 when the service answered with an error, 3 when it gave no answer at all
(unreachable, timed out, connection dropped); click uses 2 for bad usage and settings.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import click

from continual.settings import Settings

if TYPE_CHECKING:
    from continual.client import ApiError, Client, NoAnswer

T = TypeVar("T")

ANSWERED_ERROR = 1
NO_ANSWER = 3
# a bind-all address is not one to connect to: the service is on this machine
_ANY_ADDRESS = ("0.0.0.0", "::", "")  # noqa: S104


class Target(NamedTuple):
    """The service a command talks to; ``key_source`` names where the key came from
    (the key itself is never printed)."""

    url: str
    key: str | None
    key_source: str


def find_target(settings: Settings, url: str | None, key: str | None) -> Target:
    """``--url``/``CONTINUAL_URL``, else the address ``continual serve`` would listen on
    here; ``--key``, else ``API_KEY``, else the key the server generated in its data
    directory, when that is readable from here."""
    if url is None:
        host = "127.0.0.1" if settings.host in _ANY_ADDRESS else settings.host
        url = (
            f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"
        )
    if key:
        return Target(url, key, "--key")
    if settings.api_key is not None:
        return Target(url, settings.api_key.value, "API_KEY")
    try:
        return Target(url, settings.api_key_file.read_text().strip(), str(settings.api_key_file))
    except OSError:
        return Target(url, None, "")


def failure(exc: ApiError | NoAnswer, target: Target, url: str) -> str:
    """One line: what was tried, what happened, what to do."""
    from continual.client import NoAnswer

    if isinstance(exc, NoAnswer):
        return _no_answer(exc, url)
    if exc.status == 401 and target.key is None:
        return (
            f"continual at {url} wants an API key and none was found: pass --key or set "
            "API_KEY (a generated key is in the server's DATA_DIR/api_key)"
        )
    if exc.status == 401:
        return (
            f"continual at {url} refused the API key from {target.key_source}: pass the "
            "right one with --key or API_KEY"
        )
    if exc.status >= 500 and exc.status != 503:  # 503 is a state the service explains
        return f"continual at {url} failed with a server error ({exc.status}: {exc.message}); its log says why"
    return f"continual at {url} answered {exc.status}: {exc.message}"


def _no_answer(exc: NoAnswer, url: str) -> str:
    if exc.kind == "unreachable":
        return (
            f'cannot reach continual at {url}: start it with "continual serve", '
            "or set CONTINUAL_URL (or --url)"
        )
    if exc.kind == "timeout":
        waited = f"within {exc.timeout:g} s" if exc.timeout else "in time"
        return (
            f"continual at {url} did not answer {waited}: it may be busy "
            "(a retrain?); see its log, or wait longer with --timeout"
        )
    return (
        f"continual at {url} closed the connection before answering: it may have "
        "stopped; see its log"
    )


class Remote:
    """One command's connection settings, from its ``--url``, ``--key``, ``--timeout``
    and ``--json`` options."""

    def __init__(
        self, settings: Settings, url: str | None, key: str | None, timeout: float, as_json: bool
    ) -> None:
        self.target = find_target(settings, url, key)
        self.timeout = timeout
        self.as_json = as_json

    def run(self, call: Callable[[Client], T]) -> T:
        """``call`` with a client; a failure is printed as one line and ends the command."""
        from continual.client import ApiError, Client, NoAnswer

        with Client(self.target.url, self.target.key, timeout=self.timeout) as client:
            try:
                return call(client)
            except (ApiError, NoAnswer) as exc:
                click.echo(failure(exc, self.target, client.url), err=True)
                sys.exit(ANSWERED_ERROR if isinstance(exc, ApiError) else NO_ANSWER)

    def show(self, call: Callable[[Client], Any]) -> None:
        """``run`` and print the answer."""
        click.echo(render(self.run(call), self.as_json))


def render(answer: Any, as_json: bool) -> str:
    """The answer as it came (``--json``, one line, for scripts), or as indented text."""
    if as_json:
        return json.dumps(answer, default=str)
    return "\n".join(_lines(answer, 0))


def _lines(value: Any, depth: int) -> Iterator[str]:
    pad = "  " * depth
    if isinstance(value, dict):
        for name, item in value.items():
            if isinstance(item, dict | list) and item and not _flat(item):
                yield f"{pad}{name}:"
                yield from _lines(item, depth + 1)
            else:
                yield f"{pad}{name}: {_word(item)}"
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield f"{pad}- " + ", ".join(f"{k} {_word(v)}" for k, v in item.items())
            else:
                yield f"{pad}- {_word(item)}"
    else:
        yield f"{pad}{_word(value)}"


def _flat(items: dict[str, Any] | list[Any]) -> bool:
    """A list of plain values, which fits on its key's line."""
    return isinstance(items, list) and not any(isinstance(i, dict | list) for i in items)


def _word(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    if isinstance(value, list):
        return ", ".join(_word(v) for v in value) or "-"
    if isinstance(value, dict):
        return "-"
    return str(value)
