"""The OpenAPI document describes the API as it behaves (issue 9, item 7): a bounded schemathesis run (every
check, a fixed seed, a small example budget) against a real ``setpoint serve`` on SQLite with an API key
finds nothing: no 5xx, no undocumented status, no response breaking its schema, no schema-valid request
refused, no invalid one accepted, ``Allow`` right on 405.

Run through the ``schemathesis`` CLI (its pytest plugin's lazy loader does not work with pytest 9), with one
worker (several threads hit a CPython 3.11 AST recursion error inside its generator). The
budget (:data:`EXAMPLES` per operation) keeps it under two minutes on a loaded 2-core machine; set
``SETPOINT_FUZZ_EXAMPLES`` for a deeper run by hand. A failure prints schemathesis's report, with a
``curl`` line reproducing each problem.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from setpoint._server.api import _openapi
from setpoint._server.api.deps import IF_MATCH_PATTERN
from tests.server.support import ServerProcess

EXAMPLES = int(os.environ.get("SETPOINT_FUZZ_EXAMPLES") or 3)
SEED = 20261130
REVOKE = r"^/v1/api-keys/\{key_id\}/$"
"""Revoking keys is fuzzed last, on its own: it may revoke the very key the run uses."""

CONFIG = """
[generation]
# Every string the server stores is refused with a NUL (PostgreSQL cannot store it) or a lone surrogate:
# the 422 description says so. The fuzzer's positive data must respect that.
allow-x00 = false
codec = "utf-8"

[checks.negative_data_rejection]
# A body over the server's size limit is refused (413) before anything reads it: a rejection too.
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]

[[operations]]
# Usage windows: `to` must come after `from` (a rule between two parameters, 422).
include-path = "/v1/usage/"
include-method = "GET"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "422"]

[[operations]]
# Writes check what JSON Schema cannot state: labels, versions and segments named must exist, rollout
# weights add up to at most 1, a value matches its variable's schema, a type is a valid JSON Schema, a
# segment clause's values fit its operator, a label in use cannot be deleted. A schema-valid body that
# breaks one of these is answered 422 (400 on the segments APIs, as LaunchDarkly), never stored; a stale
# `revision` in a bulk write's body is 412.
include-method-regex = "^(POST|PUT|PATCH|DELETE)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "412", "422"]
"""


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own on SQLite (the fuzzer creates and deletes freely)."""
    proc = ServerProcess(database_url="", data_dir=Path(tmp_path_factory.mktemp("fuzz")))
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _schemathesis(server: ServerProcess, key: str, config: Path, *selection: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in the config's directory (it keeps a ``.schemathesis`` cache in its working directory)."""
    command = shutil.which("schemathesis") or shutil.which("st")
    assert command, "the schemathesis CLI is not installed (pip install schemathesis)"
    return subprocess.run(
        [
            command,
            "--config-file",
            str(config),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "all",
            "--seed",
            str(SEED),
            "--max-examples",
            str(EXAMPLES),
            "--header",
            f"Authorization: bearer {key}",
            "--continue-on-failure",
            "--no-color",
            *selection,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=config.parent,
    )


def _report(run: subprocess.CompletedProcess[str]) -> str:
    """Schemathesis's output with its (possibly megabyte-long) lines cut, so every failure shows."""
    return "\n".join(line[:400] for line in (run.stdout + run.stderr).splitlines())


def test_the_api_behaves_as_its_openapi_document_says(fuzz_server: ServerProcess, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    key = fuzz_server.create_key("fuzz", "read,write")
    everything_else = _schemathesis(fuzz_server, key, config, "--exclude-path-regex", REVOKE)
    assert everything_else.returncode == 0, _report(everything_else)
    revoking = _schemathesis(fuzz_server, key, config, "--include-path-regex", REVOKE)
    assert revoking.returncode == 0, _report(revoking)
    assert "Tested: 1" in revoking.stdout, revoking.stdout[-3000:]


def test_every_api_operation_documents_its_errors_in_its_family_model(fuzz_server: ServerProcess) -> None:
    document = httpx.get(f"{fuzz_server.url}/openapi.json", timeout=30).json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert schemas["Error"]["required"] == ["detail"]
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            family = _openapi._family(path)
            if family is None:
                continue
            checked += 1
            responses = operation["responses"]
            assert "400" in responses, (method, path)
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == f"#/components/schemas/{family}", (method, path, status)
            if "{" in path:
                assert "404" in responses, (method, path)
            if method in ("post", "put", "patch", "delete"):
                assert {"409", "412"} <= set(responses), (method, path)
            for parameter in operation.get("parameters", []):
                assert "anyOf" not in parameter["schema"], (method, path, parameter["name"])
                if parameter["name"].lower() == "if-match":
                    assert parameter["schema"]["pattern"] == IF_MATCH_PATTERN
                if parameter["in"] == "path" and parameter["name"] in ("name", "label", "key"):
                    assert "pattern" in parameter["schema"], (method, path, parameter["name"])
    assert checked > 40
    assert document["paths"]["/v1/variables/{name}/"]["get"]["responses"]["401"]["headers"]["WWW-Authenticate"]


def test_a_405_lists_the_documented_methods(fuzz_server: ServerProcess) -> None:
    for path, allowed in [
        ("/v1/variables/", "GET, POST"),
        ("/v1/variables/bulk/", "POST"),
        ("/v1/variables/some_name/", "DELETE, GET, PATCH, PUT"),
    ]:
        response = httpx.request("OPTIONS", f"{fuzz_server.url}{path}", timeout=30)
        assert response.status_code == 405
        assert response.headers["allow"] == allowed, path
