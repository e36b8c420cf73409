"""`oci_image`: a deterministic OCI image layout, named and shaped after rules_oci's `oci_image`."""

load(":providers.bzl", "OciImageInfo")

def _oci_image_impl(ctx):
    layout = ctx.actions.declare_directory(ctx.label.name)
    digest = ctx.outputs.digest
    listing = ctx.outputs.listing
    sbom = ctx.outputs.sbom

    args = ctx.actions.args()
    args.add("image")
    args.add("--out", layout.path)
    args.add("--base", ctx.file.base)
    for tar in ctx.files.tars:
        args.add("--layer", tar)
    if ctx.attr.entrypoint:
        args.add("--entrypoint", json.encode(ctx.attr.entrypoint))
    if ctx.attr.cmd:
        args.add("--cmd", json.encode(ctx.attr.cmd))
    for key in sorted(ctx.attr.env):
        args.add("--env", "%s=%s" % (key, ctx.attr.env[key]))
    if ctx.attr.user:
        args.add("--user", ctx.attr.user)
    if ctx.attr.workdir:
        args.add("--workdir", ctx.attr.workdir)
    for key in sorted(ctx.attr.labels):
        args.add("--label", "%s=%s" % (key, ctx.attr.labels[key]))
    args.add("--created", "0")
    args.add("--digest-out", digest)
    args.add("--listing-out", listing)
    args.add("--listing-skip-base")
    args.add("--sbom-out", sbom)
    args.add("--name", str(ctx.label))
    inputs = [ctx.file.base] + ctx.files.tars
    if ctx.file.base_lock:
        args.add("--deb-lock", ctx.file.base_lock)
        inputs.append(ctx.file.base_lock)

    ctx.actions.run(
        executable = ctx.executable._ocitool,
        arguments = [args],
        inputs = inputs,
        outputs = [layout, digest, listing, sbom],
        mnemonic = "OciImage",
        progress_message = "Writing OCI image %{label}",
    )
    return [
        DefaultInfo(files = depset([layout, digest])),
        OciImageInfo(layout = layout, digest = digest),
        OutputGroupInfo(listing = depset([listing]), sbom = depset([sbom])),
    ]

oci_image = rule(
    implementation = _oci_image_impl,
    doc = """An OCI image layout directory, byte-for-byte reproducible.

Outputs `:<name>` (the layout directory), `:<name>.digest` (`sha256:<hex>` of the manifest, as
rules_oci), `:<name>.listing.txt` (sorted file listing of the non-base layers, for golden tests) and
`:<name>.sbom.json` (SPDX 2.3: every .deb of the base and every wheel).""",
    attrs = {
        "base": attr.label(
            mandatory = True,
            allow_single_file = True,
            doc = "Base: a layer `.tar.gz` or an OCI layout, e.g. `//tools/bazel/images:debian_python`. rules_oci takes an `oci_image`/`oci_pull` here.",
        ),
        "base_lock": attr.label(
            allow_single_file = [".json"],
            doc = "The base's package lock (JSON), listed in the SBOM. Optional.",
        ),
        "tars": attr.label_list(
            allow_files = [".tar", ".tar.gz", ".tgz"],
            doc = "Layers on top of the base, bottom first, e.g. `[\":layers\"]`. Default none.",
        ),
        "entrypoint": attr.string_list(doc = "Entrypoint argv, e.g. `[\"/usr/bin/python3.13\", \"-m\"]`. Default none."),
        "cmd": attr.string_list(doc = "Default arguments after the entrypoint, e.g. `[\"pkg.jobs.main\"]`. Default none."),
        "env": attr.string_dict(doc = "Environment, e.g. `{\"PYTHONPATH\": \"/app\"}`. Default none."),
        "user": attr.string(doc = "User to run as, e.g. `65532` or `65532:65532`. Default: the base's (root)."),
        "workdir": attr.string(doc = "Working directory, e.g. `/app`. Default: the base's."),
        "labels": attr.string_dict(doc = "OCI config labels, e.g. `{\"org.opencontainers.image.source\": \"...\"}`. Default none."),
        "_ocitool": attr.label(
            default = "//tools/bazel/ocitool:ocitool_cli",
            executable = True,
            cfg = "exec",
        ),
    },
    outputs = {
        "digest": "%{name}.digest",
        "listing": "%{name}.listing.txt",
        "sbom": "%{name}.sbom.json",
    },
)
