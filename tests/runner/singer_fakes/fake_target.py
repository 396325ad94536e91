"""A minimal Singer target: appends record ids to ``path`` and echoes each STATE after an fsync."""

import json
import os
import sys
from pathlib import Path


def main() -> int:
    args = sys.argv[1:]
    config = json.loads(Path(args[args.index("--config") + 1]).read_text())
    with open(config["path"], "a") as fh:
        for line in sys.stdin:
            msg = json.loads(line)
            if msg["type"] == "RECORD":
                fh.write(f"{msg['record']['id']}\n")
            elif msg["type"] == "STATE":
                fh.flush()
                os.fsync(fh.fileno())
                print(json.dumps(msg["value"]), flush=True)
    print("target done", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
