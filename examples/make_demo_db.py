"""Create ``examples/demo.sqlite``: the demo source of the sample Meltano pipeline.

Two tables with an integer primary key and an ISO-8601 ``updated_at`` that increases with the key
(the incremental replication key)::

    customers(id, name, email, country, created_at, updated_at)
    orders(id, customer_id, amount, status, ordered_at, updated_at)

Usage: ``python examples/make_demo_db.py [PATH] [--customers N] [--orders N] [--append]``.
``--append`` adds new rows after the existing ones (to show an incremental run picking them up).
Stdlib only; the data are deterministic.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
from pathlib import Path

__all__ = ["make_demo_db"]

DEFAULT_PATH = Path(__file__).resolve().parent / "demo.sqlite"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
COUNTRIES = ("DE", "FR", "US", "BR", "JP", "IN")
STATUSES = ("new", "paid", "shipped", "cancelled")


def _ts(seconds: int) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat()


def make_demo_db(
    path: str | Path = DEFAULT_PATH, *, customers: int = 100, orders: int = 1000, append: bool = False
) -> tuple[int, int]:
    """Create (or with ``append`` extend) the demo database; returns the row counts."""
    path = Path(path)
    if path.exists() and not append:
        path.unlink()
    con = sqlite3.connect(path)
    try:
        con.execute(
            "CREATE TABLE IF NOT EXISTS customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "email TEXT, country TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)"
        )
        con.execute(
            "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL "
            "REFERENCES customers(id), amount NUMERIC(12, 2) NOT NULL, status TEXT NOT NULL, "
            "ordered_at TEXT NOT NULL, updated_at TEXT NOT NULL)"
        )
        c0 = con.execute("SELECT COALESCE(MAX(id), 0) FROM customers").fetchone()[0]
        o0 = con.execute("SELECT COALESCE(MAX(id), 0) FROM orders").fetchone()[0]
        con.executemany(
            "INSERT INTO customers VALUES (?,?,?,?,?,?)",
            [
                (
                    i,
                    f"Customer {i}",
                    None if i % 10 == 0 else f"customer{i}@example.com",
                    COUNTRIES[i % len(COUNTRIES)],
                    _ts(i * 60),
                    _ts(i * 60),
                )
                for i in range(c0 + 1, c0 + customers + 1)
            ],
        )
        ncust = c0 + customers
        con.executemany(
            "INSERT INTO orders VALUES (?,?,?,?,?,?)",
            [
                (
                    i,
                    1 + (i * 7) % ncust,
                    f"{(i * 37) % 10000 / 100:.2f}",
                    STATUSES[i % len(STATUSES)],
                    _ts(i * 30),
                    _ts(i * 30),
                )
                for i in range(o0 + 1, o0 + orders + 1)
            ],
        )
        con.commit()
        return (
            con.execute("SELECT COUNT(*) FROM customers").fetchone()[0],
            con.execute("SELECT COUNT(*) FROM orders").fetchone()[0],
        )
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", nargs="?", default=str(DEFAULT_PATH))
    ap.add_argument("--customers", type=int, default=100)
    ap.add_argument("--orders", type=int, default=1000)
    ap.add_argument("--append", action="store_true", help="add rows instead of recreating the file")
    a = ap.parse_args()
    n_c, n_o = make_demo_db(a.path, customers=a.customers, orders=a.orders, append=a.append)
    print(f"{a.path}: customers={n_c} orders={n_o}")


if __name__ == "__main__":
    main()
