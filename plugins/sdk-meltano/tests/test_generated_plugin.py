"""End to end: ``dcapix new-plugin``, ``pip install`` into a fresh venv with this checkout's core, then
the generated tests, singer-sdk's standard tap/target tests against the console scripts, ``dcapix
plugins`` and ``dcapix run`` — all on the generated code as rendered, untouched."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
import sdkm_venvs
from sdkm_support import PLAIN_NAME, ROOT, SINGER_NAME, Generated

TAP, TARGET = f"tap-{SINGER_NAME}", f"target-{SINGER_NAME}"
SINGER_ADAPTER, PLAIN_ADAPTER = SINGER_NAME.replace("-", "_"), PLAIN_NAME


def summary(output: str) -> dict[str, int]:
    """``{"passed": n, "skipped": m, ...}`` from pytest's last line."""
    last = output.strip().splitlines()[-1]
    return {
        word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)", last)
    }


def run_generated_tests(generated: Generated, project: Path) -> tuple[dict[str, int], str]:
    res = generated.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", cwd=project)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    return summary(res.stdout), out


def test_the_generated_tests_pass_with_tap_and_target(generated: Generated) -> None:
    counts, out = run_generated_tests(generated, generated.singer)
    # dc-api-x's standard adapter suite (10) + the adapter's own tests (8) + tap | target, meltano.yml
    # (2) + singer-sdk's standard tap and target suites (dozens): nothing fails, nothing is skipped
    assert counts.get("failed", 0) == 0 and counts.get("error", 0) == 0
    assert counts.get("skipped", 0) == 0, out[-3000:]
    assert counts["passed"] >= 20 + 30, counts
    assert "test_target_" in out or counts["passed"] > 49


def test_the_generated_tests_pass_without_tap_and_target(generated: Generated) -> None:
    counts, out = run_generated_tests(generated, generated.plain)
    assert counts.get("skipped", 0) == 0, out[-3000:]
    assert counts["passed"] == 18, counts


def _shared_harness() -> Path | None:
    """``acceptance/sdk_standard_tests.py`` of the shared harness beside the checkout (as
    ``.ci/acceptance.sh`` finds it)."""
    candidates = [os.environ.get("SHARED_DIR") or "", str(ROOT.parent / "shared"), str(ROOT / "shared")]
    for cand in candidates:
        if cand and (Path(cand) / "acceptance" / "sdk_standard_tests.py").is_file():
            return Path(cand) / "acceptance" / "sdk_standard_tests.py"
    return None


def test_singer_sdk_standard_tests_pass_against_the_console_scripts(
    generated: Generated, tmp_path: Path
) -> None:
    harness = _shared_harness()
    if harness is None:
        msg = (
            "!!! the shared acceptance harness (sdk_standard_tests.py) is not beside the checkout -- SKIPPED"
        )
        warnings.warn(msg, stacklevel=1)
        pytest.skip(msg)
    work = tmp_path / "harness"
    work.mkdir()
    shutil.copy2(harness, work / "sdk_standard_tests.py")
    (work / "tap.json").write_text(json.dumps({"path": str(generated.singer / "tests" / "data")}))
    (work / "target.json").write_text(json.dumps({"path": str(tmp_path / "out")}))
    res = generated.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "sdk_standard_tests.py",
        cwd=work,
        SDK_TAP_SCRIPT=TAP,
        SDK_TAP_CONFIG=str(work / "tap.json"),
        SDK_TARGET_SCRIPT=TARGET,
        SDK_TARGET_CONFIG=str(work / "target.json"),
        SDK_INCREMENTAL_STRICT="1",
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]
    counts = summary(res.stdout)
    assert counts.get("failed", 0) == 0 and counts.get("skipped", 0) == 0, res.stdout[-3000:]
    assert counts["passed"] >= 40, counts


def test_dcapix_plugins_lists_the_generated_plugins_and_the_sdk(generated: Generated) -> None:
    res = generated.run("dcapix", "plugins", "--json", cwd=generated.root)
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows[SINGER_ADAPTER]["distribution"] == f"dc-api-x-{SINGER_NAME}"
    assert rows[SINGER_ADAPTER]["registers"] == {"adapters": [SINGER_ADAPTER]}
    assert rows[PLAIN_ADAPTER]["registers"] == {"adapters": [PLAIN_ADAPTER]}
    sdk = rows["sdk_meltano"]
    assert (sdk["distribution"], sdk["status"]) == ("dc-api-x-sdk-meltano", "loaded")
    assert sdk["registers"] == {"commands": ["new-plugin"]}
    text = generated.run("dcapix", "plugins", cwd=generated.root).stdout
    assert "registers commands: new-plugin" in text


