"""A minimal Singer tap for the process-mode tests: ``rows`` records of stream ``items``, resuming
after ``state.bookmarks.items.id``; a STATE every ``state_every`` records; optional crash."""

import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    args = sys.argv[1:]
    config = json.loads(Path(args[args.index("--config") + 1]).read_text())
    state = json.loads(Path(args[args.index("--state") + 1]).read_text()) if "--state" in args else {}
    start = int(((state.get("bookmarks") or {}).get("items") or {}).get("id", 0))
    out = sys.stdout
    out.write(
        json.dumps(
            {
                "type": "SCHEMA",
                "stream": "items",
                "key_properties": ["id"],
                "schema": {"type": "object", "properties": {"id": {"type": "integer"}}},
            }
        )
        + "\n"
    )
    n = 0
    for i in range(start + 1, int(config["rows"]) + 1):
        out.write(json.dumps({"type": "RECORD", "stream": "items", "record": {"id": i}}) + "\n")
        if config.get("sleep"):
            out.flush()
            time.sleep(float(config["sleep"]))
        n += 1
        if config.get("crash_at") == i:
            out.flush()
            print("tap crashing on purpose", file=sys.stderr, flush=True)
            os._exit(3)
        if i % int(config.get("state_every", 10)) == 0:
            out.write(json.dumps({"type": "STATE", "value": {"bookmarks": {"items": {"id": i}}}}) + "\n")
    last = max(start, int(config["rows"]))
    out.write(json.dumps({"type": "STATE", "value": {"bookmarks": {"items": {"id": last}}}}) + "\n")
    out.flush()
    print("tap secret " + str(config.get("password")), file=sys.stderr)
    metric = {"type": "counter", "metric": "record_count", "value": n, "tags": {"stream": "items"}}
    print("METRIC: " + json.dumps(metric), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
