"""Benchmark of the image tools (issue 3): layer reuse, base size, push time against skopeo.

Measures, in one run, side by side:

1. app-only change: bytes of the blobs that are new in the changed image / all its blob bytes
   (target <= 5%), and which blobs the push of the changed image uploads (target: app layer and
   config, plus the manifest);
2. the compressed size of the Debian Python base layer (target <= 25 MB);
3. a cold push of the same OCI layout to a fresh Debian ``docker-registry`` by ``ocitool push``
   and by ``skopeo copy oci:... docker://...``, each into its own fresh registry, alternating,
   ``--rounds`` times; prints the medians and the ratio (target <= 1.2x skopeo).

The image is realistic: the base, a wheels layer (boto3, pandas, pydantic ... taken from the
running interpreter's site-packages), and an app layer (packages/etl_core + packages/file_processing).

    PYTHONPATH=. python tools/bench/image_bench.py [--base base.tar.gz] [--rounds 3]

Without ``--base`` the base is built from tools/bazel/images/base.lock.json with mmdebstrap
(root, a Debian mirror: DEBIAN_MIRROR or the host's apt sources).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.bazel.ocitool.image import ImageOptions, ImageResult, build_image
from tools.bazel.ocitool.layer import LayerContents, write_layer
from tools.bazel.ocitool.push import human_bytes, push_layout
from tools.testing.registry import registry_server

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "tools/bazel/images/base.lock.json"
WHEELS = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
    "prometheus-client",
    "pydantic",
    "pydantic-core",
    "typing-extensions",
    "annotated-types",
    "pandas",
    "numpy",
    "pytz",
    "tzdata",
)
APP_PACKAGES = ("etl_core", "file_processing")


def _base(args: argparse.Namespace, work: Path) -> Path:
    if args.base:
        return Path(args.base)
    from tools.bazel.ocitool.base import build_base
    from tools.bazel.ocitool.debian import mirror_from_apt_sources

    out = work / "base.tar.gz"
    started = time.monotonic()
    mirror = args.mirror or mirror_from_apt_sources()
    build_base(
        lock_path=LOCK,
        mirror=mirror,
        out=out,
        check_tarball=False,
        log=lambda line: None,
    )
    print(f"base: built from {LOCK.name} in {time.monotonic() - started:.1f}s")
    return out


def _wheels_layer(out: Path) -> tuple[Path, int]:
    contents = LayerContents()
    count = 0
    for name in WHEELS:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        count += 1
        for file in dist.files or ():
            src = Path(str(dist.locate_file(file)))
            rel = str(file)
            if "__pycache__" in rel or rel.startswith("..") or not src.is_file():
                continue
            contents.add_file("/opt/etl/site-packages/" + rel, src)
    write_layer(contents, out)
    return out, count


def _app_layer(out: Path, src_root: Path) -> Path:
    contents = LayerContents()
    for pkg in APP_PACKAGES:
        if (src_root / pkg).is_dir():
            contents.add_tree(
                src_root / pkg,
                f"/app/{pkg}",
                excludes=["__pycache__", "tests", "*.pyc", "BUILD.bazel"],
            )
    write_layer(contents, out)
    return out


def _image(work: Path, base: Path, wheels: Path, app: Path) -> ImageResult:
    return build_image(
        out=work,
        base=base,
        layers=[wheels, app],
        options=ImageOptions(
            entrypoint=["/usr/bin/python3.13", "-m", "file_processing.jobs.profile"],
            env=[("PYTHONPATH", "/app:/opt/etl/site-packages")],
            user="65532",
            workdir="/app",
        ),
    )


def _blobs(layout: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in (layout / "blobs/sha256").iterdir()}


def _time_ours(layout: Path, repo: str) -> float:
    started = time.monotonic()
    push_layout(layout, repo, ["bench"], log=lambda line: None)
    return time.monotonic() - started


def _time_skopeo(layout: Path, repo: str, expected: str) -> float:
    started = time.monotonic()
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            f"oci:{layout}",
            f"docker://{repo}:bench",
        ],
        check=True,
        capture_output=True,
    )
    elapsed = time.monotonic() - started
    got = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            f"docker://{repo}:bench",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if got != expected:
        print(f"note: skopeo stored {got}, ours is {expected}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", help="base layer .tar.gz (default: build from the lock)")
    parser.add_argument(
        "--mirror",
        help="Debian mirror for building the base (default: host apt sources)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="cold push rounds per tool (default 3)")
    args = parser.parse_args()
    if shutil.which("skopeo") is None:
        print("skopeo is not installed (Debian package skopeo)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="image-bench-") as tmp:
        work = Path(tmp)
        base = _base(args, work)
        started = time.monotonic()
        wheels, dists = _wheels_layer(work / "wheels.tar.gz")
        print(
            f"wheels layer: {dists} distributions, {human_bytes(wheels.stat().st_size)} in {time.monotonic() - started:.1f}s"
        )
        app_src = work / "appsrc"
        shutil.copytree(REPO / "packages", app_src, ignore=shutil.ignore_patterns("__pycache__"))
        v1 = _image(work / "v1", base, wheels, _app_layer(work / "app1.tar.gz", app_src))
        # the app-only change: one edited line in the package
        target = next(p for p in sorted((app_src / APP_PACKAGES[-1]).rglob("*.py")) if p.stat().st_size > 0)
        target.write_text(target.read_text() + "\n# changed by image_bench\n")
        v2 = _image(work / "v2", base, wheels, _app_layer(work / "app2.tar.gz", app_src))

        base_size = base.stat().st_size
        blobs1, blobs2 = _blobs(work / "v1"), _blobs(work / "v2")
        new = {k: v for k, v in blobs2.items() if k not in blobs1}
        total = sum(blobs2.values())
        print(f"base layer (compressed): {human_bytes(base_size)} ({base_size} bytes), target <= 25 MB")
        print(
            f"image: {len(v2.layers)} layers, {human_bytes(total)}; app-only change adds {len(new)} blobs, "
            f"{human_bytes(sum(new.values()))} = {100 * sum(new.values()) / total:.3f}% of the image (target <= 5%)"
        )

        with registry_server(work_dir=work / "reg-incr") as reg:
            repo = reg.repository("bench/app")
            push_layout(work / "v1", repo, log=lambda line: None)
            mark = reg.mark()
            result = push_layout(work / "v2", repo, log=lambda line: None)
            uploaded = sorted(
                p.split("digest=")[1].replace("%3A", ":")[:19]
                for m, p, s in reg.requests_since(mark)
                if m == "PUT" and "/blobs/uploads/" in p and s == 201
            )
            manifests = [p for m, p, s in reg.requests_since(mark) if m == "PUT" and "/manifests/" in p]
            kinds = {
                v2.layers[-1].digest[:19]: "app layer",
                v2.config_digest[:19]: "config",
            }
            print(
                f"push of the changed image: uploaded {result.blobs_uploaded} blobs "
                f"({', '.join(kinds.get(d, d) for d in uploaded)}; {human_bytes(result.bytes_uploaded)}), "
                f"skipped {result.blobs_skipped}, {len(manifests)} manifest PUT"
            )

        ours, theirs = [], []
        for round_no in range(args.rounds):
            order = ("ours", "skopeo") if round_no % 2 == 0 else ("skopeo", "ours")
            for tool in order:
                with registry_server(work_dir=work / f"reg-{tool}-{round_no}") as reg:
                    repo = reg.repository(f"bench/cold-{tool}")
                    if tool == "ours":
                        ours.append(_time_ours(work / "v1", repo))
                    else:
                        theirs.append(_time_skopeo(work / "v1", repo, v1.manifest_digest))
        mo, ms = statistics.median(ours), statistics.median(theirs)
        print(f"cold push of {human_bytes(sum(blobs1.values()))} to a fresh local registry, median of {args.rounds}:")
        print(f"  ocitool push: {mo:.2f}s  (runs: {', '.join(f'{x:.2f}' for x in ours)})")
        print(f"  skopeo copy:  {ms:.2f}s  (runs: {', '.join(f'{x:.2f}' for x in theirs)})")
        print(f"  ratio ocitool/skopeo: {mo / ms:.2f}x (target <= 1.2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
