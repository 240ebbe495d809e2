"""One contract for every storage implementation (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from setpoint._server.storage import AlreadyExistsError, StaleRevisionError, Storage
from setpoint._server.storage.records import LabelTarget, Project, VariableFields
from tests.server.conftest import BACKENDS

pytestmark = pytest.mark.parametrize("storage", BACKENDS, indirect=True)


def _project(storage: Storage) -> Project:
    with storage.write() as tx:
        return tx.create_project(f"p-{uuid.uuid4().hex[:10]}")


def test_schema_is_migrated_and_migrating_again_is_a_no_op(storage: Storage) -> None:
    assert storage.is_migrated()
    storage.migrate()
    assert storage.is_migrated()
    storage.ping()


def test_projects_are_unique_by_name(storage: Storage) -> None:
    project = _project(storage)
    with pytest.raises(AlreadyExistsError), storage.write() as tx:
        tx.create_project(project.name)
    with storage.write() as tx:
        again, created = tx.ensure_project(project.name)
    assert (again.id, created) == (project.id, False)
    with storage.read() as tx:
        assert tx.get_project(project.name) == project
        assert tx.get_project_by_id(project.id) == project
        assert project in tx.list_projects()


def test_variable_fields_round_trip_and_names_are_unique_per_project(storage: Storage) -> None:
    project, other = _project(storage), _project(storage)
    fields = VariableFields(
        description="d",
        json_schema={"type": "object", "properties": {"b": {}, "a": {}}},
        type_name="T",
        aliases=["old"],
        example='{"a": 1}',
        template_inputs_schema={"type": "object"},
        rollout={"labels": {"prod": 0.5}},
        overrides=[{"conditions": [{"kind": "key-is-present", "attribute": "x"}], "rollout": {"labels": {}}}],
    )
    with storage.write() as tx:
        created = tx.insert_variable(project.id, "v", fields)
        tx.insert_variable(other.id, "v", VariableFields())
    with pytest.raises(AlreadyExistsError), storage.write() as tx:
        tx.insert_variable(project.id, "v", VariableFields())
    with storage.read() as tx:
        stored = tx.get_variable(project.id, "v")
        assert stored is not None
        assert stored.fields == fields
        assert list(stored.fields.json_schema or {}) == ["type", "properties"]  # key order kept
        assert stored.revision == created.revision == 1
        assert [v.name for v in tx.list_variables(project.id)] == ["v"]


def test_versions_are_numbered_from_one_and_immutable(storage: Storage) -> None:
    project = _project(storage)
    with storage.write() as tx:
        variable = tx.insert_variable(project.id, "v", VariableFields())
        numbers = [tx.create_version(variable.id, f'"{i}"', "me").version for i in range(3)]
    assert numbers == [1, 2, 3]
    with storage.read() as tx:
        assert [v.serialized_value for v in tx.list_versions(variable.id)] == ['"0"', '"1"', '"2"']
        latest = tx.latest_version(variable.id)
        assert latest is not None and latest.version == 3
        version = tx.get_version(variable.id, 2)
        assert version is not None and version.created_by == "me"


def test_twenty_concurrent_writers_get_gapless_unique_versions(storage: Storage) -> None:
    project = _project(storage)
    with storage.write() as tx:
        variable = tx.insert_variable(project.id, "v", VariableFields())
    acknowledged: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(20)

    def writer(i: int) -> None:
        try:
            barrier.wait()
            with storage.write() as tx:
                locked = tx.lock_variable(project.id, "v")
                assert locked is not None
                number = tx.create_version(locked.id, str(i), f"writer-{i}").version
                tx.touch_variable(locked)
            acknowledged.append(number)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(acknowledged) == list(range(1, 21))
    with storage.read() as reader:
        assert [v.version for v in reader.list_versions(variable.id)] == list(range(1, 21))
        stored = reader.get_variable(project.id, "v")
        assert stored is not None and stored.revision == 21


def test_stale_revision_is_refused(storage: Storage) -> None:
    project = _project(storage)
    with storage.write() as tx:
        variable = tx.insert_variable(project.id, "v", VariableFields())
    with storage.write() as tx:
        updated = tx.update_variable(variable, VariableFields(description="new"))
    assert updated.revision == 2
    with pytest.raises(StaleRevisionError), storage.write() as tx:
        tx.update_variable(variable, VariableFields(description="lost update"))
    with pytest.raises(StaleRevisionError), storage.write() as tx:
        tx.touch_variable(variable)
    with storage.read() as tx:
        stored = tx.get_variable(project.id, "v")
        assert stored is not None and stored.fields.description == "new"


def test_rename_keeps_versions_labels_and_history(storage: Storage) -> None:
    project = _project(storage)
    with storage.write() as tx:
        variable = tx.insert_variable(project.id, "old", VariableFields())
        taken = tx.insert_variable(project.id, "taken", VariableFields())
        version = tx.create_version(variable.id, "1", "alice", "first cut")
        tx.set_label(variable.id, "prod", LabelTarget("version", version=1), "alice")
    assert version.description == "first cut"
    with storage.write() as tx:
        renamed = tx.rename_variable(variable, "new", VariableFields(aliases=["old"]))
    assert (renamed.id, renamed.name, renamed.revision) == (variable.id, "new", variable.revision + 1)
    with storage.read() as tx:
        assert tx.get_variable(project.id, "old") is None
        stored = tx.get_variable(project.id, "new")
        assert stored is not None and stored.fields.aliases == ["old"]
        assert tx.list_versions(stored.id) == [version]
        assert [lb.name for lb in tx.list_labels(stored.id)] == ["prod"]
        assert [m.moved_by for m in tx.label_history(stored.id)] == ["alice"]
    with pytest.raises(StaleRevisionError), storage.write() as tx:
        tx.rename_variable(variable, "newer", VariableFields())
    with pytest.raises(AlreadyExistsError), storage.write() as tx:
        tx.rename_variable(renamed, taken.name, VariableFields())


def test_labels_move_with_history(storage: Storage) -> None:
    project = _project(storage)
    with storage.write() as tx:
        variable = tx.insert_variable(project.id, "v", VariableFields())
        tx.create_version(variable.id, "1", "me")
        tx.set_label(variable.id, "prod", LabelTarget("version", version=1), "alice")
        tx.set_label(variable.id, "dev", LabelTarget("latest"), "alice")
        tx.set_label(variable.id, "prod", LabelTarget("version", version=1), "alice")  # unchanged: no history
        tx.set_label(variable.id, "prod", LabelTarget("label", target_label="dev"), "bob")
        tx.set_label(variable.id, "off", LabelTarget("code_default"), "bob")
        assert tx.delete_label(variable.id, "off", "bob")
        assert not tx.delete_label(variable.id, "missing", "bob")
    with storage.read() as tx:
        labels = {lb.name: lb.target for lb in tx.list_labels(variable.id)}
        assert labels == {"prod": LabelTarget("label", target_label="dev"), "dev": LabelTarget("latest")}
        assert [lb.name for lb in tx.list_labels(variable.id)] == ["prod", "dev"]
        history = tx.label_history(variable.id)
        assert [(m.label, m.target, m.moved_by) for m in history] == [
            ("prod", LabelTarget("version", version=1), "alice"),
            ("dev", LabelTarget("latest"), "alice"),
            ("prod", LabelTarget("label", target_label="dev"), "bob"),
            ("off", LabelTarget("code_default"), "bob"),
            ("off", None, "bob"),
        ]
        assert len(tx.label_history(variable.id, "prod")) == 2


def test_project_state_has_everything_the_snapshot_needs(storage: Storage) -> None:
    project = _project(storage)
    with storage.write() as tx:
        a = tx.insert_variable(project.id, "a", VariableFields())
        b = tx.insert_variable(project.id, "b", VariableFields())
        for value in ("1", "2", "3"):
            tx.create_version(a.id, value, "me")
        tx.set_label(a.id, "prod", LabelTarget("version", version=2), "me")
        tx.upsert_type(project.id, "T", {"type": "integer"}, None, None)
        tx.put_segment(project.id, "beta", {"name": "Beta"}, None)
    with storage.read() as tx:
        state = tx.load_project_state(project.id)
    assert [v.name for v in state.variables] == ["a", "b"]
    assert state.latest[a.id].version == 3 and b.id not in state.latest
    assert state.label_versions[(a.id, 2)].serialized_value == "2"
    assert [lb.name for lb in state.labels[a.id]] == ["prod"]
    assert [t.name for t in state.types] == ["T"]
    assert [s.key for s in state.segments] == ["beta"]


def test_delete_variable_removes_versions_and_labels(storage: Storage) -> None:
    project = _project(storage)
    with storage.write() as tx:
        variable = tx.insert_variable(project.id, "v", VariableFields())
        tx.create_version(variable.id, "1", "me")
        tx.set_label(variable.id, "prod", LabelTarget("latest"), "me")
        tx.delete_variable(variable)
    with storage.write() as tx:
        assert tx.get_variable(project.id, "v") is None
        again = tx.insert_variable(project.id, "v", VariableFields())
        assert tx.create_version(again.id, "1", "me").version == 1
        assert tx.list_labels(again.id) == []


def test_variable_types_upsert(storage: Storage) -> None:
    project = _project(storage)
    with storage.write() as tx:
        first, previous = tx.upsert_type(project.id, "T", {"type": "string"}, "d", "m.T")
        assert previous is None
        _, previous = tx.upsert_type(project.id, "T", {"type": "integer"}, None, None)
        assert previous == first
    with storage.read() as tx:
        stored = tx.get_type(project.id, "T")
        assert stored is not None and stored.json_schema == {"type": "integer"}
        assert stored.created_at == first.created_at
    with storage.write() as tx:
        assert tx.delete_type(project.id, "T")
        assert not tx.delete_type(project.id, "T")


def test_segments_are_json_documents_with_revisions(storage: Storage) -> None:
    project = _project(storage)
    with storage.write() as tx:
        created = tx.put_segment(project.id, "beta", {"name": "Beta", "rules": []}, None)
    with pytest.raises(AlreadyExistsError), storage.write() as tx:
        tx.put_segment(project.id, "beta", {}, None)
    with storage.write() as tx:
        updated = tx.put_segment(project.id, "beta", {"name": "Beta 2"}, created.revision)
    with pytest.raises(StaleRevisionError), storage.write() as tx:
        tx.put_segment(project.id, "beta", {"name": "lost"}, created.revision)
    with storage.read() as tx:
        stored = tx.get_segment(project.id, "beta")
        assert stored is not None and stored.data == {"name": "Beta 2"} and stored.revision == updated.revision == 2
    with storage.write() as tx:
        assert tx.delete_segment(project.id, "beta")
        assert tx.list_segments(project.id) == []


def test_variables_named_or_aliased_reads_only_those_exactly(storage: Storage) -> None:
    project, other = _project(storage), _project(storage)
    with storage.write() as tx:
        tx.insert_variable(project.id, "a", VariableFields(aliases=["old_a", "a_v1"]))
        tx.insert_variable(project.id, "b", VariableFields(aliases=["old_a_x"]))  # contains "old_a", not equal
        tx.insert_variable(project.id, "c", VariableFields())
        tx.insert_variable(other.id, "d", VariableFields(aliases=["old_a"]))  # another project
    with storage.read() as tx:
        assert tx.variables_named_or_aliased(project.id, ["old_a"]) == {"a": ["old_a", "a_v1"]}
        assert tx.variables_named_or_aliased(project.id, ["c", "old_a_x"]) == {"c": [], "b": ["old_a_x"]}
        assert tx.variables_named_or_aliased(project.id, ["old%", "a_v_"]) == {}  # LIKE wildcards are literal
        assert tx.variables_named_or_aliased(project.id, []) == {}


def test_segment_referrers_are_exact(storage: Storage) -> None:
    project, other = _project(storage), _project(storage)

    def uses(kind: str, key: str) -> VariableFields:
        condition = {"kind": kind, "segment": key}
        return VariableFields(overrides=[{"conditions": [condition], "rollout": {"labels": {}}}])

    def matching(*keys: str) -> dict[str, object]:
        return {"rules": [{"clauses": [{"attribute": "key", "op": "segmentMatch", "values": list(keys)}]}]}

    with storage.write() as tx:
        tx.insert_variable(project.id, "in_beta", uses("in-segment", "beta"))
        tx.insert_variable(project.id, "not_in_beta", uses("not-in-segment", "beta"))
        tx.insert_variable(project.id, "in_beta2", uses("in-segment", "beta2"))  # "beta" is a substring only
        other_fields = VariableFields(
            overrides=[
                {
                    "conditions": [{"kind": "value-equals", "attribute": "beta", "value": "beta"}],
                    "rollout": {"labels": {}},
                }
            ]
        )
        tx.insert_variable(project.id, "mentions_beta", other_fields)  # names "beta", but not as a segment
        tx.insert_variable(other.id, "elsewhere", uses("in-segment", "beta"))
        for key, data in [("beta", {}), ("beta2", {}), ("wider", matching("x", "beta")), ("w2", matching("beta2"))]:
            tx.put_segment(project.id, key, {"key": key, **data}, None)
    with storage.read() as reader:
        assert reader.segment_referrers(project.id, "beta") == (["in_beta", "not_in_beta"], ["wider"])
        assert reader.segment_referrers(project.id, "beta2") == (["in_beta2"], ["w2"])
        assert reader.segment_referrers(project.id, "wider") == ([], [])


def test_change_notifications_are_stored_on_sqlite_and_pruned(storage: Storage) -> None:
    taken = _project(storage)
    with storage.read() as tx:
        start = tx.last_notification_id()
    with storage.write() as tx:
        for i in range(5):
            tx.notify(f"payload-{i}")

    def failing_write() -> None:  # a failed write notifies nobody
        with storage.write() as wtx:
            wtx.notify("rolled back")
            wtx.create_project(taken.name)

    with pytest.raises(AlreadyExistsError):
        failing_write()
    with storage.read() as tx:
        stored = tx.notifications_since(start)
    if storage.dialect == "postgresql":  # NOTIFY: nothing is stored
        assert stored == []
        return
    assert [payload for _, payload in stored] == [f"payload-{i}" for i in range(5)]
    with storage.write() as tx:
        tx.prune_notifications(keep=2)
    with storage.read() as tx:
        assert [payload for _, payload in tx.notifications_since(start)] == ["payload-3", "payload-4"]
        assert tx.last_notification_id() == stored[-1][0]


def test_audit_history_keeps_who_when_before_after(storage: Storage) -> None:
    project = _project(storage)
    with storage.read() as tx:
        start = tx.last_audit_id()
    with storage.write() as tx:
        tx.add_audit(project.id, "alice", "create", "variable", "v", None, {"x": 1})
        tx.add_audit(project.id, "bob", "update", "variable", "v", {"x": 1}, {"x": 2})
        tx.add_audit(project.id, "bob", "create", "type", "T", None, {"t": 1})
    with storage.read() as tx:
        entries = tx.list_audit(project.id, entity_type="variable", entity_name="v")
        assert [(e.actor, e.action, e.before, e.after) for e in entries] == [
            ("bob", "update", {"x": 1}, {"x": 2}),
            ("alice", "create", None, {"x": 1}),
        ]
        assert abs(entries[0].at - datetime.now(UTC)) < timedelta(minutes=1)
        assert len(tx.list_audit(project.id)) == 3
        assert [e.entity_name for e in tx.audit_since(start)][-3:] == ["v", "v", "T"]


def test_instance_audit_entries_belong_to_no_project(storage: Storage) -> None:
    project = _project(storage)
    name = f"mallory-{uuid.uuid4().hex[:8]}"
    with storage.write() as tx:
        tx.add_audit(None, "address:10.0.0.7", "login_failed", "login", name, None, {"address": "10.0.0.7"})
        tx.add_audit(project.id, "alice", "create", "variable", name, None, {"x": 1})
    with storage.read() as tx:
        instance = tx.list_audit(None, entity_name=name)
        assert [(e.project_id, e.action, e.after) for e in instance] == [
            (None, "login_failed", {"address": "10.0.0.7"})
        ]
        assert [e.action for e in tx.list_audit(project.id, entity_name=name)] == ["create"]
        assert [e.project_id for e in tx.audit_since(instance[0].id - 1)][:2] == [None, project.id]


def test_api_keys_store_hashes_and_revoke(storage: Storage) -> None:
    project, other = _project(storage), _project(storage)
    key_hash = uuid.uuid4().hex * 2
    with storage.write() as tx:
        key = tx.insert_api_key(project.id, "ci", "sp_abc", key_hash, frozenset({"read"}), "tests")
    with storage.read() as tx:
        found = tx.find_api_key(key_hash)
        assert found == key and found.scopes == frozenset({"read"}) and found.revoked_at is None
        assert tx.list_api_keys(project.id) == [key]
    with storage.write() as tx:
        assert tx.revoke_api_key(other.id, key.id) is None  # another project's key: untouched
        revoked = tx.revoke_api_key(project.id, key.id)
    assert revoked is not None and revoked.revoked_at is not None
    with storage.read() as tx:
        found = tx.find_api_key(key_hash)
        assert found is not None and found.revoked_at is not None


def test_api_keys_record_their_last_use(storage: Storage) -> None:
    project = _project(storage)
    with storage.write() as tx:
        key = tx.insert_api_key(project.id, "ci", "sp_abc", uuid.uuid4().hex * 2, frozenset({"read"}), "tests")
        other = tx.insert_api_key(project.id, "other", "sp_def", uuid.uuid4().hex * 2, frozenset({"read"}), "tests")
    assert key.last_used_at is None
    used = datetime.now(UTC).replace(microsecond=0)
    with storage.write() as tx:
        tx.record_api_key_use(key.id, used)
    with storage.write() as tx:  # an older time (e.g. from a slower process) does not move it back
        tx.record_api_key_use(key.id, used - timedelta(minutes=5))
    with storage.read() as tx:
        found = tx.find_api_key(key.key_hash)
        assert found is not None and found.last_used_at == used
        assert [k.last_used_at for k in tx.list_api_keys(project.id)] == [used, None]
    later = used + timedelta(minutes=2)
    with storage.write() as tx:
        tx.record_api_key_use(key.id, later)
        revoked = tx.revoke_api_key(project.id, key.id)
    assert revoked is not None and revoked.last_used_at == later
    with storage.read() as tx:
        assert tx.find_api_key(other.key_hash) == other


def test_admin_users_and_sessions(storage: Storage) -> None:
    username = f"u-{uuid.uuid4().hex[:8]}"
    token_hash = uuid.uuid4().hex * 2
    with storage.write() as tx:
        before = tx.count_admin_users()
        user = tx.create_admin_user(username, "scrypt$hash")
        expires = datetime.now(UTC) + timedelta(hours=1)
        session = tx.create_session(token_hash, user.id, "csrf", expires)
        tx.set_admin_password(user.id, "scrypt$new")
    with pytest.raises(AlreadyExistsError), storage.write() as tx:
        tx.create_admin_user(username, "x")
    with storage.read() as tx:
        assert tx.count_admin_users() == before + 1
        stored = tx.get_admin_user(username)
        assert stored is not None and stored.password_hash == "scrypt$new"
        assert tx.get_admin_user_by_id(user.id) == stored
        found = tx.get_session(token_hash)
        assert found is not None and found.user_id == user.id and found.csrf_token == "csrf"
        assert abs(found.expires_at - session.expires_at) < timedelta(seconds=1)
    with storage.write() as tx:
        tx.delete_session(token_hash)
    with storage.read() as tx:
        assert tx.get_session(token_hash) is None


def test_a_failed_write_rolls_back(storage: Storage) -> None:
    project = _project(storage)

    def failing_write() -> None:
        with storage.write() as tx:
            tx.insert_variable(project.id, "v", VariableFields())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing_write()
    with storage.read() as tx:
        assert tx.get_variable(project.id, "v") is None


def test_migrations_create_exactly_the_declared_schema(storage: Storage) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from setpoint._server.storage.schema import metadata
    from setpoint._server.storage.sql import SqlStorage

    assert isinstance(storage, SqlStorage)
    with storage.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_the_external_flag_round_trips_and_defaults_to_internal(storage: Storage) -> None:
    project = _project(storage)
    with storage.write() as tx:
        public = tx.insert_variable(project.id, "public", VariableFields(external=True))
        tx.insert_variable(project.id, "internal", VariableFields())
    with storage.read() as tx:
        assert [(v.name, v.fields.external) for v in tx.list_variables(project.id)] == [
            ("internal", False),
            ("public", True),
        ]
    with storage.write() as tx:
        tx.update_variable(public, VariableFields(external=False))
    with storage.read() as tx:
        state = tx.load_project_state(project.id)
    assert [v.fields.external for v in state.variables] == [False, False]


def test_variables_mentioning_finds_values_containing_text_literally(storage: Storage) -> None:
    project, other = _project(storage), _project(storage)
    with storage.write() as tx:
        a = tx.insert_variable(project.id, "a", VariableFields())
        b = tx.insert_variable(project.id, "b", VariableFields())
        c = tx.insert_variable(project.id, "c", VariableFields())
        o = tx.insert_variable(other.id, "a", VariableFields())
        tx.create_version(a.id, '"uses @{frag_1}@"', "me")
        tx.create_version(b.id, '"old @{frag_1}@"', "me")
        tx.create_version(b.id, '"new"', "me")
        tx.create_version(c.id, '"fragX1 and frag%1"', "me")  # '_' and '%' must not act as wildcards
        tx.create_version(o.id, '"@{frag_1}@"', "me")
    with storage.read() as tx:
        assert tx.variables_mentioning(project.id, "frag_1") == ["a", "b"]
        assert tx.variables_mentioning(project.id, "frag%1") == ["c"]
        assert tx.variables_mentioning(project.id, "nothing") == []
