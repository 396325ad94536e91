"""Run target-dcapix with the test ``probe`` adapter registered.

``python -m tests.singer_target.run_target --config …`` (from the repository root).
"""

from __future__ import annotations

from dc_api_x import enable_plugins
from tests.singer_target import probe_adapter

if __name__ == "__main__":
    enable_plugins(plugins=[probe_adapter])
    from target_dcapix.target import TargetDcApiX

    TargetDcApiX.cli()
