"""Legacy job of the demo: share the last 90 days of revenue (export_revenue_share.sql).

It stands in for a script that runs export_revenue_share.sql and uploads the result: it
copies the day and revenue columns of daily_revenue's export to the shared file.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, required=True, help="daily_revenue's export")
    parser.add_argument("--out", type=Path, required=True, help="shared CSV to write")
    args = parser.parse_args()
    if not args.source.exists():
        print(f"{args.source} does not exist: nothing to share", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.source, newline="") as source, open(args.out, "w", newline="") as target:
        writer = csv.writer(target)
        writer.writerow(["day", "revenue"])
        rows = [(row["day"], row["revenue"]) for row in csv.DictReader(source)]
        writer.writerows(rows)
    print(f"shared {len(rows)} days of revenue in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
