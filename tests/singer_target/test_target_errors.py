"""Bad input and bad config: one line naming line / stream / field, exit 1, no STATE for uncommitted rows."""

from __future__ import annotations

import json

import pytest

from tests.singer_target.support import SCHEMA, rec, schema_msg, state


def _one_error(run) -> str:
    assert run.rc == 1, run.stderr
    assert len(run.error_lines) == 1, run.stderr
    assert "Traceback" not in run.stderr
    return run.error_lines[0]


def test_malformed_line_names_the_line_and_emits_no_state(run_target):
    msgs = [schema_msg(), rec(1), state(1), '{"type": "RECORD", "stream": "users", "record": {"id": 2']
    run = run_target(msgs)
    err = _one_error(run)
    assert "line 4" in err and "not valid JSON" in err
    assert run.states == []  # record 1 was never written: its STATE must not appear
    assert run.rows("users") == []


@pytest.mark.parametrize(
    ("escape", "what"),
    [
        ("\\udc81", "lone low surrogate \\udc81 (no high surrogate before it)"),
        ("\\ud800", "lone high surrogate \\ud800 (no low surrogate after it)"),
    ],
)
def test_lone_surrogate_is_named_for_what_it_is_with_its_position(run_target, escape, what):
    line = '{"type": "RECORD", "stream": "users", "record": {"id": 2, "name": "\u00e9' + escape + '"}}'
    col = line.index(escape) + 1
    byte = len(line[: col - 1].encode())
    run = run_target([schema_msg(), rec(1), line], inprocess=escape == "\\ud800")
    err = _one_error(run)
    assert f"line 3: not valid JSON ({what} at line 1 column {col} (byte {byte}))" in err
    assert "invalid high surrogate" not in err
    assert run.states == []


def test_state_of_committed_records_survives_a_later_error(run_target):
    msgs = [schema_msg(), rec(1), state(1), rec(2), "garbage"]
    run = run_target(msgs, batch_size_rows=1)
    err = _one_error(run)
    assert "line 5" in err
    assert run.states == [{"bookmarks": {"users": {"replication_key_value": 1}}}]
    assert [r["id"] for r in run.rows("users")] == [1, 2]


def test_record_before_schema_names_the_stream(run_target):
    run = run_target([rec(1, stream="ghost"), schema_msg(), rec(1)])
    err = _one_error(run)
    assert "stream 'ghost'" in err and "line 1" in err and "before the stream's SCHEMA" in err


@pytest.mark.parametrize(
    ("bad", "field", "text"),
    [
        ({"id": "seven"}, "id", "is not of type integer"),
        ({"id": 3, "name": "x" * 11}, "name", "maxLength"),
        ({"id": 3, "amount": True}, "amount", "is not of type number"),
        ({"name": "no id"}, "id", "missing"),
    ],
)
def test_record_violating_its_schema_names_stream_line_and_field(run_target, bad, field, text):
    msgs = [schema_msg(), rec(1), state(1), {"type": "RECORD", "stream": "users", "record": bad}, state(2)]
    run = run_target(msgs, inprocess=field != "id" or "missing" in text)  # one case as a real process
    err = _one_error(run)
    assert "stream 'users'" in err and "line 4" in err and f"field {field!r}" in err and text in err
    assert run.states == []


def test_validation_off_still_rejects_a_value_its_column_cannot_hold(run_target):
    msgs = [schema_msg(), rec(1), {"type": "RECORD", "stream": "users", "record": {"id": "seven"}}, state(2)]
    ok = run_target([*msgs[:2], rec(2), state(2)], validate_records=False)
    assert ok.rc == 0, ok.stderr
    run = run_target(msgs, validate_records=False)
    err = _one_error(run)  # the batch-wise Arrow conversion names the field
    assert "stream 'users'" in err and "'id'" in err
    assert run.states == [] and run.rows("users") == []


def test_sample_validation_checks_the_first_records(run_target):
    bad = {"type": "RECORD", "stream": "users", "record": {"id": 1, "name": 5}}
    run = run_target([schema_msg(), bad], validate_records="sample", inprocess=True)
    assert "field 'name'" in _one_error(run)


def test_unknown_message_type_names_it(run_target):
    run = run_target([schema_msg(), rec(1), {"type": "RECORDZ", "stream": "users"}, state(1)])
    err = _one_error(run)
    assert "'RECORDZ'" in err and "line 3" in err and "stream 'users'" in err
    assert run.states == []


def test_message_without_type_or_required_key(run_target):
    err = _one_error(run_target([{"stream": "users"}], inprocess=True))
    assert "line 1" in err and "no 'type'" in err
    err = _one_error(run_target([{"type": "SCHEMA", "stream": "users"}], inprocess=True))
    assert "line 1" in err and "'schema'" in err and "stream 'users'" in err
    err = _one_error(run_target([schema_msg(), {"type": "STATE"}], inprocess=True))
    assert "line 2" in err and "'value'" in err


def test_lowercase_message_types_are_accepted(run_target):
    msgs = [{**schema_msg(), "type": "schema"}, {**rec(1), "type": "record"}, {**state(1), "type": "state"}]
    run = run_target(msgs, inprocess=True)
    assert run.rc == 0, run.stderr
    assert [r["id"] for r in run.rows("users")] == [1] and len(run.states) == 1


def test_key_property_missing_from_a_record(run_target):
    schema = json.loads(json.dumps(SCHEMA))
    schema.pop("required")
    bad = {"type": "RECORD", "stream": "users", "record": {"name": "a"}}
    run = run_target([schema_msg(schema=schema), bad], validate_records=False, inprocess=True)
    err = _one_error(run)
    assert "field 'id'" in err and "key property" in err


def test_unknown_adapter_option_is_one_line_naming_the_field(run_target):
    err = _one_error(run_target([schema_msg()], colour="red", inprocess=True))
    assert "adapter 'probe'" in err and "'colour'" in err


def test_unknown_adapter_lists_the_known_ones(run_target):
    err = _one_error(run_target([schema_msg()], adapter="nope", inprocess=True))
    assert "'nope'" in err and "probe" in err


def test_bad_target_settings(run_target):
    assert "load_method" in _one_error(run_target([schema_msg()], load_method="merge", inprocess=True))
    run = run_target([schema_msg()], validate_records="sometimes", inprocess=True)
    assert "validate_records" in _one_error(run)


def test_sigterm_aborts_without_state_for_uncommitted_rows(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.singer_target.support import ROOT, messages_text

    out = tmp_path / "out"
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"adapter": "probe", "path": str(out), "batch_size_rows": 2}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.singer_target.run_target", "--config", str(cfg)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(messages_text([schema_msg(), rec(1), rec(2), state(2), rec(3)]))
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline()) == {"bookmarks": {"users": {"replication_key_value": 2}}}
    time.sleep(0.2)  # record 3 is buffered, not written
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert stdout == ""
    errors = [line for line in stderr.splitlines() if line.startswith("target-dcapix: error:")]
    assert len(errors) == 1 and "signal 15" in errors[0]
    rows = [json.loads(line) for line in (out / "users.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2]
