"""Fail unless a pytest JUnit report shows enough tests run and none skipped except for want of CUDA."""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report", help="The --junitxml file pytest wrote.")
    parser.add_argument("--min-run", type=int, default=60, help="Fewest tests that must have run [default: 60].")
    args = parser.parse_args()
    cases = ET.parse(args.report).getroot().iter("testcase")
    ran, bad = 0, []
    for case in cases:
        skipped = case.find("skipped")  # skips and xfails alike
        if skipped is None:
            ran += 1
        elif "cuda" not in (skipped.get("message", "") + (skipped.text or "")).lower():
            # A skip that is not about the GPU means the suite did not test what it says it does.
            bad.append(f"{case.get('classname')}::{case.get('name')}: {skipped.get('message', '')}")
    for line in bad:
        print(f"skipped: {line}", file=sys.stderr)
    if bad:
        print(f"check_skips: {len(bad)} test(s) skipped for a reason other than CUDA", file=sys.stderr)
    if ran < args.min_run:
        print(f"check_skips: only {ran} tests ran, fewer than {args.min_run}", file=sys.stderr)
    print(f"check_skips: {ran} tests ran, {len(bad)} skipped without a CUDA reason")
    return 1 if bad or ran < args.min_run else 0


if __name__ == "__main__":
    sys.exit(main())
