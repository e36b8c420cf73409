"""OCI image layouts: reproducible digests, the config, the golden listing, the SBOM."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from ocitool_testlib import run_cli, tiny_base, write_tree

from tools.bazel.ocitool.errors import ImageInputError
from tools.bazel.ocitool.image import ImageOptions, ImageResult, build_image, read_layout
from tools.bazel.ocitool.layer import LayerContents, write_layer

TESTDATA = Path(__file__).resolve().parent / "testdata"
WHEEL_METADATA = "Metadata-Version: 2.1\nName: Tiny_Dep\nVersion: 2.0.1\nSummary: A tiny   dependency\n"


def _deps_layer(directory: Path) -> Path:
    site = write_tree(
        directory / "site",
        {
            "tiny_dep/__init__.py": "VALUE = 2\n",
            "tiny_dep-2.0.1.dist-info/METADATA": WHEEL_METADATA,
            "tiny_dep-2.0.1.dist-info/RECORD": "tiny_dep/__init__.py,sha256=abc,10\n",
        },
    )
    contents = LayerContents()
    contents.add_tree(site, "/opt/etl/site-packages")
    out = directory / "deps.tar.gz"
    write_layer(contents, out)
    return out


def _app_layer(directory: Path, *, job_text: str = "print('job ran')\n") -> Path:
    src = write_tree(
        directory / "app",
        {
            "demo/__init__.py": "",
            "demo/jobs/__init__.py": "",
            "demo/jobs/hello.py": job_text,
        },
    )
    contents = LayerContents()
    contents.add_tree(src, "/app")
    out = directory / "app.tar.gz"
    write_layer(contents, out)
    return out


OPTIONS = ImageOptions(
    entrypoint=["/usr/bin/python3.13", "-m", "demo.jobs.hello"],
    env=[("PYTHONPATH", "/app:/opt/etl/site-packages"), ("PYTHONUNBUFFERED", "1")],
    user="65532",
    workdir="/app",
    labels={
        "org.opencontainers.image.source": "https://example.invalid/repo",
        "etl.package": "demo",
    },
)


def _image(directory: Path, **app_kwargs: str) -> tuple[Path, ImageResult]:
    base = tiny_base(directory / "base")
    deps = _deps_layer(directory / "deps")
    app = _app_layer(directory / "appsrc", **app_kwargs)
    result = build_image(out=directory / "layout", base=base, layers=[deps, app], options=OPTIONS)
    return directory / "layout", result


def _files(layout: Path) -> dict[str, bytes]:
    return {str(p.relative_to(layout)): p.read_bytes() for p in sorted(layout.rglob("*")) if p.is_file()}


def test_image_is_byte_identical_when_built_twice_in_different_dirs(
    tmp_path: Path,
) -> None:
    one, r1 = _image(tmp_path / "a")
    two, r2 = _image(tmp_path / "b" / "nested")
    assert r1.manifest_digest == r2.manifest_digest
    assert _files(one) == _files(two)
    manifest = (one / "blobs" / "sha256" / r1.manifest_digest.split(":")[1]).read_bytes()
    assert r1.manifest_digest == "sha256:" + hashlib.sha256(manifest).hexdigest()


def test_layout_structure_and_config(tmp_path: Path) -> None:
    layout, result = _image(tmp_path)
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    read = read_layout(layout)
    config = read.config
    assert config["created"] == "1970-01-01T00:00:00Z"
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    cfg = config["config"]
    assert cfg["User"] == "65532"
    assert cfg["Entrypoint"] == ["/usr/bin/python3.13", "-m", "demo.jobs.hello"]
    assert cfg["WorkingDir"] == "/app"
    assert cfg["Env"][0].startswith("PATH=/usr/local/sbin:")
    assert "PYTHONPATH=/app:/opt/etl/site-packages" in cfg["Env"]
    assert cfg["Labels"]["etl.package"] == "demo"
    assert len(config["history"]) == 3
    diff_ids = config["rootfs"]["diff_ids"]
    assert diff_ids == [layer.diff_id for layer in result.layers]
    # every diff_id is the sha256 of the decompressed blob
    for desc, diff_id in zip(read.manifest["layers"], diff_ids, strict=True):
        assert desc["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
        raw = gzip.decompress(read.blob(desc["digest"]).read_bytes())
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == diff_id


def test_golden_listing_of_a_small_image(tmp_path: Path) -> None:
    for name in ("base", "deps", "appsrc"):
        (tmp_path / name).mkdir()
    proc = run_cli(
        "image",
        "--base", str(tiny_base(tmp_path / "base")),
        "--layer", str(_deps_layer(tmp_path / "deps")),
        "--layer", str(_app_layer(tmp_path / "appsrc")),
        "--entrypoint=/usr/bin/python3.13", "--entrypoint=-m", "--entrypoint=demo.jobs.hello",
        "--user", "65532",
        "--out", str(tmp_path / "layout"),
        "--listing-out", str(tmp_path / "listing.txt"),
        "--digest-out", str(tmp_path / "image.digest"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    golden_path = TESTDATA / "small_image.listing"
    if os.environ.get("UPDATE_GOLDENS") == "1":  # regenerate: UPDATE_GOLDENS=1 pytest ...
        golden_path.write_text((tmp_path / "listing.txt").read_text())
    assert (tmp_path / "listing.txt").read_text() == golden_path.read_text()
    digest = (tmp_path / "image.digest").read_text()
    assert digest.startswith("sha256:") and len(digest) == 71 and digest in proc.stdout


def test_listing_can_skip_the_base(tmp_path: Path) -> None:
    proc = run_cli(
        "image",
        "--base", str(tiny_base(tmp_path / "base")),
        "--layer", str(_app_layer(tmp_path / "appsrc")),
        "--out", str(tmp_path / "layout"),
        "--listing-out", str(tmp_path / "listing.txt"),
        "--listing-skip-base",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = (tmp_path / "listing.txt").read_text().splitlines()
    assert lines and all(line.startswith("L2 ") for line in lines)


def test_app_only_change_changes_only_app_layer_config_and_manifest(
    tmp_path: Path,
) -> None:
    layout1, r1 = _image(tmp_path / "v1")
    layout2, r2 = _image(tmp_path / "v2", job_text="print('job ran, version 2')\n")
    l1 = [x.digest for x in r1.layers]
    l2 = [x.digest for x in r2.layers]
    assert l1[:2] == l2[:2]  # base and wheels untouched
    assert l1[2] != l2[2]
    assert r1.config_digest != r2.config_digest
    assert r1.manifest_digest != r2.manifest_digest
    new_blobs = set(_files(layout2)) - set(_files(layout1))
    assert new_blobs == {"blobs/sha256/" + d.split(":")[1] for d in (l2[2], r2.config_digest, r2.manifest_digest)}


def test_base_can_be_an_oci_layout(tmp_path: Path) -> None:
    base_layout, base_result = _image(tmp_path / "base")
    extra = tmp_path / "extra.tar.gz"
    contents = LayerContents()
    contents.add_bytes("/app/extra.txt", b"more")
    write_layer(contents, extra)
    result = build_image(
        out=tmp_path / "child",
        base=base_layout,
        layers=[extra],
        options=ImageOptions(env=[("EXTRA", "1")]),
    )
    config = read_layout(tmp_path / "child").config
    assert [x.digest for x in result.layers][:3] == [x.digest for x in base_result.layers]
    assert [x.from_base for x in result.layers] == [True, True, True, False]
    assert config["config"]["Entrypoint"] == [
        "/usr/bin/python3.13",
        "-m",
        "demo.jobs.hello",
    ]  # inherited
    assert config["config"]["User"] == "65532"
    assert "EXTRA=1" in config["config"]["Env"] and "PYTHONUNBUFFERED=1" in config["config"]["Env"]
    assert len(config["history"]) == 4


def test_plain_tar_layers_are_compressed_deterministically(tmp_path: Path) -> None:
    raw = tmp_path / "plain.tar"
    with tarfile.open(raw, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("app/x.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    r1 = build_image(out=tmp_path / "one", layers=[raw])
    r2 = build_image(out=tmp_path / "two", layers=[raw])
    assert r1.manifest_digest == r2.manifest_digest
    assert r1.layers[0].diff_id == "sha256:" + hashlib.sha256(raw.read_bytes()).hexdigest()
    blob = (tmp_path / "one" / "blobs" / "sha256" / r1.layers[0].digest.split(":")[1]).read_bytes()
    assert blob[:2] == b"\x1f\x8b"


def test_sbom_lists_debs_from_the_lock_and_wheels_from_dist_info(
    tmp_path: Path,
) -> None:
    lock = tmp_path / "lock.json"
    lock.write_text(
        json.dumps(
            {
                "architecture": "amd64",
                "packages": [
                    {
                        "name": "libc6",
                        "version": "2.41-12",
                        "architecture": "amd64",
                        "sha256": "ab" * 32,
                    }
                ],
            }
        )
    )
    outputs = []
    for run in ("one", "two"):
        (tmp_path / run).mkdir()
        proc = run_cli(
            "image",
            "--base", str(tiny_base(tmp_path / run / "base")),
            "--layer", str(_deps_layer(tmp_path / run / "deps")),
            "--out", str(tmp_path / run / "layout"),
            "--sbom-out", str(tmp_path / run / "sbom.json"),
            "--deb-lock", str(lock),
            "--name", "demo",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        outputs.append((tmp_path / run / "sbom.json").read_bytes())
    assert outputs[0] == outputs[1]
    doc = json.loads(outputs[0])
    assert doc["spdxVersion"] == "SPDX-2.3"
    by_name = {p["name"]: p for p in doc["packages"]}
    assert by_name["libc6"]["versionInfo"] == "2.41-12"
    assert by_name["libc6"]["checksums"] == [{"algorithm": "SHA256", "checksumValue": "ab" * 32}]
    dep = by_name["Tiny_Dep"]
    assert dep["versionInfo"] == "2.0.1"
    assert dep["externalRefs"][0]["referenceLocator"] == "pkg:pypi/tiny-dep@2.0.1"
    record_sha = hashlib.sha256(b"tiny_dep/__init__.py,sha256=abc,10\n").hexdigest()
    assert dep["checksums"][0]["checksumValue"] == record_sha
    assert "/opt/etl/site-packages/tiny_dep-2.0.1.dist-info" in dep["comment"]
    assert by_name["demo"]["primaryPackagePurpose"] == "CONTAINER"
    assert {r["relatedSpdxElement"] for r in doc["relationships"]} >= {
        dep["SPDXID"],
        by_name["libc6"]["SPDXID"],
    }


@pytest.mark.skipif(
    shutil.which("skopeo") is None,
    reason="skopeo is not installed (Debian package skopeo)",
)
def test_skopeo_reads_the_layout(tmp_path: Path) -> None:
    layout, result = _image(tmp_path)
    proc = subprocess.run(
        ["skopeo", "inspect", f"oci:{layout}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["Digest"] == result.manifest_digest
    assert info["Layers"] == [x.digest for x in result.layers]
    assert info["Labels"]["etl.package"] == "demo"


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError, match=r"layer '.*missing.tar.gz' does not exist"):
        build_image(out=tmp_path / "x", layers=[tmp_path / "missing.tar.gz"])
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(ImageInputError, match=r"layer '.*junk.tar.gz' is not a readable tar or tar.gz"):
        build_image(out=tmp_path / "y", layers=[junk])
    (tmp_path / "notlayout").mkdir()
    with pytest.raises(ImageInputError, match=r"is not an OCI image layout \(no oci-layout file\)"):
        build_image(out=tmp_path / "z", base=tmp_path / "notlayout", layers=[])
    proc = run_cli("image", "--out", str(tmp_path / "w"), "--env", "NOVALUE")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "ocitool image: error: invalid flag: --env 'NOVALUE' must look like KEY=VALUE"
