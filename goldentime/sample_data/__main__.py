"""``python -m goldentime.sample_data LANDING_DIR [--events N | --customers N] ...``"""

from __future__ import annotations

import argparse
from datetime import date

from .generator import generate, summary_json


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m goldentime.sample_data", description=__doc__)
    ap.add_argument("landing_dir")
    ap.add_argument("--events", type=int, default=None, help="roughly this many valid events")
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 1))
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-gzip", action="store_true")
    ap.add_argument("--malformed-rate", type=float, default=0.0005)
    ap.add_argument("--duplicate-rate", type=float, default=0.01)
    ap.add_argument("--late-rate", type=float, default=0.005)
    ap.add_argument("--compresslevel", type=int, default=1)
    args = ap.parse_args(argv)
    s = generate(args.landing_dir, customers=args.customers, start=args.start, days=args.days,
                 seed=args.seed, gzip=not args.no_gzip, malformed_rate=args.malformed_rate,
                 duplicate_rate=args.duplicate_rate, late_rate=args.late_rate, events=args.events,
                 compresslevel=args.compresslevel)
    print(summary_json(s))


if __name__ == "__main__":
    main()
