"""A new job of the demo: the best customers, with their e-mail, for a public leaderboard.

It stands in for a script that runs share_top_customers.sql and publishes the result. The
gate stops it before it starts (the e-mail addresses are PII and the target is public),
so in the demo it never runs; if it did, it would write made-up rows.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="public CSV to write")
    args = parser.parse_args()
    generator = random.Random(100)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "country", "lifetime_value"])
        for rank in range(1, 101):
            value = round(generator.uniform(2000.0, 9000.0) / rank, 2)
            writer.writerow([f"customer{rank}@example.com", "DE", value])
    print(f"published the top 100 customers in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
