"""Scale benchmark: how costs grow with the size of a project and the number of clients.

Run ``python benchmarks/scale.py`` (``--sizes 10,1000,10000``, ``--fanout 1000,5000,10000``,
``--database-url postgresql://...`` instead of SQLite, ``--record`` rewrites the
``## Scale (benchmarks/scale.py)`` section of ``BENCHMARKS.md`` and no other).

For each project size (variables of ~1 KB each, every tenth one targeting a segment), against a ``setpoint serve``
subprocess:

- **write**: ``POST /v1/variables/<name>/versions/`` moving label ``prod`` (one writer: p50/p99; then 4 writer
  threads on distinct variables: writes/s and p99);
- **write -> get()**: the same write, until a remote provider in this process (SSE on, 60 s polling) serves the
  new value from ``compiled.evaluate`` (p50/p99);
- **fetch**: full ``GET /v1/variables/`` per second from one client, uncompressed, gzip and brotli (and bytes).

SDK config load (fresh subprocesses): parse the JSON body and build what each SDK evaluates from - Setpoint
(``pydantic_core.from_json`` + ``lkg.load_response``, as the remote provider does: every variable validated,
each compiled on first use), LaunchDarkly's server SDK (``json.loads`` + ``FEATURES.decode`` per flag +
``InMemoryFeatureStore.init``, as its data source does) and GrowthBook (``json.loads`` +
``GrowthBook(features=...)``), for the same variables/flags (one ~1 KB value each, a rule on every tenth).
Time: each process loads 3 times and reports its median; 5 rounds of processes with the systems taking turns,
median round (and fastest). Memory: bytes still allocated after the load (tracemalloc, separate process), the
raw JSON released; RSS growth of the process over the load; for Setpoint also after evaluating every variable
once. ``--skip server,fanout`` runs just this part (the server still builds the projects and serves the bodies).

SSE fan-out: N connections to ``/v1/variable-updates/`` from 4 client processes (``_fanout_client.py``); one
write; the time from sending it to each client's ``data:`` line (p50/p99/max, one wall clock), the write's round
trip, and the server process's RSS with N streams open.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from _report import add_record_option, cpu_model, load_average, record_section

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from setpoint._remote.options import RemoteOptions  # noqa: E402
from setpoint._remote.provider import RemoteProvider  # noqa: E402
from setpoint._server.services import keys  # noqa: E402
from setpoint._server.services.changes import ChangeSink  # noqa: E402
from setpoint._server.services.context import ServiceContext  # noqa: E402
from setpoint._server.storage import open_storage  # noqa: E402
from tests.server.scale_support import fill_project  # noqa: E402
from tests.server.support import CLI, free_port, subprocess_env  # noqa: E402

SECTION_TITLE = "## Scale (benchmarks/scale.py)"
VALUE_SIZE = 900


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Server:
    """``setpoint serve`` in a subprocess."""

    def __init__(self, data_dir: Path, database_url: str | None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url or f"sqlite:///{data_dir / 'setpoint.db'}"
        args = [*CLI, "serve", "--port", str(self.port), "--data-dir", str(data_dir), "--log-level", "warning"]
        if database_url:
            args += ["--database-url", database_url]
        self.log = (data_dir / "server.log").open("wb")
        self.process = subprocess.Popen(
            args, env=subprocess_env(SETPOINT_ADMIN_PASSWORD="bench-password"), stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise RuntimeError("the server did not start")
        self.storage = open_storage(self.database_url)
        self.ctx = ServiceContext(storage=self.storage, sink=ChangeSink(origin="bench"))

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def project(self, size: int) -> tuple[int, str]:
        name = f"bench-{size}-{time.monotonic_ns()}"
        created = keys.create_key(self.ctx, name, frozenset({"read", "write"}), "bench")
        fill_project(self.storage, created.project.id, size, value_size=VALUE_SIZE)
        return created.project.id, created.token

    def stop(self) -> None:
        self.storage.dispose()
        self.process.terminate()
        self.process.wait(30)
        self.log.close()


def _write(client: httpx.Client, name: str, value: Any) -> float:
    started = time.perf_counter()
    client.post(f"/v1/variables/{name}/versions/", json={"value": value, "label": "prod"}).raise_for_status()
    return time.perf_counter() - started


def bench_writes(server: Server, token: str, size: int, writes: int) -> dict[str, float]:
    headers = {"Authorization": f"bearer {token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        _write(client, "var_00000", {"n": -1})  # warm up
        single = [_write(client, f"var_{i % min(size, 50):05d}", {"n": i}) for i in range(writes)]
    per_writer = max(writes // 2, 5)
    latencies: list[float] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            for i in range(per_writer):
                took = _write(client, f"var_{(w + 4 * i) % size:05d}", {"w": w, "n": i})
                with lock:
                    latencies.append(took)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "write_p50": pct(single, 0.5) * 1000,
        "write_p99": pct(single, 0.99) * 1000,
        "writes_per_s_4": len(latencies) / elapsed,
        "write_p99_4": pct(latencies, 0.99) * 1000,
    }


def bench_propagation(server: Server, token: str, changes: int) -> dict[str, float]:
    options = RemoteOptions(url=server.url, api_key=token, polling_interval=timedelta(seconds=60))
    provider = RemoteProvider(options)
    provider.start()
    try:
        assert provider.wait_ready(120)
        time.sleep(1)  # the SSE stream is open
        took: list[float] = []
        with httpx.Client(base_url=server.url, headers={"Authorization": f"bearer {token}"}, timeout=60) as client:
            for i in range(changes):
                expected = json.dumps({"seen": i})
                sent = time.perf_counter()
                _write(client, "var_00001", {"seen": i})
                deadline = sent + 30
                while time.perf_counter() < deadline:
                    compiled = provider.compiled
                    if compiled is not None and compiled.evaluate("var_00001", "u").serialized_value == expected:
                        break
                    time.sleep(0.0005)
                took.append(time.perf_counter() - sent)
        return {"get_p50": pct(took, 0.5) * 1000, "get_p99": pct(took, 0.99) * 1000}
    finally:
        provider.shutdown(5)


def bench_fetch(server: Server, token: str, seconds: float) -> dict[str, float]:
    results: dict[str, float] = {}
    for encoding in ("identity", "gzip", "br"):
        headers = {"Authorization": f"bearer {token}", "Accept-Encoding": encoding}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            first = client.get("/v1/variables/")  # builds the compressed body once
            size = int(first.headers.get("content-length") or len(first.content))
            count = 0
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                with client.stream("GET", "/v1/variables/") as response:
                    for _ in response.iter_raw():
                        pass
                count += 1
        results[f"fetch_{encoding}"] = count / seconds
        results[f"bytes_{encoding}"] = size
    return results


LOAD_SCRIPT = textwrap.dedent(
    """
    import gc, json, sys, time, tracemalloc
    system, path, measure = sys.argv[1], sys.argv[2], sys.argv[3]
    raw = open(path, "rb").read()
    payloads = json.loads(raw)
    body = json.dumps(payloads[system]).encode()
    del raw, payloads
    gc.collect()

    def load():
        if system == "setpoint":
            import pydantic_core
            from setpoint._remote.lkg import load_response
            from setpoint._sdk.providers.base import gc_paused
            with gc_paused():  # as the remote provider does (`client.read_fetch`, `provider._apply`)
                data = pydantic_core.from_json(body)
                return load_response(None, data).compiled
        if system == "launchdarkly":
            from ldclient.feature_store import InMemoryFeatureStore
            from ldclient.versioned_data_kind import FEATURES
            data = json.loads(body)
            store = InMemoryFeatureStore()
            store.init({FEATURES: {k: FEATURES.decode(v) for k, v in data["flags"].items()}})
            return store
        from growthbook import GrowthBook
        data = json.loads(body)
        return GrowthBook(features=data["features"])

    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    if system == "setpoint":
        import pydantic_core, setpoint._core.evaluator, setpoint._remote.lkg  # imports outside the timing
    elif system == "launchdarkly":
        import ldclient.feature_store
    else:
        import growthbook
    if measure == "time":
        times, cpu = [], []
        for _ in range(3):
            start, start_cpu = time.perf_counter(), time.process_time()
            kept = load()
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            del kept
            gc.collect()
        print(json.dumps([sorted(times)[1], sorted(cpu)[1]]))
    elif measure == "rss":
        before = rss()
        kept = load()
        gc.collect()
        print(json.dumps(rss() - before))
    else:
        tracemalloc.start()
        kept = load()
        gc.collect()
        if measure == "memory_all":  # Setpoint compiles a variable on its first use: every variable used once
            for name in kept.names():
                kept.evaluate(name, "user-1", {"plan": "pro"})
            gc.collect()
        print(json.dumps(tracemalloc.get_traced_memory()[0]))
    """
)


def sdk_payloads(setpoint_body: dict[str, Any]) -> dict[str, Any]:
    """The same variables as LaunchDarkly flags and GrowthBook features."""
    flags: dict[str, Any] = {}
    features: dict[str, Any] = {}
    for name, variable in setpoint_body["variables"].items():
        value = json.loads(variable["labels"]["prod"]["serialized_value"])
        rules = []
        gb_rules = []
        if variable["overrides"]:
            clause = {"attribute": "plan", "op": "in", "values": ["pro"], "negate": False}
            rules = [{"id": "r0", "clauses": [clause], "variation": 0, "trackEvents": False}]
            gb_rules = [{"condition": {"plan": {"$in": ["pro"]}}, "force": value}]
        flags[name] = {
            "key": name,
            "version": 1,
            "on": True,
            "variations": [value],
            "fallthrough": {"variation": 0},
            "offVariation": 0,
            "rules": rules,
            "targets": [],
            "prerequisites": [],
            "salt": name,
            "trackEvents": False,
            "debugEventsUntilDate": None,
        }
        features[name] = {"defaultValue": value, "rules": gb_rules}
    return {"setpoint": setpoint_body, "launchdarkly": {"flags": flags}, "growthbook": {"features": features}}


SDK_SYSTEMS = ("setpoint", "launchdarkly", "growthbook")
SDK_ROUNDS = 5


def _load_run(script: Path, path: Path, system: str, measure: str) -> Any:
    done = subprocess.run(
        [sys.executable, str(script), system, str(path), measure],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        print(f"{system} {measure} failed: {done.stderr[-500:]}", file=sys.stderr)
        return [float("nan"), float("nan")] if measure == "time" else float("nan")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_sdk_load(body: dict[str, Any], workdir: Path) -> dict[str, dict[str, float]]:
    """Load time (rounds of fresh processes, the systems taking turns, so a busy moment of this shared machine
    falls on all of them: the median round), memory kept (tracemalloc) and RSS growth, per SDK."""
    path = workdir / "payloads.json"
    path.write_text(json.dumps(sdk_payloads(body)))
    script = workdir / "load.py"
    script.write_text(LOAD_SCRIPT)
    times: dict[str, list[float]] = {system: [] for system in SDK_SYSTEMS}
    cpu: dict[str, list[float]] = {system: [] for system in SDK_SYSTEMS}
    for _ in range(SDK_ROUNDS):
        for system in SDK_SYSTEMS:
            wall, cpu_time = _load_run(script, path, system, "time")
            times[system].append(float(wall))
            cpu[system].append(float(cpu_time))
    results: dict[str, dict[str, float]] = {}
    for system in SDK_SYSTEMS:
        row = {"time": pct(times[system], 0.5), "time_min": min(times[system]), "cpu": pct(cpu[system], 0.5)}
        measures = ("memory", "rss", "memory_all") if system == "setpoint" else ("memory", "rss")
        for measure in measures:
            row[measure] = float(_load_run(script, path, system, measure))
        results[system] = row
    return results


def sdk_table(sdk: dict[int, dict[str, dict[str, float]]]) -> list[str]:
    """The SDK load rows: time, memory kept (tracemalloc) and RSS growth per system, side by side."""
    lines = [
        f"SDK config load: wall time (median of {SDK_ROUNDS} fresh processes, the systems taking turns; fastest in "
        "brackets) and CPU time of the process (median; less sensitive to other processes on the machine), memory "
        "kept after the load (tracemalloc) and process RSS growth. Setpoint compiles a variable on first use: its "
        "memory once every variable was evaluated is in the last column.",
        "",
        "| variables | Setpoint | LaunchDarkly | GrowthBook | Setpoint, every variable used |",
        "|---:|---:|---:|---:|---:|",
    ]
    for size, by_system in sdk.items():
        cells = [
            f"{r['time'] * 1000:.0f} ms ({r['time_min'] * 1000:.0f}), CPU {r['cpu'] * 1000:.0f} ms, "
            f"{r['memory'] / 2**20:.1f} MiB, "
            f"RSS +{r['rss'] / 2**20:.1f} MiB"
            for r in (by_system[s] for s in SDK_SYSTEMS)
        ]
        cells.append(f"{by_system['setpoint']['memory_all'] / 2**20:.1f} MiB")
        lines.append(f"| {size:,} | {' | '.join(cells)} |")
    return lines


FANOUT_CLIENT = Path(__file__).resolve().parent / "_fanout_client.py"


def bench_fanout(port: int, token: str, clients: int, server: Server, processes: int = 4) -> dict[str, float]:
    """Open ``clients`` SSE streams from ``processes`` client processes, write once, and measure each stream's
    delivery: the wall-clock time its ``data:`` line arrived minus the time the write was sent (one machine,
    one clock; the write's own round trip, reported as ``write_ms``, is inside every delivery)."""
    with httpx.Client(base_url=server.url, headers={"Authorization": f"bearer {token}"}, timeout=120) as client:
        # Warm up the write path (the first write of a server process is several times slower).
        client.post("/v1/variables/var_00002/versions/", json={"value": {"warm-up": clients}}).raise_for_status()
    share = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(FANOUT_CLIENT), str(port), token, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=subprocess_env(),
            text=True,
        )
        for n in share
        if n
    ]
    connected = failed = 0
    for proc in procs:
        assert proc.stdout is not None
        _, ok, bad = proc.stdout.readline().split()
        connected, failed = connected + int(ok), failed + int(bad)
    rss = server.rss_mb()
    time.sleep(1)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"bearer {token}"}, timeout=120) as client:
        sent = time.time()
        response = client.post("/v1/variables/var_00002/versions/", json={"value": {"fanout": clients}})
        answered = time.time()
        response.raise_for_status()
    arrivals: list[float] = []
    for proc in procs:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        assert proc.stdout is not None
        arrivals += json.loads(proc.stdout.readline())
        proc.wait(60)
    delays = [a - sent for a in arrivals] or [float("nan")]
    return {
        "connected": connected,
        "failed": failed,
        "received": len(arrivals),
        "p50": pct(delays, 0.5) * 1000,
        "p99": pct(delays, 0.99) * 1000,
        "max": max(delays) * 1000,
        "write_ms": (answered - sent) * 1000,
        "rss_mb": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--fanout", default="1000,5000,10000")
    parser.add_argument("--writes", type=int, default=30)
    parser.add_argument("--changes", type=int, default=15)
    parser.add_argument("--fetch-seconds", type=float, default=1.5)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: server,sdk,fanout")
    add_record_option(parser)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    skip = set(args.skip.split(","))
    loads = [load_average()]
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server = Server(workdir, args.database_url)
        try:
            rows: dict[int, dict[str, float]] = {}
            bodies: dict[int, dict[str, Any]] = {}
            for size in sizes:
                _, token = server.project(size)
                with httpx.Client(base_url=server.url, headers={"Authorization": f"bearer {token}"}) as client:
                    bodies[size] = client.get("/v1/variables/", timeout=120).json()
                if "server" in skip:
                    continue
                row = bench_writes(server, token, size, args.writes)
                row.update(bench_propagation(server, token, args.changes))
                row.update(bench_fetch(server, token, args.fetch_seconds))
                rows[size] = row
                print(size, json.dumps(row), flush=True)
                loads.append(load_average())
            fanout: dict[int, dict[str, float]] = {}
            if "fanout" not in skip:
                _, token = server.project(10)
                for clients in [int(c) for c in args.fanout.split(",") if c]:
                    fanout[clients] = bench_fanout(server.port, token, clients, server)
                    print("fanout", clients, json.dumps(fanout[clients]), flush=True)
                    loads.append(load_average())
                    time.sleep(2)
        finally:
            server.stop()
        sdk: dict[int, dict[str, dict[str, float]]] = {}
        if "sdk" not in skip:
            for size in sizes:
                if size >= 1000:
                    sdk[size] = bench_sdk_load(bodies[size], workdir)
                    print("sdk", size, json.dumps(sdk[size]), flush=True)
                    loads.append(load_average())
    lines.append(
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{'PostgreSQL' if args.database_url else 'SQLite'}; load average during the run "
        f"{min(loads):.1f}-{max(loads):.1f} (other engineers' test runs share the machine: compare rows "
        "of one run, not absolute numbers)."
    )
    if rows:
        lines += [
            "",
            "| variables | write p50 / p99 (ms) | 4 writers: writes/s, p99 (ms) | write -> get() p50 / p99 (ms) "
            "| fetch/s plain / gzip / br | body bytes plain / gzip / br |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for size, r in rows.items():
            lines.append(
                f"| {size:,} | {r['write_p50']:.0f} / {r['write_p99']:.0f} | {r['writes_per_s_4']:.1f}, "
                f"{r['write_p99_4']:.0f} | {r['get_p50']:.0f} / {r['get_p99']:.0f} | "
                f"{r['fetch_identity']:.0f} / {r['fetch_gzip']:.0f} / {r['fetch_br']:.0f} | "
                f"{r['bytes_identity']:,.0f} / {r['bytes_gzip']:,.0f} / {r['bytes_br']:,.0f} |"
            )
    if sdk:
        lines += ["", *sdk_table(sdk)]
    if fanout:
        lines += [
            "",
            "SSE fan-out (one server process, one write; delivery = the client's `data:` line arrived minus the "
            "write sent, one wall clock; the streams are read by 4 client processes on the same 2 cores):",
            "",
            "| clients | connected (failed) | received | delivery p50 / p99 / max (ms) | write round trip (ms) "
            "| server RSS (MiB) |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for clients, f in fanout.items():
            lines.append(
                f"| {clients:,} | {f['connected']:,.0f} ({f['failed']:.0f}) | {f['received']:,.0f} | "
                f"{f['p50']:.0f} / {f['p99']:.0f} / {f['max']:.0f} | {f['write_ms']:.0f} | {f['rss_mb']:.0f} |"
            )
    text = "\n".join(lines)
    print(text)
    if args.record:
        record_section(Path(args.record), SECTION_TITLE, text)


if __name__ == "__main__":
    main()
