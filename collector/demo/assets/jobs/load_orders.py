"""Legacy job of the demo: pull yesterday's orders from the shop's API into a landing CSV.

It stands in for a cron script that nobody dares touch: the orders are made up (seeded, so
the same arguments write the same file). `--fail-once MARKER` fails the first call (the
API answered 503) and succeeds once MARKER exists, as a flaky source does.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

CURRENCIES = ("EUR", "EUR", "EUR", "USD", "GBP")
STATUSES = ("paid", "paid", "paid", "paid", "refunded", "cancelled")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="landing CSV to write")
    parser.add_argument("--rows", type=int, required=True, help="orders the API returns")
    parser.add_argument("--fail-once", type=Path, help="fail unless this marker file exists")
    args = parser.parse_args()
    if args.fail_once is not None and not args.fail_once.exists():
        args.fail_once.parent.mkdir(parents=True, exist_ok=True)
        args.fail_once.touch()
        print("GET https://shop.example.com/api/orders: 503 Service Unavailable", file=sys.stderr)
        return 1
    generator = random.Random(args.rows)
    since = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["order_id", "customer_id", "amount", "currency", "status", "ordered_at"])
        for number in range(args.rows):
            ordered_at = since - timedelta(seconds=generator.randrange(86400))
            writer.writerow(
                [
                    100_000 + number,
                    generator.randrange(1, 5000),
                    round(generator.lognormvariate(3.5, 0.6), 2),
                    generator.choice(CURRENCIES),
                    generator.choice(STATUSES),
                    ordered_at.isoformat(timespec="seconds"),
                ]
            )
    print(f"wrote {args.rows} orders to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
