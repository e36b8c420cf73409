"""Issue #16 item 3: two packages publishing the same new dag_id at once never give Airflow two files.

Each round: a fresh bucket on one real moto server, two real publisher processes (``publisher.cli``
in ``python -c``, the image step faked as in the publisher's own process race test) of different
packages that both introduce ``race_shared_<n>`` start together; then the real sidecar
(``python -m sidecar --once``) syncs the bucket into an empty dags folder. Whatever the publishes
did (one refused by the collision check, or both committed: the check is not serialised), the dags
folder must never hold two files with one dag_id, and the loser must be named (REJECTED.json,
reason dag_id_conflict). Prints the round count and the outcome counts.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tools.bazel.publisher.tests.helpers import dag_source, write_build
from tools.testing.servers import moto_server

ROUNDS = int(os.environ.get("RACE_ROUNDS", "50"))
PACKAGES = ("data_pipeline", "file_processing")
RUNNER = (
    "import sys\n"
    "from tools.bazel.publisher.cli import main\n"
    "from tools.bazel.publisher.tests.helpers import FakeRegistry\n"
    "sys.exit(main(sys.argv[1:], registry=FakeRegistry()))\n"
)


def _dag_ids(dags: Path) -> list[str]:
    """Every DAG file Airflow would see in ``dags`` (through the package links), as dag_ids."""
    found = []
    for link in sorted(dags.iterdir()):
        if link.is_symlink() and link.is_dir():
            found += [f.stem for f in link.iterdir() if f.suffix == ".py"]
    return found


def test_concurrent_publishes_of_one_new_dag_id_never_install_two_files(tmp_path: Path) -> None:
    counts: collections.Counter[str] = collections.Counter()
    duplicates: list[str] = []
    (tmp_path / "moto").mkdir()
    with moto_server(log_dir=tmp_path / "moto") as moto:
        s3 = moto.client()
        base_env = {**moto.env(), "PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        for n in range(ROUNDS):
            bucket = f"race-{n}-{uuid.uuid4().hex[:8]}"
            s3.create_bucket(Bucket=bucket)
            shared = f"race_shared_{n}"
            env = {**base_env, "DAG_BUCKET": f"s3://{bucket}", "ENV": "dev"}
            builds = [
                write_build(
                    tmp_path / f"r{n}-{pkg}",
                    pkg,
                    {shared: dag_source(shared, n), f"{pkg}_own_{n}": dag_source(f"{pkg}_own_{n}", n)},
                )
                for pkg in PACKAGES
            ]
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        RUNNER,
                        "--package",
                        b.package,
                        "--dags-dir",
                        str(b.dags_dir),
                        "--image-layout",
                        str(b.layout),
                        "--image-digest-file",
                        str(b.digest_file),
                    ],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for b in builds
            ]
            codes = [p.wait(timeout=120) for p in procs]
            errors = [p.communicate()[1] for p in procs]
            # a race may refuse one publisher, never both: a round where neither committed tests nothing
            assert 0 in codes, (n, codes, errors)
            publish = (
                "both committed"
                if codes == [0, 0]
                else "one refused"
                if sorted(codes) == [0, 1]
                else f"exit codes {codes}"
            )
            dags = tmp_path / f"dags-{n}"
            sidecar = subprocess.run(
                [sys.executable, "-m", "sidecar", "--once"],
                capture_output=True,
                text=True,
                env={**env, "DAGS_DIR": str(dags), "METRICS_PORT": "0"},
                timeout=120,
                check=False,
            )
            assert sidecar.returncode == 0, sidecar.stdout[-2000:] + sidecar.stderr[-2000:]
            ids = _dag_ids(dags)
            dup = sorted({d for d in ids if ids.count(d) > 1})
            if dup:
                duplicates.append(f"round {n}: {dup}")
            rejected = sorted(
                f"{r.parent.name}:{json.loads(r.read_text())['reason']}"
                for r in (dags / ".sidecar").glob("*/REJECTED.json")
            )
            sync = (
                "loser quarantined"
                if rejected and all(r.endswith(":dag_id_conflict") for r in rejected)
                else "no conflict"
                if not rejected
                else f"rejected {rejected}"
            )
            assert ids.count(shared) == 1, (n, publish, ids, rejected)
            counts[f"{publish}, sidecar: {sync}"] += 1
    print(f"\ndag_id race: {ROUNDS} rounds, {len(duplicates)} with two files of one dag_id")
    for outcome, count in sorted(counts.items()):
        print(f"  {count:3d}  {outcome}")
    assert not duplicates
    assert sum(counts.values()) == ROUNDS
