"""The README's five-minute walkthrough, run as written with bash and curl on a real server.

The blocks are read from README.md (not copied here) and run in one bash, in a directory
whose ``./data`` is the server's data directory, with ``URL`` set to the server (the block
keeps an ``URL`` already set). Each ``# ->`` line names (part of) what the command above it
answers; every other command must answer JSON that is not an error.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.server import Server

ROOT = Path(__file__).resolve().parent.parent
MARK = "@@walkthrough-step"
PAIR = re.compile(r'"([^"]+)": ("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null|\.\.\.)')


@dataclass
class Step:
    """One command of the walkthrough and what the README says it answers."""

    command: str
    expect: list[str] = field(default_factory=list)


def walkthrough() -> list[Step]:
    """The commands of the README's walkthrough section, in order, with their ``# ->``."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Five-minute walkthrough", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    steps: list[Step] = []
    pending = ""
    for line in "\n".join(blocks).splitlines():
        if line.startswith("# -> "):
            steps[-1].expect.append(line[len("# -> ") :])
        elif not line.strip() or line.startswith("#"):
            continue
        elif line.endswith("\\"):
            pending += line + "\n"
        else:
            steps.append(Step(pending + line))
            pending = ""
    return steps


def _objects(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value, *(o for v in value.values() for o in _objects(v))]
    if isinstance(value, list):
        return [o for v in value for o in _objects(v)]
    return []


def _wrong(step: Step, output: str) -> list[str]:
    """How the answer differs from what the README says (nothing when it agrees)."""
    if not output.strip():
        return [f"{step.command}: no answer"] if step.expect else []
    try:
        answer = json.loads(output)
    except ValueError:
        return [f"{step.command}: not JSON: {output[:300]}"]
    if isinstance(answer, dict) and "error" in answer:
        return [f"{step.command}: {output[:300]}"]
    objects = _objects(answer)
    wrong = []
    for expect in step.expect:
        pairs = PAIR.findall(expect)
        if not pairs:
            wrong.append(f"nothing to check in {expect!r}")
        for key, raw in pairs:
            wanted = object() if raw == "..." else json.loads(raw)
            if not any(key in o and (raw == "..." or o[key] == wanted) for o in objects):
                wrong.append(f"{step.command}: README says {key!r}: {raw}; answer {output[:300]}")
    return wrong


def test_the_readme_walkthrough_answers_what_it_says(tmp_path: Path, mlflow_template: Path) -> None:
    """Pasted into bash against a fresh default server, every step answers what the README shows."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (the walkthrough is curl commands)")
    steps = walkthrough()
    assert len(steps) >= 15
    assert any("/check" in s.command for s in steps)
    data = tmp_path / "server" / "data"
    data.mkdir(parents=True)
    shutil.copy(mlflow_template, data / "mlflow.db")  # an empty store, already migrated
    here = tmp_path / "user"
    here.mkdir()
    (here / "data").symlink_to(data)
    # the defaults a user gets (scheduler on, 30 s checks, 60 s cooldown), no API_KEY: a
    # generated key in ./data/api_key, as the walkthrough reads it
    server = Server(data, {"CONTINUAL_LOG_JSON": "false"}, first_run=True).start(timeout=90)
    try:
        script = "set -u\n" + "".join(
            f"{s.command}\nprintf '\\n{MARK} {i}\\n'\n" for i, s in enumerate(steps)
        )
        env = {**server.env, "URL": server.url}
        out = subprocess.run(
            ["bash", "-c", script],
            cwd=here,
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
            check=False,
        )
    finally:
        server.stop()
    assert out.returncode == 0, out.stderr
    parts = re.split(rf"\n?{MARK} (\d+)\n", out.stdout)
    outputs = dict(zip(map(int, parts[1::2]), parts[0:-1:2], strict=True))
    assert sorted(outputs) == list(range(len(steps))), out.stdout
    wrong = [w for i, step in enumerate(steps) for w in _wrong(step, outputs[i])]
    assert wrong == [], "\n".join(wrong)
