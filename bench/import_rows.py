"""Write a large import file for timing ``stampbook import`` (issue 17 asks for
100,000 rows in under a minute on SQLite; this is a measurement, not a test).

    .venv/bin/python bench/import_rows.py 100000 /tmp/stamps.csv
    time .venv/bin/stampbook import --account bench /tmp/stamps.csv

Rows spread over 20 cards, with every field of the stamp object filled in as
the hosted service's export would have them (csv or jsonl by the suffix).
"""

from __future__ import annotations

import sys
from pathlib import Path

from stampbook.transfer.formats import RowWriter


def row(n: int) -> dict[str, object]:
    """The n-th stamp object."""
    card = n % 20 + 1
    return {
        "stampIdx": 1000 + n,
        "domain": "https://hosted.example.com",
        "cardIdx": card,
        "cardNm": f"Card {card}",
        "cardTtl": "Collect 10 stamps to get one free Americano.",
        "stamps": n % 11,
        "maxStamps": 10 + card % 3,
        "stampUrl": f"https://hosted.example.com/stamp/{1000 + n}",
        "url": "https://myshop.example.com",
        "strtYmd": "2025-01-01",
        "endYmd": "2027-12-31",
        "onsiteYn": "N",
        "onsitePwd": None,
        "memo": f"memo {n}" if n % 3 == 0 else None,
        "activeYn": "Y",
        "useYn": "Y" if n % 17 == 0 else "N",
        "userId": f"user{n:08d}",
        "userNm": "Kim",
        "userPhnno": f"010-{n % 10000:04d}-{n // 10000:04d}",
        "userEml": f"customer{n}@example.com",
        "userEtc1": None,
        "userEtc2": None,
        "stampImgUrl": None,
        "regYmdt": "2025-10-30 05:11:35",
        "payloadVersion": "v1",
    }


def main() -> None:
    """``import_rows.py COUNT PATH``."""
    count, path = int(sys.argv[1]), Path(sys.argv[2])
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = RowWriter(out, "csv" if path.suffix == ".csv" else "jsonl")
        for n in range(count):
            writer.write(row(n))
    print(f"{count} rows written to {path}")


if __name__ == "__main__":
    main()
