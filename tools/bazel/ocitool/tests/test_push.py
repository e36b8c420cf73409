"""Pushing to Debian's docker-registry: digests agree with skopeo, HEAD skips, auth and errors."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from ocitool_proxy import registry_front
from ocitool_testlib import run_cli, tiny_base, write_tree

from tools.bazel.ocitool.errors import (
    RegistryAuthError,
    RegistryNotFoundError,
    RegistryUnavailableError,
    UsageError,
)
from tools.bazel.ocitool.image import ImageOptions, ImageResult, build_image
from tools.bazel.ocitool.layer import LayerContents, write_layer
from tools.bazel.ocitool.push import push_layout
from tools.bazel.ocitool.registry import (
    Repository,
    docker_credentials,
    is_loopback,
    manifest_exists,
    parse_repository,
)
from tools.testing.registry import (
    RegistryServer,
    registry_binary,
    registry_server,
    write_docker_config,
)

needs_skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")


@pytest.fixture(autouse=True)
def _no_host_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read the developer's own ~/.docker/config.json."""
    empty = tmp_path / "docker-empty"
    empty.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(empty))


def _image(directory: Path, *, app_text: str = "v1") -> ImageResult:
    base = tiny_base(directory / "base")
    src = write_tree(directory / "src", {"demo/__init__.py": "", "demo/VERSION": app_text})
    contents = LayerContents()
    contents.add_tree(src, "/app")
    app = directory / "app.tar.gz"
    write_layer(contents, app)
    return build_image(
        out=directory / "layout",
        base=base,
        layers=[app],
        options=ImageOptions(user="65532", entrypoint=["/x"]),
    )


def _uploads(requests: list[tuple[str, str, int]]) -> list[str]:
    """Digests of the blobs whose upload completed (PUT .../blobs/uploads/...?digest=...)."""
    out = []
    for method, path, status in requests:
        if method == "PUT" and "/blobs/uploads/" in path and status == 201:
            out.append(path.split("digest=")[1].split("&")[0].replace("%3A", ":"))
    return sorted(out)


@needs_skopeo
def test_push_then_skopeo_reports_the_same_digest(tmp_path: Path, registry: RegistryServer) -> None:
    image = _image(tmp_path)
    repo = registry.repository("etl/demo")
    result = push_layout(tmp_path / "layout", repo, ["dev", "1.0.0"], log=lambda line: None)
    assert result.manifest_digest == image.manifest_digest
    assert result.blobs_uploaded == 3 and result.blobs_skipped == 0
    assert (
        result.bytes_uploaded
        == sum(x.size for x in image.layers)
        + (tmp_path / "layout/blobs/sha256" / image.config_digest.split(":")[1]).stat().st_size
    )
    for ref in ("dev", "1.0.0"):
        proc = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", f"docker://{repo}:{ref}"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["Digest"] == image.manifest_digest
    assert manifest_exists(repo, image.manifest_digest)
    assert not manifest_exists(repo, "sha256:" + "0" * 64)
    assert not manifest_exists(registry.repository("etl/never-pushed"), image.manifest_digest)


def test_second_push_uploads_nothing(tmp_path: Path, registry: RegistryServer) -> None:
    _image(tmp_path)
    repo = registry.repository("etl/again")
    push_layout(tmp_path / "layout", repo, ["dev"], log=lambda line: None)
    mark = registry.mark()
    lines: list[str] = []
    second = push_layout(tmp_path / "layout", repo, ["dev"], log=lines.append)
    requests = registry.requests_since(mark)
    assert second.blobs_uploaded == 0 and second.blobs_skipped == 3 and second.bytes_uploaded == 0
    assert not any(m in ("POST", "PATCH") for m, _, _ in requests)
    heads = [(p, s) for m, p, s in requests if m == "HEAD"]
    assert len(heads) == 3 and all(s == 200 for _, s in heads)
    assert "uploaded 0 blobs (0 B), skipped 3 already there" in lines[-1]


def test_app_only_change_uploads_app_layer_and_config_only(tmp_path: Path, registry: RegistryServer) -> None:
    first = _image(tmp_path / "v1")
    repo = registry.repository("etl/app-change")
    push_layout(tmp_path / "v1/layout", repo, log=lambda line: None)
    second = _image(tmp_path / "v2", app_text="v2")
    mark = registry.mark()
    result = push_layout(tmp_path / "v2/layout", repo, log=lambda line: None)
    assert first.layers[0].digest == second.layers[0].digest
    assert _uploads(registry.requests_since(mark)) == sorted([second.layers[1].digest, second.config_digest])
    assert result.blobs_uploaded == 2 and result.blobs_skipped == 1
    manifest_puts = [p for m, p, s in registry.requests_since(mark) if m == "PUT" and "/manifests/" in p]
    assert manifest_puts == [f"/v2/etl/app-change/manifests/{second.manifest_digest}"]


