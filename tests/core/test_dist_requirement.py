"""``_dist_requirement``: a distribution's requirement on dc-api-x read without importing
``packaging.requirements`` for the plain forms, with the result ``packaging`` gives for every form."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dc_api_x.plugins import _canonical, _dist_requirement

FORMS = [
    "dc-api-x>=0.2.0",
    "dc-api-x >=0.2, <1",
    "DC_API_X (>=0.1,<2)",
    "dc.api.x[files]>=0.2",
    "dc-api-x",
    "dc-api-x[all]",
    "  dc-api-x  >=0.2 ",
    "dc-api-x[a,b] (>0.1)",
    "dc-api-x [x] >=1",
    "dc-api-x!=0.3,>=0.1",
    "dc-api-x~=0.2.0",
    "dc-api-x==0.2.*",
    "dc-api-x===foo",
    "dc-api-x>=0.2; python_version > '3'",
    "dc-api-x>=0.2; extra == 'x'",
    "dc-api-x>=0.2 ; ",
    "dc-api-x @ https://example.com/dc_api_x-0.2-py3-none-any.whl",
    "dc-api-x>=0.2,",
    "dc-api-x>=",
    "dc-api-x<1>0",
    "dc-api-x (>=0.2",
    "dc-api-x[x",
    "dc-api-x-",
    "dc-api-x-ldap>=1",
    "dc-api-xx>=1",
    "pyarrow>=12; extra == 'dc-api-x'",
]


class _Dist:
    def __init__(self, requires: list[str]) -> None:
        self.requires = requires


def _with_packaging(requires: list[str]) -> str | None:
    """What the requirement was before: every string parsed by ``packaging``."""
    from packaging.requirements import Requirement

    for req in requires:
        try:
            r = Requirement(req)
            if _canonical(r.name) != "dc-api-x":
                continue
            if r.marker is not None and not r.marker.evaluate({"extra": ""}):
                continue
        except Exception:
            continue
        return str(r.specifier) or None
    return None


@pytest.mark.parametrize("form", FORMS)
def test_same_specifier_as_packaging(form: str) -> None:
    for requires in ([form], [form, "dc-api-x>=9"], ["other>=1", form]):
        assert _dist_requirement(_Dist(requires)) == _with_packaging(requires)  # type: ignore[arg-type]


def test_plain_requirements_do_not_import_packaging_requirements() -> None:
    """Plugin discovery at every start: ``packaging.requirements`` (markers, parser) stays unloaded
    for the usual ``dc-api-x>=X`` and for other projects' requirements."""
    code = (
        "import sys\n"
        "from dc_api_x.plugins import _dist_requirement\n"
        "class D: requires = ['pyarrow>=12', \"ldap3>=2.9; extra == 'ldap3'\", 'dc-api-x>=0.2.0']\n"
        "assert _dist_requirement(D()) == '>=0.2.0'\n"
        "print('packaging.requirements' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
