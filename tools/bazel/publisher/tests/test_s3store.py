"""The publisher's S3 store (publisher._s3store, on s3http) against real moto servers: SigV4 checked by
moto's IAM auth, awkward keys, conditional writes, paging, the
botocore credential fallback, and error statuses injected by a small proxy in front of moto."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.bazel.publisher import _s3store
from tools.bazel.publisher._s3store import S3Store
from tools.bazel.publisher.errors import PreconditionFailedError, StoreError
from tools.bazel.publisher.tests.helpers import Harness
from tools.bazel.retrypolicy import RetryPolicy
from tools.bazel.s3http.tests.awkward import AWKWARD_KEYS
from tools.testing.s3faults import fault_proxy
from tools.testing.servers import MotoServer, create_iam_users, iam_requests, moto_server

ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
ADMIN = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:*", "sts:AssumeRole"], "Resource": "*"}],
}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
}
AWS_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CA_BUNDLE",
)


def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **values: str) -> None:
    for name in AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_bad_endpoint_is_refused_when_the_store_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(
        monkeypatch, tmp_path, AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s", AWS_ENDPOINT_URL_S3="s3-only:9000"
    )
    with pytest.raises(
        StoreError, match=r"^opening 's3://my-dags': invalid AWS_ENDPOINT_URL 's3-only:9000': must be an http"
    ):
        S3Store(bucket="my-dags")


# -- moto with IAM auth: every request's signature is checked -----------------------------------


@pytest.fixture(scope="module")
def iam_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MotoServer, dict[str, Any]]]:
    """A moto server that checks SigV4 and IAM policies after the setup below, and its keys."""
    users = {"admin": ADMIN, "nobody": None}
    with moto_server(
        log_dir=tmp_path_factory.mktemp("iam-moto"),
        unchecked_requests=iam_requests(users) + 2,  # + the role and its policy below
    ) as server:
        keys: dict[str, Any] = create_iam_users(server, users)
        iam = server.client("iam")
        role = iam.create_role(RoleName="publisher", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
        iam.put_role_policy(RoleName="publisher", PolicyName="p", PolicyDocument=json.dumps(ALLOW_ALL))
        # from here on every request is checked
        sts = server.client("sts", key=keys["admin"])
        temp = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="publish")["Credentials"]
        keys["role"] = (temp["AccessKeyId"], temp["SecretAccessKey"], temp["SessionToken"])
        server.client(key=keys["admin"]).create_bucket(Bucket="dags-auth")
        yield server, keys


def _use(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: MotoServer, key: tuple[str, ...]) -> S3Store:
    _clean_env(
        monkeypatch,
        tmp_path,
        AWS_ENDPOINT_URL=server.endpoint_url,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID=key[0],
        AWS_SECRET_ACCESS_KEY=key[1],
    )
    if len(key) > 2:
        monkeypatch.setenv("AWS_SESSION_TOKEN", key[2])
    return S3Store(bucket="dags-auth")


@pytest.mark.parametrize("who", ["admin", "role"])
def test_signed_requests_with_awkward_keys_round_trip(
    who: str, iam_moto: tuple[MotoServer, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, keys = iam_moto
    store = _use(monkeypatch, tmp_path, server, keys[who])
    base = f"{who}/"
    written = {}
    for n, key in enumerate(AWKWARD_KEYS):
        data = f"payload {n} {key}".encode()
        written[base + key] = (store.put(base + key, data, if_none_match=True), data)
    for key, (etag, data) in written.items():
        got = store.get(key)
        assert got is not None and (got.data, got.etag) == (data, etag)
        info = store.head(key)
        assert info is not None
        assert (info.size, info.etag, info.sha256) == (len(data), etag, hashlib.sha256(data).hexdigest())
    assert sorted(i.key for i in store.iter_objects(base)) == sorted(written)
    assert store.list_dirs(base + "dev/pkg/") == ["ünïcødé"]
    src = base + AWKWARD_KEYS[2]
    etag = store.copy(src, base + "copies/" + AWKWARD_KEYS[3], src_etag=written[src][0])
    copied = store.head(base + "copies/" + AWKWARD_KEYS[3])
    assert copied is not None and copied.etag == etag and copied.sha256 == hashlib.sha256(written[src][1]).hexdigest()
    for key in [*written, base + "copies/" + AWKWARD_KEYS[3]]:
        store.delete(key)
    assert list(store.iter_objects(base)) == []


def test_wrong_secret_and_missing_policy_fail_with_one_clear_line(
    iam_moto: tuple[MotoServer, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, keys = iam_moto
    store = _use(monkeypatch, tmp_path, server, (keys["admin"][0], "wrong-secret"))
    with pytest.raises(
        StoreError,
        match=r"^writing 's3://dags-auth/dev/x.py': SignatureDoesNotMatch: .*"
        r"\(check the AWS credentials in use\)$",
    ):
        store.put("dev/x.py", b"x")
    with pytest.raises(StoreError, match=r"^listing 's3://dags-auth/dev/': SignatureDoesNotMatch"):
        list(store.iter_objects("dev/"))
    store = _use(monkeypatch, tmp_path, server, keys["nobody"])
    with pytest.raises(StoreError, match=r"^reading 's3://dags-auth/dev/x.py': access denied \(check the IAM"):
        store.get("dev/x.py")
    with pytest.raises(StoreError, match=r"^checking 's3://dags-auth/dev/x.py': access denied"):
        store.head("dev/x.py")


def test_botocore_fallback_reads_a_shared_credentials_file(
    iam_moto: tuple[MotoServer, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, keys = iam_moto
    _clean_env(monkeypatch, tmp_path, AWS_ENDPOINT_URL=server.endpoint_url, AWS_PROFILE="publisher")
    (tmp_path / "credentials").write_text(
        f"[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n"
        f"[publisher]\naws_access_key_id = {keys['admin'][0]}\naws_secret_access_key = {keys['admin'][1]}\n"
    )
    (tmp_path / "config").write_text("[profile publisher]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    store = S3Store(bucket="dags-auth")
    assert store.region == "eu-west-1"
    etag = store.put("fallback/x.json", b"{}")
    got = store.get("fallback/x.json")
    assert got is not None and (got.data, got.etag) == (b"{}", etag)
    store.delete("fallback/x.json")


def test_no_credentials_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch, tmp_path, AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_REGION="us-east-1")
    store = S3Store(bucket="dags")
    with pytest.raises(
        StoreError,
        match=r"^reading 's3://dags/dev/x.py': no AWS credentials found \(set "
        r"AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
    ):
        store.get("dev/x.py")


# -- the shared moto server of the other publisher tests (no IAM) --------------------------------


def test_conditional_writes_and_missing_objects(s3: Harness) -> None:
    store = s3.store()
    assert store.get("dev/p/none.py") is None and store.head("dev/p/none.py") is None
    store.delete("dev/p/none.py")  # already gone: fine
    first = store.put("dev/p/a.json", b"1", if_none_match=True)
    with pytest.raises(PreconditionFailedError, match=r"^writing 's3://dags-[0-9a-f]+/dev/p/a.json': precondition"):
        store.put("dev/p/a.json", b"2", if_none_match=True)
    with pytest.raises(PreconditionFailedError):
        store.put("dev/p/a.json", b"2", if_match="0" * 32)
    with pytest.raises(
        PreconditionFailedError, match=r"^writing .*none.json': precondition failed \(the object is gone\)$"
    ):
        store.put("dev/p/none.json", b"2", if_match=first)
    second = store.put("dev/p/a.json", b"2", if_match=first)
    assert second != first
    # (a stale src_etag on copy is tested with an injected 412: moto 5.2 ignores x-amz-copy-source-if-match)
    assert store.copy("dev/p/a.json", "dev/p/b.json", src_etag=second) == second
    with pytest.raises(StoreError, match=r"^copying .*none.py' to .*c.py': NoSuchKey: "):
        store.copy("dev/p/none.py", "dev/p/c.py")
    with pytest.raises(PreconditionFailedError, match=r"^deleting .*/dev/p/a.json': precondition failed"):
        store.delete("dev/p/a.json", if_match=first)
    store.delete("dev/p/a.json", if_match=second)
    assert store.head("dev/p/a.json") is None
    with pytest.raises(PreconditionFailedError, match=r"^deleting .*/dev/p/a.json': precondition failed"):
        store.delete("dev/p/a.json", if_match=second)


def test_missing_bucket(s3: Harness) -> None:
    store = S3Store(bucket="no-such-bucket-here")
    with pytest.raises(StoreError, match=r"^writing 's3://no-such-bucket-here/k': bucket 'no-such-bucket-here' does"):
        store.put("k", b"x")
    with pytest.raises(StoreError, match=r"^listing 's3://no-such-bucket-here/dev/': bucket .* does not exist"):
        store.list_dirs("dev/")


def test_listing_pages_are_followed_lazily(s3: Harness) -> None:
    store = s3.store()
    assert isinstance(store, S3Store)
    keys = [f"dev/p{n}/k {n:02d}+.py" for n in range(7)]
    for key in keys:
        store.put(key, b"x")
    store.max_keys = 3
    mark = s3.mark()
    assert [i.key for i in store.iter_objects("dev/")] == keys
    assert store.list_dirs("dev/") == [f"p{n}" for n in range(7)]
    first = next(iter(store.iter_objects("dev/")))
    assert first.key == keys[0] and first.size == 1
    lists = [p for _, p in s3.requests_since(mark)]
    assert len(lists) == 3 + 3 + 1, lists
    assert sum("continuation-token=" in p for p in lists) == 4


def test_a_publish_with_env_credentials_does_not_import_botocore(s3: Harness) -> None:
    child = textwrap.dedent(f"""
        import sys
        from tools.bazel.publisher.store import open_store
        store = open_store({s3.url!r})
        store.put("dev/p/x y.py", b"data")
        assert store.get("dev/p/x y.py").data == b"data"
        assert [i.key for i in store.iter_objects("dev/")] == ["dev/p/x y.py"]
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("botocore", "boto3", "urllib3")))
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run(
        [sys.executable, "-c", child], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- injected faults: retries, redirects ---------------------------------------------------------


def test_retries_redirects_and_connection_errors(s3: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_s3store, "RETRY", RetryPolicy(retries=2, backoff=0.01))
    s3.store().put("dev/p/a.py", b"a")
    with fault_proxy(s3.moto) as (endpoint, faults):
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        store = S3Store(bucket=str(s3.bucket))
        faults.add("/dev/p/a.py", 503, "SlowDown", 2)  # two throttles, then it answers
        got = store.get("dev/p/a.py")
        assert got is not None and got.data == b"a"
        assert sum("/dev/p/a.py" in p for p in faults.seen) == 3
        faults.add("/dev/p/b.py", 500, "InternalError", 3)
        with pytest.raises(StoreError, match=r"^writing 's3://.*/dev/p/b.py': InternalError: injected$"):
            store.put("dev/p/b.py", b"b")
        faults.add("/dev/p/c.py", 400, "InvalidArgument", 1)  # a client error: not retried
        with pytest.raises(StoreError, match=r"^reading .*/dev/p/c.py': InvalidArgument: injected$"):
            store.get("dev/p/c.py")
        assert sum("/dev/p/c.py" in p for p in faults.seen) == 1
        faults.add("/dev/p/e.py", 412, "PreconditionFailed", 1)
        with pytest.raises(
            PreconditionFailedError,
            match=r"^copying 's3://.*/dev/p/a.py' to .*/dev/p/e.py': "
            r"precondition failed \(injected\)$",
        ):
            store.copy("dev/p/a.py", "dev/p/e.py", src_etag=got.etag)
        faults.add("/dev/p/f.py", 200, "InternalError", 1)  # S3 can fail a copy after its 200 status line
        assert store.copy("dev/p/a.py", "dev/p/f.py", src_etag=got.etag) == got.etag
        assert sum("/dev/p/f.py" in p for p in faults.seen) == 2
        faults.add("/dev/p/d.py", 301, "PermanentRedirect", 1, {"x-amz-bucket-region": "eu-west-2"})
        with pytest.raises(
            StoreError,
            match=r"^reading .*/dev/p/d.py': bucket 'dags-[0-9a-f]+' is in region "
            r"'eu-west-2', not 'us-east-1'; set AWS_REGION=eu-west-2$",
        ):
            store.get("dev/p/d.py")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)  # the proxy is gone: connection refused
    with pytest.raises(StoreError, match=r"^reading .*/dev/p/a.py': ConnectionRefusedError: .*after 3 attempts"):
        S3Store(bucket=str(s3.bucket)).get("dev/p/a.py")
