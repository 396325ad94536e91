"""The ``target-dcapix`` console script: ``TargetDcApiX.cli()``, ending the process without the
interpreter's last garbage-collection pass (:mod:`dc_api_x.process_exit`)."""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    from dc_api_x.process_exit import freeze_at_exit

    freeze_at_exit()
    from target_dcapix.target import TargetDcApiX

    TargetDcApiX.cli()


if __name__ == "__main__":  # pragma: no cover
    main()
