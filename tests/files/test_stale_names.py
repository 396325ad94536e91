"""The staging-directory names ``remove_stale`` recognises, matched without a regular expression
compiled per stream (issue 15): the same names as the pattern it replaced."""

from __future__ import annotations

import re

import pytest

from dc_api_x.adapters.files.stale import _staged


@pytest.mark.parametrize("safe", ["orders", "a.b", "x-y", "we(ird", "tmp", "s p"])
def test_staged_names_match_the_former_pattern(safe: str) -> None:
    pattern = re.compile(rf"^\.{re.escape(safe)}\.(?P<kind>tmp|old)-(?P<run>[^/]+)$")
    names = [f".{safe}.{kind}-{run}" for kind in ("tmp", "old", "bad", "tm", "tmpx") for run in
             ("20261203T000000-abcdef12", "r", "", "a/b", "r\n", "x-y", "-")]  # fmt: skip
    names += [
        f"{safe}.tmp-r",
        f".{safe}.",
        f".{safe}.tmp",
        f".{safe}.old-",
        ".other.tmp-r",
        f"..{safe}.tmp-r",
    ]
    for name in names:
        m = pattern.match(name)
        assert _staged(name, f".{safe}.") == ((m["kind"], m["run"]) if m else ("", "")), name
