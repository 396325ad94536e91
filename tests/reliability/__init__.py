"""The reliability and security suite (issue 16): crashes, HTTP faults, hostile input, secrets.

``python -m tests.reliability`` runs the bounded smoke size, ``--full`` the full size; both print
the figures table (docs/reliability.md). The pytest part (``tests/reliability/test_*.py``) runs a
small slice of each check in the default suite.
"""
