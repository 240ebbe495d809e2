"""Durable SQLite commits, ``setpoint backup`` during writes, ``setpoint restore`` (refusals, older schemas),
and the PostgreSQL equivalent with pg_dump / pg_restore as the README documents it."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from setpoint._server.security import hash_token
from setpoint._server.storage import open_storage
from setpoint._server.storage.migrate import current_revision, head_revision, upgrade
from tests.server.durability_support import (
    dump_tables,
    extra_postgres_database,
    new_project,
    run_cli,
    run_cli_process,
)
from tests.server.support import Project, ServerProcess
from tests.support import skip_or_fail

pytestmark = pytest.mark.slow


def test_sqlite_commits_are_durable_by_default(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'db'}")
    try:
        with storage.engine.connect() as conn:
            # FULL (2): the WAL is fsynced at every commit, so an acknowledged write survives power loss.
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        storage.dispose()


@dataclass
class Writers:
    """Threads that each add versions to their own variable (moving label ``prod``) as fast as the server acks."""

    server: ServerProcess
    project: Project
    names: list[str]
    acked: dict[str, list[int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Writers:
        for name in self.names:
            self.acked[name] = []
            thread = threading.Thread(target=self._write, args=(name,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _write(self, name: str) -> None:
        seq = 0
        with self.server.client(self.project) as api:
            while not self._stop.is_set():
                seq += 1
                body = {"value": {"writer": name, "seq": seq}, "label": "prod", "description": f"write {seq}"}
                try:
                    response = api.post(f"/v1/variables/{name}/versions/", json=body)
                except httpx.HTTPError as exc:
                    self.errors.append(f"{name} #{seq}: {exc!r}")
                    return
                if response.status_code != 201:
                    self.errors.append(f"{name} #{seq}: {response.status_code} {response.text}")
                    return
                assert response.json()["version"] == seq + 1
                with self._lock:
                    self.acked[name].append(seq)

    def snapshot(self) -> dict[str, list[int]]:
        """The writes acknowledged so far."""
        with self._lock:
            return {name: list(seqs) for name, seqs in self.acked.items()}

    def wait_for_each(self, count: int, timeout: float = 60) -> None:
        """Wait until every writer has ``count`` more acknowledged writes than now."""
        targets = {name: len(seqs) + count for name, seqs in self.snapshot().items()}
        deadline = time.monotonic() + timeout
        while any(len(self.snapshot()[n]) < t for n, t in targets.items()):
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, f"writers too slow: {self.snapshot()}"
            time.sleep(0.02)


def _create_variables(server: ServerProcess, project: Project, names: list[str]) -> None:
    with server.client(project) as api:
        for name in names:
            body = {
                "name": name,
                "labels": {"prod": {"target_type": "version", "serialized_value": json.dumps({"seq": 0})}},
                "rollout": {"labels": {"prod": 1.0}},
            }
            api.post("/v1/variables/", json=body).raise_for_status()


def _check_consistent(url: str, project: Project, names: list[str], before: dict[str, list[int]]) -> None:
    """Every write acknowledged before the backup is there, and each write is whole: its version, the label
    move onto it and its audit entry are all present or all absent."""
    tables = dump_tables(url, ["projects", "variables", "variable_versions", "labels", "label_history", "audit_log"])
    variable_ids = {
        row["name"]: row["id"]
        for row in tables["variables"]
        if row["project_id"] == project.id and row["name"] in names
    }
    assert set(variable_ids) == set(names)
    for name, variable_id in variable_ids.items():
        versions = {r["version"]: r for r in tables["variable_versions"] if r["variable_id"] == variable_id}
        count = len(versions)
        assert sorted(versions) == list(range(1, count + 1)), f"{name}: versions have a gap"
        for seq in before[name]:
            assert seq + 1 in versions, f"{name}: acknowledged write #{seq} lost"
        for version, row in versions.items():
            expected = {"seq": 0} if version == 1 else {"writer": name, "seq": version - 1}
            assert json.loads(row["serialized_value"]) == expected
        (label,) = [r for r in tables["labels"] if r["variable_id"] == variable_id and r["name"] == "prod"]
        assert label["target_type"] == "version" and label["version"] == count, f"{name}: label not on the last write"
        moves = [r["version"] for r in tables["label_history"] if r["variable_id"] == variable_id]
        assert moves == list(range(1, count + 1)), f"{name}: label history {moves} for {count} versions"
        audit = [
            r["action"]
            for r in tables["audit_log"]
            if r["project_id"] == project.id and r["entity_type"] == "variable" and r["entity_name"] == name
        ]
        assert audit == ["create"] + ["create_version"] * (count - 1), f"{name}: audit {audit}"


def _served_prod(server: ServerProcess, project: Project, names: list[str]) -> dict[str, Any]:
    with server.client(project, project.ro_key) as api:
        variables = api.get("/v1/variables/").json()["variables"]
    return {name: json.loads(variables[name]["labels"]["prod"]["serialized_value"]) for name in names}


@pytest.fixture
def pg_tools() -> tuple[str, str]:
    """Paths of pg_dump and pg_restore (skips, or fails in CI, without them)."""
    dump, restore = shutil.which("pg_dump"), shutil.which("pg_restore")
    if not dump or not restore:
        skip_or_fail("pg_dump / pg_restore are not installed (apt-get install postgresql-client)")
    return dump, restore


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_backup_during_concurrent_writes_restores_every_acknowledged_write_and_no_torn_one(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    names = ["w0", "w1", "w2"]
    if backend == "postgres":
        pg_dump, pg_restore = request.getfixturevalue("pg_tools")
        url: str = request.getfixturevalue("postgres_database")
    else:
        url = f"sqlite:///{tmp_path / 'live' / 'setpoint.db'}"
    server = ServerProcess(database_url=url, data_dir=tmp_path / "live")
    server.start()
    backup_file = tmp_path / "backups" / ("setpoint.db" if backend == "sqlite" else "setpoint.dump")
    try:
        project = new_project(url)
        _create_variables(server, project, names)
        with Writers(server, project, names) as writers:
            writers.wait_for_each(5)
            before = writers.snapshot()  # acknowledged before the backup started
            if backend == "sqlite":
                done = run_cli_process("backup", str(backup_file), "--data-dir", str(server.data_dir))
                assert done.returncode == 0, done.stderr
                assert f"to {backup_file}" in done.stdout
                assert [p.name for p in backup_file.parent.iterdir()] == ["setpoint.db"]  # no partial file left
            else:
                backup_file.parent.mkdir()
                dump = [pg_dump, "--format=custom", f"--file={backup_file}", url]
                subprocess.run(dump, check=True, capture_output=True, timeout=120)
            writers.wait_for_each(3)  # and the server went on writing
        assert not writers.errors, writers.errors
        during = writers.snapshot()
        assert all(len(during[n]) > len(before[n]) for n in names)
    finally:
        server.stop()

    if backend == "sqlite":
        restored_url = f"sqlite:///{tmp_path / 'restored' / 'setpoint.db'}"
        done = run_cli("restore", str(backup_file), "--data-dir", str(tmp_path / "restored"))
        assert done.returncode == 0, done.stderr
        _verify_restored(restored_url, tmp_path / "restored", project, names, before)
    else:
        with extra_postgres_database(request.getfixturevalue("postgres_server_url")) as restored_url:
            restore = [pg_restore, "--no-owner", f"--dbname={restored_url}", str(backup_file)]
            subprocess.run(restore, check=True, capture_output=True, timeout=120)
            _verify_restored(restored_url, tmp_path / "restored", project, names, before)


def _verify_restored(
    url: str, data_dir: Path, project: Project, names: list[str], before: dict[str, list[int]]
) -> None:
    _check_consistent(url, project, names, before)
    restored = ServerProcess(database_url=url, data_dir=data_dir)
    restored.start()
    try:
        served = _served_prod(restored, project, names)
        counts = {r["name"]: r for r in dump_tables(url, ["variables"])["variables"]}
        assert {n: served[n]["seq"] for n in names} == {n: counts[n]["revision"] - 1 for n in names}
        with restored.client(project) as api:  # ids continue after the restored rows
            response = api.post("/v1/variables/w0/versions/", json={"value": {"after": "restore"}})
            assert response.status_code == 201, response.text
    finally:
        restored.stop()


def test_restore_brings_a_stopped_instance_back_to_exactly_the_backup(tmp_path: Path) -> None:
    data = tmp_path / "instance"
    url = f"sqlite:///{data / 'setpoint.db'}"
    backup_file = tmp_path / "backup.db"
    server = ServerProcess(database_url="", data_dir=data)
    server.start()
    try:
        project = new_project(url)
        _create_variables(server, project, ["kept"])
        with server.client(project) as api:
            at_backup = api.get("/v1/variables/")
        assert run_cli("backup", str(backup_file), "--data-dir", str(data)).returncode == 0
        scratch = tmp_path / "scratch.db"  # opening a copy: Setpoint's engine would switch the file to WAL
        shutil.copy(backup_file, scratch)
        tables_at_backup = dump_tables(f"sqlite:///{scratch}")

        again = run_cli("backup", str(backup_file), "--data-dir", str(data))
        assert again.returncode == 1 and "--overwrite" in again.stderr
        assert run_cli("backup", str(backup_file), "--data-dir", str(data), "--overwrite").returncode == 0

        with server.client(project) as api:
            api.post("/v1/variables/kept/versions/", json={"value": "after the backup", "label": "prod"})
            api.post("/v1/variables/", json={"name": "later", "labels": {}}).raise_for_status()

        running = run_cli("restore", str(backup_file), "--data-dir", str(data), "--yes")
        assert running.returncode == 1
        assert "in use by a running Setpoint" in running.stderr and "stop it" in running.stderr
    finally:
        server.stop()

    unconfirmed = run_cli("restore", str(backup_file), "--data-dir", str(data))
    assert unconfirmed.returncode == 1 and "--yes" in unconfirmed.stderr
    assert "later" in {r["name"] for r in dump_tables(url, ["variables"])["variables"]}  # untouched

    done = run_cli("restore", str(backup_file), "--data-dir", str(data), "--yes")
    assert done.returncode == 0, done.stderr
    assert dump_tables(url) == tables_at_backup
    server.start()
    try:
        with server.client(project) as api:
            now = api.get("/v1/variables/")
        assert now.json() == at_backup.json() and now.headers["etag"] == at_backup.headers["etag"]
    finally:
        server.stop()


def _database_at(path: Path, revision: str) -> str:
    """A SQLite database migrated only up to ``revision``, with a project, a key and a variable (raw SQL)."""
    token = "sp_old_schema_key_0123456789abcdef"
    engine = sa.create_engine(f"sqlite:///{path}")
    upgrade(engine, revision)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO projects (id, name, created_at) VALUES (1, 'old', :now)"), {"now": now})
        conn.execute(
            sa.text(
                "INSERT INTO api_keys (project_id, name, prefix, key_hash, scopes, created_by, created_at) "
                "VALUES (1, 'k', 'sp_old', :hash, 'read', 'test', :now)"
            ),
            {"hash": hash_token(token), "now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO variables (id, project_id, name, rollout, overrides, revision, created_at, updated_at) "
                """VALUES (1, 1, 'legacy', '{"labels": {"prod": 1.0}}', '[]', 1, :now, :now)"""
            ),
            {"now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO variable_versions (variable_id, version, serialized_value, created_by, created_at) "
                """VALUES (1, 1, '"from the old schema"', 'test', :now)"""
            ),
            {"now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO labels (variable_id, name, position, target_type, version, updated_at) "
                "VALUES (1, 'prod', 0, 'version', 1, :now)"
            ),
            {"now": now},
        )
    engine.dispose()
    return token


@pytest.mark.parametrize("revision", ["0002", "0003"])
def test_a_backup_from_an_older_schema_restores_and_migrates(revision: str, tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    token = _database_at(old / "setpoint.db", revision)
    backup_file = tmp_path / f"at-{revision}.db"
    made = run_cli("backup", str(backup_file), "--data-dir", str(old))
    assert made.returncode == 0, made.stderr
    assert f"schema revision {revision}" in made.stdout

    new = tmp_path / "new"
    done = run_cli("restore", str(backup_file), "--data-dir", str(new))
    assert done.returncode == 0, done.stderr
    engine = sa.create_engine(f"sqlite:///{new / 'setpoint.db'}")
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    if revision != head_revision():
        assert f"migrated to {head_revision()}" in done.stdout
    server = ServerProcess(database_url="", data_dir=new)
    server.start()
    try:
        response = httpx.get(f"{server.url}/v1/variables/", headers={"Authorization": f"bearer {token}"})
        assert response.status_code == 200
        assert response.json()["variables"]["legacy"]["labels"]["prod"]["serialized_value"] == '"from the old schema"'
    finally:
        server.stop()


def test_restore_refuses_what_it_cannot_restore(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("hello " * 1000)
    refused = run_cli("restore", str(not_sqlite), "--data-dir", data)
    assert refused.returncode == 1 and "not a SQLite database" in refused.stderr

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    refused = run_cli("restore", str(foreign), "--data-dir", data)
    assert refused.returncode == 1 and "not a Setpoint database" in refused.stderr

    newer = tmp_path / "newer.db"
    _database_at(newer, "head")
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()
    refused = run_cli("restore", str(newer), "--data-dir", data)
    assert refused.returncode == 1 and "newer Setpoint (schema revision 9999)" in refused.stderr

    missing = run_cli("restore", str(tmp_path / "nope.db"), "--data-dir", data)
    assert missing.returncode == 1 and "no backup file" in missing.stderr
    assert not (tmp_path / "data" / "setpoint.db").exists()


@pytest.mark.postgres
def test_backup_and_restore_commands_point_postgresql_users_to_pg_dump(postgres_database: str, tmp_path: Path) -> None:
    for command in ("backup", "restore"):
        done = run_cli(command, str(tmp_path / "x"), "--database-url", postgres_database)
        assert done.returncode == 1
        assert "pg_dump --format=custom" in done.stderr and "pg_restore" in done.stderr
