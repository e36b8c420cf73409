"""The `pypi` module extension: third-party wheels from one hashed lock, one target per distribution.

rules_python 0.22.1's `pip.parse` cannot run on Python 3.13 (its bundled setuptools crashes), so this
project installs its lock itself. One repository (`@pypi`) runs `uv pip install --no-deps
--require-hashes --target site-packages` of `requirements_lock.txt`, byte-compiles it, and generates a
BUILD file with one `py_library` per distribution (`@pypi//:boto3`), whose files come from the
wheel's RECORD and whose deps come from its METADATA `Requires-Dist`, markers evaluated for the
target interpreter and extras propagated from `requirements.in`. Dependency cycles between
distributions are merged into one library.

All wheels share one import root (`site-packages`), so a test's sys.path grows by one entry, not by
one per wheel; a py_binary or image still gets only the files of the distributions it depends on.

uv keeps downloaded wheels in its cache (inside the toolchain root), so a changed pin downloads only
the changed wheel; the install from cache is re-run (a few seconds).
"""

_PLATFORM_ARGS = [
    "--python-version",
    "3.13",
    "--python-platform",
    "x86_64-unknown-linux-gnu",
]

def _find_tool(rctx, name, fallback):
    path = rctx.which(name)
    if path == None:
        path = rctx.path(fallback)
        if not path.exists:
            fail("@%s: %r not found on PATH or at %s: run Bazel through ./bazelw, which provides it" % (
                rctx.attr.repo_name,
                name,
                fallback,
            ))
    return path

def _pypi_repo_impl(rctx):
    uv = _find_tool(rctx, "uv", "/opt/etl-tools/bin/uv")
    python = rctx.path(rctx.attr.python)
    if not python.exists:
        fail("@%s: Python interpreter %s does not exist: run Bazel through ./bazelw" % (rctx.attr.repo_name, python))
    lock = rctx.path(rctx.attr.lock)
    requirements = rctx.path(rctx.attr.requirements)
    generator = rctx.path(rctx.attr._generator)

    env = {
        "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
        "UV_NATIVE_TLS": "1",
        "UV_NO_PROGRESS": "1",
    }
    for name in ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "PIP_INDEX_URL", "UV_CACHE_DIR", "HTTPS_PROXY", "https_proxy"):
        value = rctx.os.environ.get(name)
        if value:
            env[name] = value
    if "UV_DEFAULT_INDEX" not in env and "PIP_INDEX_URL" in env:
        env["UV_DEFAULT_INDEX"] = env["PIP_INDEX_URL"]

    rctx.report_progress("installing %s with uv" % rctx.attr.lock.name)
    result = rctx.execute(
        [
            uv,
            "pip",
            "install",
            "--no-deps",
            "--require-hashes",
            "--no-build",
            "--link-mode",
            "copy",
            "--target",
            "site-packages",
            "--python",
            python,
            "-r",
            lock,
        ] + _PLATFORM_ARGS,
        environment = env,
        timeout = 1800,
        quiet = True,
    )
    if result.return_code != 0:
        fail("@%s: installing %s failed (uv exit %d). A hash mismatch names the distribution; " % (
            rctx.attr.repo_name,
            rctx.attr.lock,
            result.return_code,
        ) + "fix the pin or run `./bazelw run //:requirements.update`:\n" + result.stderr)

    # Byte-compilation is not done here but in build actions (pyc.bzl): parallel, and cacheable
    # locally and remotely, so the fetch costs what uv costs.
    rctx.report_progress("generating BUILD from wheel metadata")

    # The generator needs `packaging`: the toolchain root's tools venv has it; elsewhere it comes
    # from the lock itself (site-packages).
    gen_python = rctx.path("/opt/etl-tools/bin/python")
    if not gen_python.exists:
        gen_python = python
    result = rctx.execute(
        [
            gen_python,
            generator,
            "--site",
            "site-packages",
            "--requirements",
            requirements,
            "--lock",
            lock,
            "--out",
            "BUILD.bazel",
            "--pyc-bzl",
            str(Label("//tools/bazel/private:pyc.bzl")),
        ],
        environment = {"PYTHONPATH": str(rctx.path("site-packages"))},
        timeout = 600,
        quiet = True,
    )
    if result.return_code != 0:
        fail("@%s: generating BUILD.bazel from wheel metadata failed:\n%s%s" % (rctx.attr.repo_name, result.stdout, result.stderr))
    rctx.file("WORKSPACE", "")

_pypi_repo = repository_rule(
    implementation = _pypi_repo_impl,
    doc = "Installs a hashed requirements lock with uv and exposes one py_library per distribution.",
    attrs = {
        "lock": attr.label(
            mandatory = True,
            allow_single_file = True,
            doc = "The hashed lock (`uv pip compile --generate-hashes`), e.g. `//:requirements_lock.txt`.",
        ),
        "repo_name": attr.string(doc = "The name users write (`pypi`), for messages."),
        "python": attr.string(
            default = "/usr/bin/python3.13",
            doc = "Interpreter that installs, byte-compiles and reads metadata. Default `/usr/bin/python3.13`.",
        ),
        "requirements": attr.label(
            mandatory = True,
            allow_single_file = True,
            doc = "The unlocked input (`requirements.in`): its extras (`moto[server]`) decide which optional deps are linked.",
        ),
        "_generator": attr.label(default = "//tools/bazel/private:pypi_build_gen.py", allow_single_file = True),
    },
    environ = ["UV_INDEX_URL", "UV_DEFAULT_INDEX", "PIP_INDEX_URL", "UV_CACHE_DIR"],
)

_install = tag_class(
    doc = "Declares one wheel repository.",
    attrs = {
        "name": attr.string(default = "pypi", doc = "Repository name. Default `pypi`."),
        "lock": attr.label(mandatory = True, doc = "Hashed lock file, e.g. `//:requirements_lock.txt`."),
        "requirements": attr.label(mandatory = True, doc = "`requirements.in`, for extras."),
        "python": attr.string(default = "/usr/bin/python3.13", doc = "Interpreter. Default `/usr/bin/python3.13`."),
    },
)

def _pypi_impl(mctx):
    for mod in mctx.modules:
        for tag in mod.tags.install:
            _pypi_repo(name = tag.name, repo_name = tag.name, lock = tag.lock, requirements = tag.requirements, python = tag.python)

pypi = module_extension(
    implementation = _pypi_impl,
    tag_classes = {"install": _install},
    doc = "Third-party Python wheels from a uv lock: `pypi.install(name, lock, requirements)`.",
)
