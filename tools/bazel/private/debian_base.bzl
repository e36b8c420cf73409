"""The `debian_base` module extension: the images' Debian 13 Python 3.13 base layer, from a lock.

The repository rule runs `ocitool base` (mmdebstrap --variant=extract with every package pinned) —
network is allowed here, never in build actions — and checks the .deb files and the resulting
tarball against the lock. If the mirror no longer serves a pinned version, the error names it and
says to run `./bazelw run //tools/bazel/images:base.update`.
"""

_UPDATE = "./bazelw run //tools/bazel/images:base.update"

def _debian_base_repo_impl(rctx):
    lock = rctx.path(rctx.attr.lock)
    tools_dir = rctx.path(rctx.attr._ocitool_init).dirname.dirname
    for f in rctx.path(rctx.attr._ocitool_init).dirname.readdir():
        if f.basename.endswith(".py"):
            rctx.watch(f)
    mirror = rctx.os.environ.get("BAZELW_DEBIAN_MIRROR") or rctx.os.environ.get("DEBIAN_MIRROR") or "auto"
    rctx.report_progress("building the Debian base layer with mmdebstrap")
    result = rctx.execute(
        [rctx.attr.python, "-m", "ocitool", "base", "--packages", lock, "--mirror", mirror, "--out", "base.tar.gz", "--update-command", _UPDATE],
        environment = {"PYTHONPATH": str(tools_dir), "SOURCE_DATE_EPOCH": "0"},
        timeout = 1200,
        quiet = True,
    )
    if result.return_code != 0:
        fail("@%s: building the base layer from %s failed:\n%s%s" % (rctx.attr.repo_name, rctx.attr.lock, result.stdout[-2000:], result.stderr[-4000:]))
    rctx.file("BUILD.bazel", 'exports_files(["base.tar.gz"], visibility = ["//visibility:public"])\n')
    rctx.file("WORKSPACE", "")

_debian_base_repo = repository_rule(
    implementation = _debian_base_repo_impl,
    attrs = {
        "lock": attr.label(mandatory = True, allow_single_file = [".json"]),
        "repo_name": attr.string(),
        "python": attr.string(default = "/usr/bin/python3.13"),
        "_ocitool_init": attr.label(default = "//tools/bazel/ocitool:__init__.py", allow_single_file = True),
    },
    environ = ["BAZELW_DEBIAN_MIRROR", "DEBIAN_MIRROR"],
)

_base = tag_class(
    doc = "Declares one base layer repository.",
    attrs = {
        "name": attr.string(mandatory = True, doc = "Repository name, e.g. `debian_python`."),
        "lock": attr.label(mandatory = True, doc = "The base lock, e.g. `//tools/bazel/images:base.lock.json`."),
    },
)

def _debian_base_impl(mctx):
    for mod in mctx.modules:
        for tag in mod.tags.base:
            _debian_base_repo(name = tag.name, repo_name = tag.name, lock = tag.lock)

debian_base = module_extension(
    implementation = _debian_base_impl,
    tag_classes = {"base": _base},
    doc = "Debian base layers built from a package lock: `debian_base.base(name, lock)`.",
)
