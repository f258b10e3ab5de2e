"""Legacy job of the demo: revenue per day (daily_revenue.sql), exported to CSV for finance.

It stands in for a script that runs daily_revenue.sql in the warehouse and exports the
result; the figures are made up (seeded). `--refund-bug` books a day's refunds twice, so
that day's revenue comes out negative: the pandera check on the export catches it.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="CSV export to write")
    parser.add_argument("--days", type=int, default=90, help="days to export")
    parser.add_argument("--refund-bug", action="store_true", help="book refunds twice")
    args = parser.parse_args()
    generator = random.Random(args.days)
    today = datetime.now(UTC).date()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["day", "revenue", "orders", "customers"])
        for back in range(args.days, 0, -1):
            orders = generator.randrange(900, 1600)
            revenue = round(orders * generator.uniform(38.0, 46.0), 2)
            if args.refund_bug and back == 1:
                revenue = -round(revenue * 0.4, 2)
            day = today - timedelta(days=back)
            writer.writerow([day.isoformat(), revenue, orders, int(orders * 0.8)])
    print(f"exported {args.days} days of revenue to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
