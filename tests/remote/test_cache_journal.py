"""The last-known-good cache file: a change costs what it carries, and no crash loses the last good state.

Counted in bytes written (not timed). Crashes are real where they can be (a writer process killed with
SIGKILL at random moments) and simulated where the moment must be exact (a journal cut mid-line, a damaged
line, lines of an older snapshot).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from setpoint._remote.cache import CacheFile, load_cache
from tests.server.support import subprocess_env


def variable(name: str, value: Any) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {"main": {"version": 1, "serialized_value": json.dumps(value)}},
        "rollout": {"labels": {"main": 1.0}},
    }


def project(size: int) -> dict[str, Any]:
    return {f"v{i}": variable(f"v{i}", {"n": i, "text": "x" * 200}) for i in range(size)}


def values_of(variables: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(name, json.loads(item["labels"]["main"]["serialized_value"])) for name, item in variables.items()]


def values(cache: CacheFile) -> dict[str, Any]:
    data = cache.read()
    assert data is not None
    return {name: json.loads(item["labels"]["main"]["serialized_value"]) for name, item in data["variables"].items()}


def test_a_change_writes_what_it_carries_not_the_project(tmp_path: Path) -> None:
    cache = CacheFile(tmp_path / "variables.json", "http://server")
    cache.write_snapshot(project(1000), {})
    snapshot_bytes = cache.bytes_written
    assert snapshot_bytes > 250_000
    for i in range(20):
        written = cache.bytes_written
        change = variable("v7", {"n": -i})
        assert cache.append({"v7": change}, [], {}, [])
        assert cache.bytes_written - written < len(json.dumps(change)) + 100  # one line: the change itself
    assert cache.append({}, ["v8"], {}, [])
    assert cache.snapshots_written == 1  # never rewritten for a change
    state = values(cache)
    assert state["v7"] == {"n": -19} and "v8" not in state and len(state) == 999
    assert load_cache(cache.path) is not None  # and it validates as a config


def test_the_journal_is_folded_into_a_new_snapshot_when_it_outgrows_it(tmp_path: Path) -> None:
    cache = CacheFile(tmp_path / "variables.json", "http://server")
    cache.write_snapshot(project(300), {})  # ~80 KB
    first = cache.bytes_written
    changes = 0
    while cache.snapshots_written == 1:
        assert cache.append({f"v{changes % 300}": variable(f"v{changes % 300}", {"changed": changes})}, [], {}, [])
        changes += 1
    assert cache.journal.stat().st_size == 0 and cache.snapshots_written == 2
    last_change = {f"v{c % 300}": {"changed": c} for c in range(changes)}
    assert values(cache) == {**dict(values_of(project(300))), **last_change}
    # Amortized: a fold writes one snapshot after at least a snapshot's worth of journal lines, so the bytes
    # written stay proportional to the changes.
    folded = cache.path.stat().st_size
    lines = cache.bytes_written - first - folded
    assert changes > 100 and folded <= lines


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(tmp_path: Path) -> None:
    cache = CacheFile(tmp_path / "variables.json", "http://server")
    cache.write_snapshot(project(3), {})
    cache.append({"v0": variable("v0", "first")}, [], {}, [])
    cache.append({"v1": variable("v1", "second")}, [], {}, [])
    content = cache.journal.read_bytes()
    cache.journal.write_bytes(content[:-25])  # the process died in the middle of writing the second line
    state = values(cache)
    assert state["v0"] == "first" and state["v1"] == {"n": 1, "text": "x" * 200}

    cache.append({"v2": variable("v2", "third")}, [], {}, [])  # appends after the last whole line
    state = values(cache)
    assert state["v0"] == "first" and state["v2"] == "third" and state["v1"]["n"] == 1
    assert cache.journal.read_bytes().count(b"\n") == 2


def test_a_damaged_line_stops_the_replay_there(tmp_path: Path) -> None:
    cache = CacheFile(tmp_path / "variables.json", "http://server")
    cache.write_snapshot(project(3), {})
    for name, value in (("v0", "a"), ("v1", "b"), ("v2", "c")):
        cache.append({name: variable(name, value)}, [], {}, [])
    lines = cache.journal.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'\\"b\\"', b'\\"B\\"')  # same length, wrong checksum
    cache.journal.write_bytes(b"\n".join(lines))
    state = values(cache)
    assert state["v0"] == "a" and state["v1"]["n"] == 1 and state["v2"]["n"] == 2


def test_lines_of_an_older_snapshot_are_ignored(tmp_path: Path) -> None:
    cache = CacheFile(tmp_path / "variables.json", "http://server")
    cache.write_snapshot(project(2), {})
    cache.append({"v0": variable("v0", "old generation")}, [], {}, [])
    stale = cache.journal.read_bytes()
    cache.write_snapshot({"v1": variable("v1", "new snapshot")}, {})
    cache.journal.write_bytes(stale)  # a crash after the new snapshot, before the journal was emptied
    assert values(cache) == {"v1": "new snapshot"}


def test_no_snapshot_means_no_append(tmp_path: Path) -> None:
    cache = CacheFile(tmp_path / "variables.json", "http://server")
    assert not cache.append({"v0": variable("v0", 1)}, [], {}, [])
    assert cache.read() is None and not cache.journal.exists()
    cache.write_snapshot(project(1), {})
    assert cache.append({"v0": variable("v0", 2)}, [], {}, [])
    cache.forget_snapshot()  # after a failed write: the next change must be written as a whole snapshot
    assert not cache.append({"v0": variable("v0", 3)}, [], {}, [])
    assert values(cache) == {"v0": 2}


WRITER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from setpoint._remote.cache import CacheFile

    def variable(name, value):
        return {"name": name, "labels": {"main": {"version": 1, "serialized_value": json.dumps(value)}},
                "rollout": {"labels": {"main": 1.0}}}

    cache = CacheFile(Path(sys.argv[1]), "http://server")
    pad = "y" * 3000
    cache.write_snapshot({f"v{i}": variable(f"v{i}", [0, pad]) for i in range(40)}, {})
    print(0, flush=True)
    step = 0
    while True:
        step += 1
        name = f"v{step % 40}"
        cache.append({name: variable(name, [step, pad]), "counter": variable("counter", step)}, [], {}, [])
        print(step, flush=True)  # durable (fsynced) before it is announced
    """
)


@pytest.mark.parametrize("seed", range(6))
def test_a_writer_killed_at_any_moment_leaves_a_state_it_had_written(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "variables.json"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    process = subprocess.Popen(
        [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, env=subprocess_env(), text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "0"
    time.sleep(random.Random(seed).uniform(0.05, 0.6))  # journal appends and folds (~every 40 appends)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    announced = [int(line) for line in process.stdout.read().split()]
    process.stdout.close()
    last = announced[-1] if announced else 0

    cache = CacheFile(path, "http://server")
    state = values(cache)
    counter = state.get("counter", 0)
    assert last <= counter <= last + 1  # every announced change is there; at most the one being written too
    for i in range(40):  # and the state is exactly the one after `counter` changes
        expected = max((s for s in range(counter + 1) if s % 40 == i), default=0)
        assert state[f"v{i}"][0] == expected
    assert load_cache(path) is not None
