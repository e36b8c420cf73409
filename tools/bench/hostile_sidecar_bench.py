"""Benchmark: the sidecar's peak RSS on every hostile sidecar case vs its own normal cold sync.

    ./bazelw run //tools/bench:hostile_sidecar_bench
    ./bazelw run //tools/bench:hostile_sidecar_bench -- --packages 4 --dags 200

Issue #16: one package must not be able to take down the sidecar that serves every package
(before the limits, a 100 MiB pax header took it to 516 MiB and a 60 MiB metadata.json to 1.6 GiB;
the chart's limit is 192Mi). Side by side in one run, each a fresh ``python -m sidecar --once``
child over a file:// store into an empty dags folder, peak RSS from ``wait4`` (ru_maxrss of that
child alone):

- the reference: a normal cold sync of PACKAGES packages of DAGS DAGs each, written with the
  store contract's writers (as the publisher does);
- every case of tools/testing/hostile/cases/sidecar/ (the corpus the hostile test runs), each
  built the same way and then damaged.

Prints each case's peak, its ratio to the reference (target <= 1.5x) and whether it is inside the
chart's 192Mi. It measures and reports; it asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.testing.hostile.sidecar_runner import CHART_MEMORY_LIMIT, sidecar_outcome

CASES = ROOT / "tools" / "testing" / "hostile" / "cases" / "sidecar"
_MIB = 1024 * 1024
TARGET = 1.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packages", type=int, default=2, help="packages of the normal cold sync (default 2)")
    parser.add_argument("--dags", type=int, default=12, help="DAGs per package of the normal cold sync (default 12)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the reference; its median peak is used")
    args = parser.parse_args(argv)
    cases = sorted(p for p in CASES.iterdir() if (p / "case.yaml").exists())
    if not cases:
        print(f"error: no cases under {CASES}", file=sys.stderr)
        return 1
    normal = {
        "packages": {
            f"pkg{i:02d}": {"dags": [f"pkg{i:02d}_d{n:04d}" for n in range(args.dags)]} for i in range(args.packages)
        }
    }
    with tempfile.TemporaryDirectory(prefix="hostile-sidecar-bench-") as tmp:
        peaks = []
        for i in range(args.repeats):
            work = Path(tmp) / f"normal-{i}"
            outcome, runs = sidecar_outcome(normal, work)
            peaks.append(max(r.peak_rss for r in runs))
            shutil.rmtree(work)
        reference = sorted(peaks)[len(peaks) // 2]
        print(
            f"reference: normal cold sync, {args.packages} packages x {args.dags} DAGs: peak RSS "
            f"{reference / _MIB:.1f} MiB (median of {args.repeats}: "
            f"{', '.join(f'{p / _MIB:.1f}' for p in peaks)}); outcome: {outcome}"
        )
        print(f"{'case':<40} {'peak MiB':>9} {'ratio':>6} {'<=1.5x':>7} {'<=192Mi':>8}  outcome")
        worst = 0.0
        for folder in cases:
            doc = yaml.safe_load((folder / "case.yaml").read_text())
            work = Path(tmp) / folder.name
            outcome, runs = sidecar_outcome(doc, work)
            peak = max(r.peak_rss for r in runs)
            ratio = peak / reference
            worst = max(worst, ratio)
            print(
                f"{folder.name:<40} {peak / _MIB:>9.1f} {ratio:>5.2f}x {'yes' if ratio <= TARGET else 'NO':>7} "
                f"{'yes' if peak <= CHART_MEMORY_LIMIT else 'NO':>8}  {outcome}"
            )
            shutil.rmtree(work)
        print(f"worst ratio {worst:.2f}x (target <= {TARGET}x); chart memory limit {CHART_MEMORY_LIMIT / _MIB:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
