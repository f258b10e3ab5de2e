"""Legacy job of the demo: orders and spend per customer (customer_orders.sql), as CSV.

It stands in for a script that runs customer_orders.sql in the warehouse and exports the
result for the CRM team; the figures are made up (seeded).
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
    parser.add_argument("--customers", type=int, default=800, help="customers to export")
    args = parser.parse_args()
    generator = random.Random(args.customers)
    now = datetime.now(UTC)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "orders", "spent", "last_order_at"])
        for customer in range(1, args.customers + 1):
            orders = generator.randrange(1, 30)
            last = now - timedelta(days=generator.randrange(365))
            spent = round(orders * generator.uniform(20.0, 60.0), 2)
            writer.writerow([customer, orders, spent, last.isoformat(timespec="seconds")])
    print(f"exported {args.customers} customers to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
