"""A legacy Python ETL step: customers CSV in, mailing-list CSV with full names out.

    python export_customers.py customers.csv /data/out/mailing_list.csv

Standard library only, as such scripts often are; it knows nothing of pipewarden.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path


def main(source: Path, target: Path) -> int:
    with source.open(newline="") as incoming:
        customers = list(csv.DictReader(incoming))
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as outgoing:
        writer = csv.writer(outgoing)
        writer.writerow(["customer_id", "full_name", "email", "country"])
        for row in customers:
            full_name = f"{row['first_name']} {row['last_name']}"
            writer.writerow([row["id"], full_name, row["email"], row["country"]])
    print(f"wrote {len(customers)} customers to {target}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: export_customers.py CUSTOMERS.csv OUT.csv")
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
