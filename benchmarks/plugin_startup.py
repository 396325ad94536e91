"""Start-up cost of plugins: ``enable_plugins()`` and ``dcapix --version`` with 20 installed plugins.

Each plugin is a real distribution (``.dist-info`` with an entry point in ``dc_api_x.plugins`` and a
``Requires-Dist: dc-api-x>=0.2.0``) written the plugin guide's recommended way: the heavy import is
inside ``register_adapters`` (``from .heavy_adapter import HeavyAdapter``), and each heavy module
imports a real client library (ten different ones, two plugins each). They are generated into a
temporary directory put on ``PYTHONPATH``, so nothing is installed into the venv.

Every measurement is a fresh interpreter; the code trees compared (``--src LABEL=DIR``, e.g. the
previous commit's ``src`` from ``git archive``) run interleaved in the same invocation, and the
median of ``--runs`` is reported::

    git archive <old-commit> src | tar -x -C /tmp/old
    python benchmarks/plugin_startup.py --src before=/tmp/old/src --src after=src --runs 9

Reported per tree: ``enable_plugins()`` (ms, in-process), the heavy libraries it imported, the first
``get_adapter()`` of a plugin's adapter (ms), and the wall time of ``dcapix --version`` (ms).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

#: The real libraries the plugins' heavy modules import (each by two plugins).
HEAVY = (
    "sqlalchemy",
    "pyarrow",
    "httpx",
    "singer_sdk",
    "psycopg",
    "adbc_driver_manager",
    "fsspec",
    "rich",
    "croniter",
    "logfire",
)
N_PLUGINS = 20

PROBE = textwrap.dedent("""
    import json, sys, time
    HEAVY = {heavy!r}
    t0 = time.perf_counter()
    import dc_api_x
    t1 = time.perf_counter()
    ps = dc_api_x.enable_plugins()
    t2 = time.perf_counter()
    heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set(HEAVY))
    loaded = sum(1 for i in ps.plugins.values() if i.status == "loaded" and not i.builtin)
    t3 = time.perf_counter()
    ps.adapters.get("bench_00")
    t4 = time.perf_counter()
    print(json.dumps({{"import_ms": (t1 - t0) * 1e3, "enable_ms": (t2 - t1) * 1e3,
                      "first_get_ms": (t4 - t3) * 1e3, "heavy_imported": heavy, "plugins": loaded}}))
""")


def make_plugins(root: Path) -> None:
    for i in range(N_PLUGINS):
        pkg = f"bench_plugin_{i:02d}"
        lib = HEAVY[i % len(HEAVY)]
        (root / pkg).mkdir(parents=True)
        (root / pkg / "__init__.py").write_text(
            textwrap.dedent(f'''
            """Benchmark plugin {i}: the guide's lazy pattern."""


            def register_adapters(registry):
                from .heavy_adapter import HeavyAdapter

                registry["bench_{i:02d}"] = HeavyAdapter
            ''')
        )
        (root / pkg / "heavy_adapter.py").write_text(
            textwrap.dedent(f"""
            import {lib}  # noqa: F401  - the plugin's client library

            from dc_api_x.ext.adapters import ProtocolAdapter


            class HeavyAdapter(ProtocolAdapter):
                name = "bench_{i:02d}"
            """)
        )
        info = root / f"dcapix_bench_plugin_{i:02d}-1.0.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: dcapix-bench-plugin-{i:02d}\nVersion: 1.0.0\n"
            "Requires-Dist: dc-api-x>=0.2.0\n"
        )
        (info / "entry_points.txt").write_text(f"[dc_api_x.plugins]\nbench_{i:02d} = {pkg}\n")
        (info / "RECORD").write_text("")


def run_once(src: Path, site: Path, what: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DC_API_X_")}
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(site)])
    if what == "enable":
        res = subprocess.run(
            [sys.executable, "-c", PROBE.format(heavy=HEAVY)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        if res.returncode != 0:
            raise SystemExit(f"probe failed for {src}: {res.stderr[-2000:]}")
        return dict(json.loads(res.stdout.strip().splitlines()[-1]))
    import time

    dcapix = Path(sys.executable).parent / "dcapix"
    t0 = time.perf_counter()
    res = subprocess.run([str(dcapix), "--version"], capture_output=True, text=True, env=env, timeout=300)
    wall = (time.perf_counter() - t0) * 1e3
    if res.returncode != 0:
        raise SystemExit(f"dcapix --version failed for {src}: {res.stderr[-2000:]}")
    return {"version_ms": wall, "output": res.stdout.strip()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", action="append", required=True, metavar="LABEL=DIR", help="a code tree's src/")
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument(
        "--no-pydantic-plugins",
        action="store_true",
        help="set PYDANTIC_DISABLE_PLUGINS=__all__ in the measured processes (logfire, when installed, "
        "registers a pydantic plugin that imports logfire at the first pydantic model)",
    )
    args = ap.parse_args()
    if args.no_pydantic_plugins:
        os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    trees = {}
    for item in args.src:
        label, _, path = item.partition("=")
        trees[label] = Path(path).resolve()
    results: dict[str, dict[str, list[float]]] = {label: {} for label in trees}
    extra: dict[str, dict[str, object]] = {label: {} for label in trees}
    with tempfile.TemporaryDirectory(prefix="dcapix-bench-plugins-") as tmp:
        site = Path(tmp)
        make_plugins(site)
        for src in trees.values():  # warm the OS caches once per tree
            run_once(src, site, "enable")
            run_once(src, site, "version")
        for _ in range(args.runs):
            for label, src in trees.items():  # interleaved: drift hits every tree alike
                probe = run_once(src, site, "enable")
                for key in ("import_ms", "enable_ms", "first_get_ms"):
                    results[label].setdefault(key, []).append(float(probe[key]))  # type: ignore[arg-type]
                extra[label].update(heavy_imported=probe["heavy_imported"], plugins=probe["plugins"])
                version = run_once(src, site, "version")
                results[label].setdefault("version_ms", []).append(float(version["version_ms"]))  # type: ignore[arg-type]
                extra[label]["version_output"] = version["output"]
    out = {
        label: {
            **{k: round(statistics.median(v), 1) for k, v in results[label].items()},
            **{f"{k}_min": round(min(v), 1) for k, v in results[label].items()},
            **extra[label],
        }
        for label in trees
    }
    meta = {"plugins": N_PLUGINS, "runs": args.runs, "python": sys.version.split()[0]}
    meta["pydantic_plugins"] = "off" if args.no_pydantic_plugins else "on"
    print(json.dumps({**meta, "results": out}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
