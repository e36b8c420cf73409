"""`image_repository`: the file naming where an image lives, `<image_repository build setting>/<name>`."""

load("@bazel_skylib//rules:common_settings.bzl", "BuildSettingInfo")

def _image_repository_impl(ctx):
    prefix = ctx.attr._prefix[BuildSettingInfo].value.rstrip("/")
    if not prefix:
        fail("image_repository(name=%r): --//tools/bazel:image_repository is empty: set it to a registry prefix, e.g. registry.example.com/etl" % ctx.label.name)
    out = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.write(out, "%s/%s\n" % (prefix, ctx.attr.image_name))
    return [DefaultInfo(files = depset([out]))]

image_repository = rule(
    implementation = _image_repository_impl,
    doc = """Writes a one-line file `<prefix>/<image_name>`, where `<prefix>` is the
`//tools/bazel:image_repository` build setting (e.g. `registry.example.com/etl`, default
`localhost:5000/etl`). Give it to `oci_push(repository_file = ...)`, so the push goes where the
build setting says, the same place the rendered DAGs pin:

    image_repository(name = "image.repository", image_name = "sidecar")
    oci_push(name = "push", image = ":image", repository_file = ":image.repository")

`etl_package` creates one for each package (`:image.repository`).""",
    attrs = {
        "image_name": attr.string(
            mandatory = True,
            doc = "The image's name under the prefix, e.g. `sidecar` or a package name.",
        ),
        "_prefix": attr.label(default = "//tools/bazel:image_repository"),
    },
)
