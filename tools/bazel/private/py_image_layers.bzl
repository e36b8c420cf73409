"""`py_image_layers`: split a Python program's runfiles into a wheels layer and an app layer.

Third-party files (from the `@pypi` repository) go to `/opt/etl/site-packages/` in one layer, the
workspace's own files to `/app/` in another, so a code-only change rebuilds and uploads only the
small app layer. Only the distributions the program depends on are included.
"""

load(":providers.bzl", "PyImageLayersInfo")

SITE_PACKAGES = "/opt/etl/site-packages"
APP_ROOT = "/app"

def _image_path(f, pypi_repo_marker):
    """Where a runfile goes in the image, and which layer: ("deps"|"app"|None, path)."""
    repo = f.owner.workspace_name if f.owner else ""
    if repo and pypi_repo_marker in repo:
        short = f.short_path  # ../<repo>/site-packages/<path>
        idx = short.find("/site-packages/")
        if idx < 0:
            return (None, None)
        return ("deps", SITE_PACKAGES + "/" + short[idx + len("/site-packages/"):])
    if repo:
        return (None, None)  # toolchain repos (bazel_tools, rules_python) are not needed at run time
    return ("app", APP_ROOT + "/" + f.short_path)

def _pythonpath(imports, pypi_repo_marker):
    paths = [APP_ROOT]
    for imp in imports:
        repo, _, rest = imp.partition("/")
        if pypi_repo_marker in repo:
            path = SITE_PACKAGES
        elif repo == "_main":
            path = APP_ROOT + ("/" + rest if rest else "")
        else:
            continue
        if path not in paths:
            paths.append(path)
    return paths

def _py_image_layers_impl(ctx):
    files = depset(transitive = [d[DefaultInfo].default_runfiles.files for d in ctx.attr.deps])
    entries = {"app": [], "deps": []}
    for f in files.to_list():
        layer, path = _image_path(f, ctx.attr.pypi_repo_marker)
        if layer:
            entry = {"path_in_image": path, "src": f.path}
            if not f.is_source:
                # Bazel leaves every action output executable (0555): give generated files (.pyc)
                # the mode the file would have had in a wheel.
                entry["mode"] = "0644"
            entries[layer].append(entry)
    imports = depset(transitive = [d[PyInfo].imports for d in ctx.attr.deps if PyInfo in d]).to_list()

    outputs = {}
    for layer in ("deps", "app"):
        manifest = ctx.actions.declare_file("%s.%s_layer.json" % (ctx.label.name, layer))
        ctx.actions.write(manifest, json.encode(sorted(entries[layer], key = lambda e: e["path_in_image"])))
        out = ctx.actions.declare_file("%s.%s_layer.tar.gz" % (ctx.label.name, layer))
        args = ctx.actions.args()
        args.add("layer")
        args.add("--out", out)
        args.add("--manifest", manifest)
        args.add("--mtime", "0")
        if layer == "app":
            args.add("--compile-pyc")  # wheels arrive byte-compiled (unchecked-hash) from @pypi
        ctx.actions.run(
            executable = ctx.executable._ocitool,
            arguments = [args],
            inputs = depset([manifest], transitive = [files]),
            outputs = [out],
            mnemonic = "OciImageLayer",
            progress_message = "Writing %s layer of %%{label}" % layer,
        )
        outputs[layer] = out

    return [
        DefaultInfo(files = depset([outputs["deps"], outputs["app"]])),
        PyImageLayersInfo(
            deps_layer = outputs["deps"],
            app_layer = outputs["app"],
            pythonpath = _pythonpath(imports, ctx.attr.pypi_repo_marker),
        ),
    ]

py_image_layers = rule(
    implementation = _py_image_layers_impl,
    doc = "Layers of a Python program: third-party wheels (`<name>.deps_layer.tar.gz`) and first-party code (`<name>.app_layer.tar.gz`).",
    attrs = {
        "deps": attr.label_list(
            mandatory = True,
            providers = [PyInfo],
            doc = "py_library/py_binary targets whose runfiles make up the program, e.g. `[\":file_processing\"]`.",
        ),
        "pypi_repo_marker": attr.string(
            default = "pypi",
            doc = "Substring of the canonical name of the wheel repository. Default `pypi` (`@pypi`).",
        ),
        "_ocitool": attr.label(
            default = "//tools/bazel/ocitool:ocitool_cli",
            executable = True,
            cfg = "exec",
        ),
    },
)