def test_new_plugin_runs_from_the_installed_distribution(generated: Generated, tmp_path: Path) -> None:
    """The template ships in the wheel: rendering from the installed copy gives the same files."""
    again = ("dcapix", "new-plugin", SINGER_NAME, str(tmp_path / "again"), "-d", "author_name=Test Author")
    res = generated.run(*again, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    files = sorted(
        str(p.relative_to(tmp_path / "again")) for p in (tmp_path / "again").rglob("*") if p.is_file()
    )
    expected = sorted(
        str(p.relative_to(generated.singer))
        for p in generated.singer.rglob("*")
        if p.is_file() and not {"build", "__pycache__"} & set(p.parts) and ".egg-info" not in str(p)
    )
    assert files == expected
    for name in files:
        if name != ".copier-answers.yml":  # it names the template's path
            assert (tmp_path / "again" / name).read_bytes() == (generated.singer / name).read_bytes(), name


def test_dcapix_run_moves_the_records_through_the_generated_adapter(
    generated: Generated, tmp_path: Path
) -> None:
    source = generated.singer / "tests" / "data"
    (tmp_path / "dcapix.yml").write_text(
        "pipelines:\n"
        "  copy:\n"
        f"    source: {{adapter: {SINGER_ADAPTER}, path: {json.dumps(str(source))}}}\n"
        f"    destination: {{adapter: {PLAIN_ADAPTER}, path: out}}\n"
    )
    first = generated.run("dcapix", "run", "copy", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    lines = (tmp_path / "out" / "customers.jsonl").read_text().splitlines()
    copied = sorted((json.loads(line) for line in lines), key=lambda r: r["id"])
    original = [json.loads(line) for line in (source / "customers.jsonl").read_text().splitlines()]
    assert copied == original  # every value as it was (exact decimals as their text, every digit)
    second = generated.run("dcapix", "run", "copy", cwd=tmp_path)  # incremental: nothing new
    assert second.returncode == 0, second.stderr[-3000:]
    assert len((tmp_path / "out" / "customers.jsonl").read_text().splitlines()) == 12


@pytest.mark.slow
def test_a_fresh_venv_from_pypi_without_any_cache(tmp_path: Path) -> None:
    """The uncached variant: a new venv with pip, this checkout's core and this distribution, the
    generated plugin and every third-party dependency from PyPI, as a plugin author gets them."""
    from sdkm_support import copy_core, copy_plugin, generate, require_test_kit

    require_test_kit()
    singer, _ = generate(tmp_path)
    bin_dir = sdkm_venvs.pypi_venv(
        tmp_path / "venv",
        [str(copy_core(tmp_path / "src-core")), str(copy_plugin(tmp_path / "src-sdk")), f"{singer}[test]"],
    )
    fresh = Generated(root=tmp_path, bin=bin_dir, singer=singer, plain=tmp_path / "plain-plugin")
    counts, out = run_generated_tests(fresh, singer)
    assert counts.get("skipped", 0) == 0 and counts["passed"] >= 50, out[-3000:]


@pytest.mark.slow
def test_meltano_installs_and_runs_the_generated_tap_and_target(tmp_path: Path) -> None:
    """Real Meltano 4 on the generated project: its meltano.yml as rendered, except ``pip_url``, which
    also names this checkout's core and this distribution (they are not on PyPI)."""
    import yaml
    from sdkm_support import copy_core, copy_plugin, generate, require_test_kit

    require_test_kit()
    meltano = str(sdkm_venvs.layer(["meltano>=4,<5"]) / "bin" / "meltano")
    project, _ = generate(tmp_path)
    core, sdk = copy_core(tmp_path / "src-core"), copy_plugin(tmp_path / "src-sdk")
    spec = yaml.safe_load((project / "meltano.yml").read_text())
    for plugin in spec["plugins"]["extractors"] + spec["plugins"]["loaders"]:
        assert plugin["pip_url"] == "-e ."
        plugin["pip_url"] = f"{core}[singer] {sdk} -e {project}"
    (project / "meltano.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DC_API_X_", "SDK_", "PYTEST_", "MELTANO_"))
    }
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"

    def meltano_cmd(*args: str) -> str:
        res = subprocess.run(
            [meltano, *args], cwd=project, env=env, capture_output=True, text=True, timeout=1800
        )
        assert res.returncode == 0, f"meltano {' '.join(args)}: {(res.stdout + res.stderr)[-4000:]}"
        return res.stdout

    meltano_cmd("install")
    meltano_cmd("run", TAP, TARGET)
    source = [json.loads(line) for line in (project / "tests/data/customers.jsonl").read_text().splitlines()]
    output = project / "output" / "customers.jsonl"
    assert sorted((json.loads(x) for x in output.read_text().splitlines()), key=lambda r: r["id"]) == source
    state = json.loads(meltano_cmd("state", "get", f"dev:{TAP}-to-{TARGET}"))
    assert (
        state["singer_state"]["bookmarks"]["customers"]["replication_key_value"] == source[-1]["updated_at"]
    )
    new = {**source[0], "id": 13, "updated_at": "2024-02-01T00:00:00+00:00"}
    with (project / "tests/data/customers.jsonl").open("a") as fh:
        fh.write(json.dumps(new) + "\n")
    meltano_cmd("run", TAP, TARGET)  # incremental: only the new record
    assert [json.loads(x) for x in output.read_text().splitlines()][12:] == [new]
