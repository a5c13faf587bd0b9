"""Write the service's OpenAPI document to openapi/openapi.json (or check that it is current).

    python scripts/export_openapi.py           # regenerate
    python scripts/export_openapi.py --check   # exit 1 if the file is stale

The document is generated from the application itself with default settings, so it never depends on
the environment of whoever runs this.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from service.api.openapi import openapi_text

OUT = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def main() -> None:
    parser = argparse.ArgumentParser(description="Export the OpenAPI document.")
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args()
    text = openapi_text()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            sys.exit(f"{OUT} is stale: run python scripts/export_openapi.py")
        print(f"{OUT} is current")
        return
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
