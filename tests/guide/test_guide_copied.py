"""Every code example of the plugin guide is in ``tests/guide``, copied as written.

``GUIDE.txt`` is a copy of the user's contract (``/work/shared/seed/000_e2e5100e272ce121.txt``). Each of
its code blocks — split where one block shows several files (``# my_plugin/custom_adapter.py``) or two
alternatives (``# Avoid - eager import``) — must appear character for character in a file here; the
helpers the guide leaves undefined are added after a ``# --- supplied`` line or in files of their own.
"""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GUIDE = HERE / "GUIDE.txt"
SEED = Path("/work/shared/seed/000_e2e5100e272ce121.txt")
_SPLIT = re.compile(r"^(?=# [\w./]+\.(?:py|toml)$|# Avoid - eager import$)", re.M)


def guide_chunks() -> list[str]:
    out = []
    for _lang, code in re.findall(r"```(\w+)\n(.*?)```", GUIDE.read_text(), flags=re.S):
        out += [c.rstrip("\n") + "\n" for c in _SPLIT.split(code) if c.strip()]
    return out


def copies() -> dict[Path, str]:
    return {
        p: p.read_text()
        for p in sorted(HERE.rglob("*"))
        if p.suffix in (".py", ".toml") and p.is_file() and "__pycache__" not in p.parts
    }


def test_every_code_example_of_the_guide_is_here_verbatim() -> None:
    chunks = guide_chunks()
    assert len(chunks) == 18, len(chunks)  # 15 blocks; 3 of them hold two files / two alternatives
    files = copies()
    missing = [c.splitlines()[0] for c in chunks if not any(c in text for text in files.values())]
    assert not missing, f"examples of the guide not copied as written: {missing}"


def test_the_verbatim_copies_are_the_files_ruff_leaves_alone() -> None:
    """Copied as written means unformatted: exactly the files holding a guide chunk at their top are
    excluded from ruff (supplied helpers in other files are linted)."""
    chunks = guide_chunks()
    verbatim = sorted(
        str(p.relative_to(ROOT)) for p, text in copies().items() if any(text.startswith(c) for c in chunks)
    )
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    excluded = sorted(x for x in config["tool"]["ruff"]["extend-exclude"] if x.startswith("tests/guide/"))
    assert excluded == verbatim


def test_the_copy_is_the_users_guide() -> None:
    if not SEED.exists():
        import pytest

        pytest.skip(f"!!! the original guide {SEED} is not on this machine: the copy is not re-checked")
    assert GUIDE.read_text() == SEED.read_text()
