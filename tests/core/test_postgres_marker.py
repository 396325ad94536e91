"""The conftest check: a test that uses PostgreSQL fixtures must carry the ``postgres`` marker, so
``-m "not postgres"`` leaves out exactly the tests that need the server."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).resolve().parents[1] / "conftest.py").read_text()
INI = "[pytest]\naddopts = -p no:cacheprovider\nmarkers =\n    postgres: needs PostgreSQL\n    slow: slow\n"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    return pytester


def test_an_unmarked_test_using_a_pg_fixture_fails_collection(project: pytest.Pytester) -> None:
    project.makepyfile(test_static="def test_reads(pg_schema):\n    pass\n")
    result = project.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_static.py::test_reads uses PostgreSQL but is not marked*"])


def test_a_pg_fixture_reached_dynamically_fails_the_unmarked_test(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_dynamic="def test_reads(request):\n    request.getfixturevalue('pg_url')\n",
    )
    result = project.runpytest("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_dynamic.py::test_reads uses PostgreSQL but is not marked*"])


def test_marked_tests_are_left_out_by_not_postgres(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_marked=(
            "import pytest\n\n"
            "@pytest.mark.postgres\ndef test_reads(pg_url):\n    pass\n\n"
            "@pytest.mark.parametrize('db', [pytest.param('pg', marks=pytest.mark.postgres), 'sqlite'])\n"
            "def test_each(db):\n    pass\n"
        )
    )
    result = project.runpytest("-q", "-m", "not postgres")
    result.assert_outcomes(passed=1, deselected=2)
