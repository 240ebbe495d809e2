"""Usage reporting end to end: real application processes resolve against a real server, and the counts per label
that arrive at ``GET /v1/usage/`` add up exactly (after a flush), lose at most one interval when the app is
killed, and are not double counted by forked workers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import setpoint
from setpoint._remote.usage import UsageReporter
from setpoint._sdk import usage as sdk_usage
from tests.remote.support import Project, ServerProc, wait_until
from tests.server.support import subprocess_env

pytestmark = pytest.mark.slow

APP = textwrap.dedent(
    """
    import json, os, sys, time
    import setpoint

    url, key, mode, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    setpoint.configure(remote=setpoint.RemoteOptions(url=url, api_key=key, usage_interval={interval},
                                                     report_usage={report}))
    flag = setpoint.var(name="flag", type=str, default="off")
    other = setpoint.var(name="other", type=int, default=7)
    tally = {{}}

    def resolve(i):
        got = flag.get(targeting_key=f"user-{{i}}")
        tally[got.label or "(code default)"] = tally.get(got.label or "(code default)", 0) + 1
        other.get()
        tally["other"] = tally.get("other", 0) + 1

    if mode == "count":
        for i in range(3000):
            resolve(i)
        setpoint.shutdown(10)
        print(json.dumps(tally))
    elif mode == "fork":
        for i in range(500):
            resolve(i)
        pid = os.fork()
        start = 10_000 if pid == 0 else 20_000
        mine = {{}}
        for i in range(start, start + 700):
            got = flag.get(targeting_key=f"user-{{i}}")
            mine[got.label or "(code default)"] = mine.get(got.label or "(code default)", 0) + 1
        setpoint.shutdown(10)
        if pid == 0:
            with open(out + ".child", "w") as f:
                json.dump(mine, f)
            os._exit(0)
        os.waitpid(pid, 0)
        before = {{k: v for k, v in tally.items() if k != "other"}}
        print(json.dumps({{"before": before, "parent": mine}}))
    else:  # "loop": resolve until killed, logging the running total with the time
        i = 0
        with open(out, "w") as log:
            while True:
                for _ in range(200):
                    flag.get(targeting_key=f"user-{{i}}")
                    i += 1
                log.write(f"{{time.monotonic()}} {{i}}\\n")
                log.flush()
                time.sleep(0.01)
    """
)


def _setup_flag(project: Project) -> None:
    body = {
        "name": "flag",
        "json_schema": {"type": "string"},
        "labels": {
            "a": {"target_type": "version", "serialized_value": json.dumps("A")},
            "b": {"target_type": "version", "serialized_value": json.dumps("B")},
        },
        "rollout": {"labels": {"a": 0.5, "b": 0.3}},
    }
    with project.api() as api:
        api.post("/v1/variables/", json=body).raise_for_status()


def _run_app(tmp_path: Path, project: Project, mode: str, *, interval: float = 60.0, report: bool = True) -> Any:
    script = tmp_path / "app.py"
    script.write_text(APP.format(interval=interval, report=report))
    out = tmp_path / f"{mode}.out"
    done = subprocess.run(
        [sys.executable, str(script), project.server.url, project.read_key, mode, str(out)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _usage(project: Project, variable: str) -> dict[str, Any]:
    with project.api() as api:
        response = api.get("/v1/usage/", params={"variable": variable})
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


def _totals(data: dict[str, Any]) -> dict[str, int]:
    return {s["label"]: s["total"] for s in data["series"]}


def test_counts_per_label_arrive_and_add_up_exactly(project: Project, tmp_path: Path) -> None:
    _setup_flag(project)
    tally = _run_app(tmp_path, project, "count")
    flag = _usage(project, "flag")
    assert _totals(flag) == {k: v for k, v in tally.items() if k != "other"}
    assert sum(_totals(flag).values()) == 3000
    assert flag["reasons"] == {"resolved": tally["a"] + tally["b"], "code_default": tally["(code default)"]}
    assert flag["versions"] == {"a": {"1": tally["a"]}, "b": {"2": tally["b"]}}
    assert flag["processes"] == 1
    assert flag["last_seen_at"] is not None
    # `other` does not exist on the server: its code default is still counted (reason code_default).
    assert _totals(_usage(project, "other")) == {"(code default)": 3000}


def test_report_usage_false_sends_nothing(project: Project, tmp_path: Path) -> None:
    _setup_flag(project)
    _run_app(tmp_path, project, "count", report=False)
    assert _usage(project, "flag")["total"] == 0


def test_forked_workers_report_their_own_counts_once(project: Project, tmp_path: Path) -> None:
    _setup_flag(project)
    result = _run_app(tmp_path, project, "fork")
    child = json.loads((tmp_path / "fork.out.child").read_text())
    expected: dict[str, int] = {}
    for part in (result["before"], result["parent"], child):
        for label, n in part.items():
            expected[label] = expected.get(label, 0) + n
    flag = _usage(project, "flag")
    assert _totals(flag) == expected
    assert sum(expected.values()) == 500 + 700 + 700
    assert flag["processes"] == 2


def test_a_killed_app_loses_at_most_one_interval(project: Project, tmp_path: Path) -> None:
    _setup_flag(project)
    interval = 1.0
    script = tmp_path / "app.py"
    script.write_text(APP.format(interval=interval, report=True))
    log = tmp_path / "loop.log"
    proc = subprocess.Popen(
        [sys.executable, str(script), project.server.url, project.read_key, "loop", str(log)], env=subprocess_env()
    )
    try:
        assert wait_until(lambda: _usage(project, "flag")["total"] > 0, timeout=30, interval=0.2)
        time.sleep(2.5 * interval)
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    samples = [(float(t), int(n)) for t, n in (line.split() for line in log.read_text().splitlines() if line)]
    total_at_kill = samples[-1][1]
    # Everything resolved up to one interval (plus scheduling slack on a busy machine) before the kill arrived.
    slack = 1.5
    reported_by = max((n for t, n in samples if t <= killed_at - interval - slack), default=0)
    stored = _usage(project, "flag")["total"]
    assert reported_by > 0
    assert reported_by <= stored <= total_at_kill


def test_failed_sends_are_merged_into_the_next_and_never_raise(project: Project) -> None:
    """The server is unreachable for a while: get() never notices, and the counts arrive in the next send."""
    _setup_flag(project)
    bad = setpoint.RemoteOptions(url="http://127.0.0.1:9", api_key=project.read_key, usage_interval=timedelta(hours=1))
    reporter = UsageReporter(bad)
    reporter.start()
    try:
        flag = setpoint.var(name="flag", type=str, default="off")
        for i in range(50):
            flag.get(targeting_key=f"k{i}")
        assert reporter.flush() is False
        assert reporter.pending() >= 50
        for i in range(25):
            flag.get(targeting_key=f"k{i}")
        reporter.options = setpoint.RemoteOptions(url=project.server.url, api_key=project.read_key)
        reporter._client = None
        assert reporter.flush() is True
        assert reporter.pending() == 0
    finally:
        reporter.close()
    assert _usage(project, "flag")["total"] >= 75


def test_a_batch_the_server_refuses_is_dropped_not_retried(project: Project, caplog: pytest.LogCaptureFixture) -> None:
    reporter = UsageReporter(setpoint.RemoteOptions(url=project.server.url, api_key=project.read_key))
    reporter.start()
    try:
        sdk_usage.harvest()
        reporter._pending[("flag", "a", 1, "no-such-reason")] = 5
        with caplog.at_level("WARNING", logger="setpoint"):
            assert reporter.flush() is False
        assert reporter.pending() == 0
        assert "dropped" in caplog.text
    finally:
        reporter.close()


def test_usage_requires_a_key(server: ServerProc) -> None:
    response = httpx.post(f"{server.url}/v1/usage/", json={"sdk": "x", "instance_id": "i", "counts": []}, timeout=10)
    assert response.status_code == 401


def test_counting_survives_config_changes_between_harvests() -> None:
    """A config swap retires the old bound; its counts still reach the next harvest (while reporting)."""
    from setpoint.config import LabeledValue, Rollout, VariableConfig, VariablesConfig

    def config(value: str) -> VariablesConfig:
        return VariablesConfig(
            variables={
                "swap": VariableConfig(
                    name="swap",
                    labels={"x": LabeledValue(version=1, serialized_value=json.dumps(value))},
                    rollout=Rollout(labels={"x": 1.0}),
                    overrides=[],
                )
            }
        )

    provider = setpoint.LocalProvider(config("one"))
    setpoint.configure(provider=provider)
    sdk_usage.set_reporting(True)
    try:
        sdk_usage.harvest()
        swap = setpoint.var(name="swap", type=str, default="d")
        for _ in range(10):
            assert swap.get().value == "one"
        setpoint.configure(provider=setpoint.LocalProvider(config("two")))
        for _ in range(5):
            assert swap.get().value == "two"
        counts, dropped = sdk_usage.harvest()
    finally:
        sdk_usage.set_reporting(False)
    assert dropped == 0
    assert counts[("swap", "x", 1, "resolved")] == 15
    assert sdk_usage.harvest()[0].get(("swap", "x", 1, "resolved"), 0) == 0