def test_cli_takes_tags_from_env_under_the_image_repository_prefix(tmp_path: Path, registry: RegistryServer) -> None:
    image = _image(tmp_path)
    repo = registry.repository("etl/from-env")
    proc = run_cli(
        "push",
        "--layout",
        str(tmp_path / "layout"),
        "--repository",
        repo,
        "--tag",
        "remote",
        env={"IMAGE_REPOSITORY": registry.repository("etl"), "IMAGE_TAG": "dev,extra remote"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{repo}@{image.manifest_digest}"
    tagged = [line.split()[-1] for line in proc.stderr.splitlines() if " tagged " in line]
    assert tagged == [f"{repo}:remote", f"{repo}:dev", f"{repo}:extra"]
    assert "uploaded 3 blobs" in proc.stderr.splitlines()[-1]
    puts = [p for m, p, s in registry.requests() if m == "PUT" and "/manifests/" in p]
    assert puts == [
        f"/v2/etl/from-env/manifests/{image.manifest_digest}",
        "/v2/etl/from-env/manifests/remote",
        "/v2/etl/from-env/manifests/dev",
        "/v2/etl/from-env/manifests/extra",
    ]


def test_cli_refuses_a_repository_outside_the_image_repository_prefix(tmp_path: Path) -> None:
    # IMAGE_REPOSITORY is the registry prefix (the build setting's value), never a full repository.
    proc = run_cli(
        "push",
        "--layout",
        str(tmp_path),
        "--repository",
        "localhost:5000/etl/pkg",
        env={"IMAGE_REPOSITORY": "registry.example.com/etl"},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "ocitool push: error: invalid flag: --repository 'localhost:5000/etl/pkg' is not under "
        "IMAGE_REPOSITORY='registry.example.com/etl' (the registry prefix); build with "
        "--//tools/bazel:image_repository=registry.example.com/etl or pass --repository "
        "registry.example.com/etl/<name>, or unset IMAGE_REPOSITORY"
    )
    full = run_cli(
        "push",
        "--layout",
        str(tmp_path),
        "--repository",
        "registry.example.com/etl/pkg",
        env={"IMAGE_REPOSITORY": "registry.example.com/etl/pkg"},
    )
    assert full.returncode == 2
    assert full.stderr.strip() == (
        "ocitool push: error: invalid flag: IMAGE_REPOSITORY='registry.example.com/etl/pkg' is this image's "
        "repository; it means the registry prefix: set it to 'registry.example.com/etl' (images live at <prefix>/<name>)"
    )


def test_cli_requires_a_repository(tmp_path: Path) -> None:
    proc = run_cli("push", "--layout", str(tmp_path), env={"IMAGE_REPOSITORY": "127.0.0.1:5000/etl"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("ocitool push: error: required flag: --repository, e.g. 127.0.0.1:5000/etl/pkg")


@pytest.fixture
def secure_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    if registry_binary() is None:
        pytest.skip("docker-registry is not installed")
    from tools.testing.registry import RegistryToolMissing, htpasswd_line

    try:
        htpasswd_line("probe", "probe")
    except RegistryToolMissing as exc:
        pytest.skip(str(exc))
    with registry_server(users={"ci": "s3cret"}, work_dir=tmp_path / "secure") as server:
        yield server


def test_basic_auth_from_docker_config(
    tmp_path: Path, secure_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = _image(tmp_path)
    repo = secure_registry.repository("etl/secure")
    with pytest.raises(
        RegistryAuthError,
        match=rf"registry '{secure_registry.host}' requires credentials for repository 'etl/secure' \(401\)",
    ):
        push_layout(tmp_path / "layout", repo, log=lambda line: None)
    bad = write_docker_config(tmp_path / "bad", {secure_registry.host: ("ci", "wrong")})
    monkeypatch.setenv("DOCKER_CONFIG", str(bad.parent))
    with pytest.raises(
        RegistryAuthError,
        match=rf"registry '{secure_registry.host}' rejected the credentials from .*config.json "
        r"for repository 'etl/secure' \(401",
    ):
        push_layout(tmp_path / "layout", repo, log=lambda line: None)
    good = write_docker_config(tmp_path / "good", {"http://" + secure_registry.host: ("ci", "s3cret")})
    monkeypatch.setenv("DOCKER_CONFIG", str(good.parent))
    result = push_layout(tmp_path / "layout", repo, ["dev"], log=lambda line: None)
    assert result.manifest_digest == image.manifest_digest
    assert manifest_exists(repo, image.manifest_digest)
    # and the CLI prints the same one line, exit 1
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-empty"))
    proc = run_cli("push", "--layout", str(tmp_path / "layout"), "--repository", repo)
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"ocitool push: error: registry '{secure_registry.host}' requires credentials for repository 'etl/secure'"
        )
    )


def test_bearer_token_challenge(tmp_path: Path, registry: RegistryServer, monkeypatch: pytest.MonkeyPatch) -> None:
    image = _image(tmp_path)
    with registry_front(registry.host) as front:
        front.token_user = ("robot", "tok3n")
        repo = f"{front.host}/etl/bearer"
        with pytest.raises(
            RegistryAuthError,
            match=rf"token service 'http://{front.host}/token' .* rejected",
        ):
            push_layout(tmp_path / "layout", repo, log=lambda line: None)
        cfg = write_docker_config(tmp_path / "cfg", {front.host: ("robot", "tok3n")})
        monkeypatch.setenv("DOCKER_CONFIG", str(cfg.parent))
        result = push_layout(tmp_path / "layout", repo, ["dev"], log=lambda line: None)
        assert result.manifest_digest == image.manifest_digest
        assert (
            "GET",
            "/token?scope=repository%3Aetl%2Fbearer%3Apull%2Cpush&service=front",
            200,
        ) in front.seen


class _NotARegistry(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "9")
        self.end_headers()
        self.wfile.write(b"not found")

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_404_names_registry_and_repository(tmp_path: Path) -> None:
    _image(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotARegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host = f"127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(
            RegistryNotFoundError,
            match=rf"registry '{host}' has no repository 'etl/missing' \(404 on GET /v2/: not found\)",
        ):
            push_layout(tmp_path / "layout", f"{host}/etl/missing", log=lambda line: None)
    finally:
        server.shutdown()
        server.server_close()


def test_5xx_and_timeouts_are_retried(tmp_path: Path, registry: RegistryServer) -> None:
    image = _image(tmp_path)
    with registry_front(registry.host) as front:
        front.fail = lambda method, path: method == "PUT"  # blob upload PUTs and manifest PUTs
        front.fail_times = 3
        front.stall_seconds, front.stall_times = 1.5, 1
        result = push_layout(
            tmp_path / "layout",
            f"{front.host}/etl/flaky",
            ["dev"],
            timeout=0.5,
            retries=4,
            log=lambda line: None,
        )
        assert result.manifest_digest == image.manifest_digest
        assert sum(1 for m, _, s in front.seen if m == "PUT" and s == 503) == 3
    assert manifest_exists(registry.repository("etl/flaky"), image.manifest_digest)


def test_registry_down_gives_one_clear_line(tmp_path: Path, registry: RegistryServer) -> None:
    _image(tmp_path)
    registry.stop()
    with pytest.raises(
        RegistryUnavailableError,
        match=rf"registry '{registry.host}' \(repository 'etl/down'\) failed GET /v2/ 2 times, last: ConnectionRefusedError",
    ):
        push_layout(
            tmp_path / "layout",
            registry.repository("etl/down"),
            retries=1,
            log=lambda line: None,
        )


def test_chunked_upload(tmp_path: Path, registry: RegistryServer) -> None:
    image = _image(tmp_path)
    mark = registry.mark()
    push_layout(
        tmp_path / "layout",
        registry.repository("etl/chunked"),
        chunk_size=64,
        log=lambda line: None,
    )
    patches = [p for m, p, s in registry.requests_since(mark) if m == "PATCH" and s == 202]
    assert len(patches) >= 2
    assert manifest_exists(registry.repository("etl/chunked"), image.manifest_digest)


def test_repository_parsing_and_loopback_rule() -> None:
    assert parse_repository("127.0.0.1:5000/etl/pkg") == Repository("127.0.0.1:5000", "etl/pkg")
    assert parse_repository("localhost:5000/a").scheme == "http"
    assert parse_repository("[::1]:5000/a").scheme == "http"
    assert parse_repository("registry.example.com/team/pkg").scheme == "https"
    assert parse_repository("10.0.0.5:5000/pkg").scheme == "https"  # private is not loopback
    assert is_loopback("127.1.2.3:80") and not is_loopback("127.example.com")
    with pytest.raises(UsageError, match=r"--repository 'http://x.io/a' must not have a scheme"):
        parse_repository("http://x.io/a")
    with pytest.raises(UsageError, match=r"--repository 'x.io/a:tag' must not carry a tag or digest"):
        parse_repository("x.io/a:tag")
    with pytest.raises(UsageError, match=r"path 'Etl/Pkg' must be lower-case"):
        parse_repository("x.io/Etl/Pkg")
    with pytest.raises(UsageError, match=r"must look like registry.example.com\[:port\]/path"):
        parse_repository("justaname/pkg")


def test_docker_config_lookup(tmp_path: Path) -> None:
    cfg = write_docker_config(tmp_path, {"https://reg.example.com/v1/": ("u", "p:with:colons")})
    creds = docker_credentials("reg.example.com", cfg)
    assert creds is not None and (creds.username, creds.password) == (
        "u",
        "p:with:colons",
    )
    assert docker_credentials("other.example.com", cfg) is None
    assert docker_credentials("reg.example.com", tmp_path / "absent.json") is None
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(UsageError, match=r"cannot read Docker config '.*broken.json'"):
        docker_credentials("reg.example.com", tmp_path / "broken.json")
