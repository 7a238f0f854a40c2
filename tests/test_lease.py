"""Leases on a real database: renewed by a heartbeat, taken over after the holder's death,
released on shutdown, one check per interval; a retrain that lost its lease never promotes."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from continual.adapters.db import open_database
from continual.services.lease import LeaseKeeper

TTL = 15.0


class Steered:
    """A clock the test moves by hand (both keepers read the same one)."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def now(self) -> float:
        """The steered time."""
        return self.t


def keepers(tmp_path: Path) -> tuple[LeaseKeeper, LeaseKeeper, Steered]:
    """Two replicas on other hosts (ids no process of this host can match), one database."""
    clock = Steered()
    url = f"sqlite:///{tmp_path / 'leases.sqlite'}"
    a, b = open_database(url), open_database(url)
    ka = LeaseKeeper(a.leases, a.meta, "host-a", TTL, clock)
    kb = LeaseKeeper(b.leases, b.meta, "host-b", TTL, clock)
    for k in (ka, kb):
        k.want("check")
    return ka, kb, clock


def test_a_dead_holder_on_another_host_is_replaced_within_four_thirds_of_the_ttl(
    tmp_path: Path,
) -> None:
    """The holder renews every TTL/3; once it stops, the other replica's heartbeat takes the
    lease within 4/3 TTL (20 s by default), and the old holder learns it lost it."""
    ka, kb, clock = keepers(tmp_path)
    assert ka.heartbeat() == {"check": True}
    for _ in range(10):  # a live holder keeps it, beat after beat, far past one TTL
        clock.t += ka.renew_seconds
        assert (ka.heartbeat(), kb.heartbeat()) == ({"check": True}, {"check": False})
    died = clock.t  # a kill -9: no more beats from a
    while not kb.heartbeat()["check"]:
        clock.t += kb.renew_seconds
    assert clock.t - died <= TTL + kb.renew_seconds
    assert kb.holds("check")
    assert ka.heartbeat() == {"check": False}  # back from a pause: it is no longer the holder
    assert not ka.holds("check")


def test_a_replica_that_stops_hands_its_leases_over_at_the_next_beat(tmp_path: Path) -> None:
    """Shutdown releases every lease: the other replica takes over at once, not after a TTL."""
    ka, kb, clock = keepers(tmp_path)
    assert ka.heartbeat()["check"]
    assert ka.acquire("retrain")
    assert not kb.acquire("retrain")
    ka.release_all()
    clock.t += 0.1
    assert kb.heartbeat() == {"check": True}
    assert kb.acquire("retrain")
    clock.t += 3 * kb.renew_seconds
    assert ka.heartbeat() == {}  # stopped: it wants nothing any more
    assert not ka.acquire("check")  # nor takes anything, should a last beat come late


def test_each_interval_is_checked_once_even_when_the_lease_changes_hands(tmp_path: Path) -> None:
    """The holder claims the interval's slot; a new holder skips a slot the old one ran."""
    ka, kb, _ = keepers(tmp_path)
    assert ka.heartbeat()["check"]
    assert kb.claim_slot("check", 7) is False  # not the holder
    assert ka.claim_slot("check", 7) is True
    assert ka.claim_slot("check", 7) is False  # the same interval, fired again
    ka.release_all()
    assert kb.heartbeat()["check"]
    assert kb.claim_slot("check", 7) is False  # a ran it before handing over
    assert kb.claim_slot("check", 8) is True


def test_a_retrain_that_lost_its_lease_does_not_promote(client_factory: Any) -> None:
    """Another replica takes the retrain lease while the worker fits: the challenger is
    recorded as rejected with the reason, nothing is promoted, nothing is served."""
    api = client_factory(CONTINUAL_LEASE_TTL_SECONDS="3")
    settings = api.app_.services.settings
    assert api.post("/generate", json={"n_samples": 2000, "seed": 3}).status_code == 200
    answer: dict[str, Any] = {}
    retrain = threading.Thread(target=lambda: answer.update(api.post("/retrain").json()))
    retrain.start()
    db = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"), timeout=5)
    stolen = False
    deadline = time.monotonic() + 60
    while not stolen and retrain.is_alive() and time.monotonic() < deadline:
        with db:  # the other replica took it over (its holder looked dead to it)
            stolen = (
                db.execute(
                    "UPDATE leases SET holder = 'elsewhere', expires_at = ? WHERE name = 'retrain'",
                    (time.time() + 60,),
                ).rowcount
                == 1
            )
        time.sleep(0.01)
    retrain.join(120)
    assert stolen, "the retrain ended before its lease could be taken"
    assert answer["promoted"] is False, answer
    assert "lost the retrain lease" in answer["reason"]
    models = api.get("/models").json()["versions"]
    assert [(m["version"], m["status"]) for m in models] == [(answer["version"], "rejected")]
    assert api.get("/model-status").json()["status"] == "no_model"
    assert api.get("/events").json()[0]["kind"] == "rejected"
    # the lease is the other replica's: this one neither released nor renewed it
    holder = db.execute("SELECT holder FROM leases WHERE name = 'retrain'").fetchone()
    assert holder == ("elsewhere",)
    assert api.post("/retrain").status_code == 409
