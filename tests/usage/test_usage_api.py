"""``/v1/usage/`` and ``/v1/code-refs/`` on a real server: validation (a bad batch is a 4xx and stores nothing),
scopes, project isolation, the range rules and the stale list."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.remote.support import Project

pytestmark = pytest.mark.slow


def _client(project: Project, key: str) -> httpx.Client:
    return httpx.Client(base_url=project.server.url, headers={"Authorization": f"bearer {key}"}, timeout=10)


def _batch(*counts: dict[str, Any], instance: str = "proc-1") -> dict[str, Any]:
    return {"sdk": "setpoint-python/0.1.0", "instance_id": instance, "counts": list(counts)}


def _count(variable: str = "flag", label: str | None = "a", version: int | None = 1, n: int = 1) -> dict[str, Any]:
    return {"variable": variable, "label": label, "version": version, "reason": "resolved", "count": n}


def _total(project: Project, variable: str = "flag") -> int:
    with _client(project, project.read_key) as api:
        response = api.get("/v1/usage/", params={"variable": variable})
        response.raise_for_status()
        total: int = response.json()["total"]
        return total


def test_a_read_key_reports_and_reads_usage(project: Project) -> None:
    with _client(project, project.read_key) as api:
        response = api.post("/v1/usage/", json=_batch(_count(n=5), _count(label="b", version=2, n=3)))
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": 8}
        data = api.get("/v1/usage/", params={"variable": "flag"}).json()
    assert data["total"] == 8
    assert data["split"] == {"a": 5 / 8, "b": 3 / 8}
    assert data["processes"] == 1
    assert data["step"] == "day"


@pytest.mark.parametrize(
    ("counts", "fragment"),
    [
        ([_count(variable="not a name")], "counts.1.variable"),
        ([_count(n=0)], "counts.1.count"),
        ([_count(n=10**13)], "counts.1.count"),
        ([_count(version=2**31)], "counts.1.version"),
        ([{**_count(), "reason": "bogus"}], "counts.1.reason"),
        ([{**_count(), "extra": 1}], "counts.1.extra"),
        ([_count(label="")], "counts.1.label"),
    ],
)
def test_a_bad_batch_is_refused_whole(project: Project, counts: list[dict[str, Any]], fragment: str) -> None:
    with _client(project, project.read_key) as api:
        response = api.post("/v1/usage/", json=_batch(_count(n=100), *counts))
    assert response.status_code == 422
    assert fragment in response.text
    assert _total(project) == 0


def test_batch_size_and_identity_caps(project: Project) -> None:
    with _client(project, project.read_key) as api:
        too_many = api.post("/v1/usage/", json=_batch(*[_count(variable=f"v{i}") for i in range(10_001)]))
        assert too_many.status_code in (413, 422)
        bad_instance = api.post("/v1/usage/", json=_batch(_count(), instance="has spaces"))
        assert bad_instance.status_code == 422
        assert "instance_id" in bad_instance.text
    assert _total(project) == 0


def test_usage_is_per_project(project: Project, server: Any) -> None:
    other = server.project()
    with _client(project, project.read_key) as api:
        api.post("/v1/usage/", json=_batch(_count(n=9))).raise_for_status()
    assert _total(project) == 9
    assert _total(other) == 0


def test_ranges_are_checked(project: Project) -> None:
    with _client(project, project.read_key) as api:
        backwards = api.get(
            "/v1/usage/",
            params={"variable": "flag", "from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
        )
        assert backwards.status_code == 422 and "after" in backwards.json()["detail"]
        naive = api.get("/v1/usage/", params={"variable": "flag", "from": "2026-11-01T00:00:00"})
        assert naive.status_code == 422 and "time zone" in naive.json()["detail"]
        too_long = api.get(
            "/v1/usage/", params={"variable": "flag", "from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
        )
        assert too_long.status_code == 422
        hourly = api.get(
            "/v1/usage/", params={"variable": "flag", "from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}
        )
        assert hourly.status_code == 200 and hourly.json()["step"] == "hour" and len(hourly.json()["buckets"]) == 24


def test_code_refs_need_a_write_key_and_replace_per_repository(project: Project) -> None:
    ref: dict[str, Any] = {"variable": "flag", "path": "app/settings.py", "line": 3, "call": "setpoint.var"}
    body: dict[str, Any] = {
        "repository": "api",
        "commit": "abc123",
        "branch": "main",
        "refs": [ref],
    }
    with _client(project, project.read_key) as api:
        assert api.post("/v1/code-refs/", json=body).status_code == 403
    with project.api() as api:
        assert api.post("/v1/code-refs/", json=body).json() == {"repository": "api", "stored": 1}
        refs = api.get("/v1/code-refs/", params={"variable": "flag"}).json()
        assert [(r["repository"], r["path"], r["line"], r["commit"]) for r in refs] == [
            ("api", "app/settings.py", 3, "abc123")
        ]
        bad = api.post("/v1/code-refs/", json={**body, "refs": [{**ref, "line": 0}]})
        assert bad.status_code == 422
        assert len(api.get("/v1/code-refs/").json()) == 1


def test_stale_lists_variables_never_evaluated(project: Project) -> None:
    project.put_variable("fresh", "x", create=True)
    with project.api() as api:
        stale = api.get("/v1/usage/stale/").json()
    # Created moments ago: not stale yet, whatever it serves.
    assert stale == []
