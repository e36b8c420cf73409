"""`debian_base_layer`: the images' Debian 13 Python 3.13 base layer, built from a lock by an action.

The action runs `ocitool base` (mmdebstrap --variant=extract with every package pinned) and checks
the .deb files and the resulting tarball against the lock, so its output is byte-identical wherever
it runs. Being an action (not a repository rule) makes the 23 MB result a cacheable output: a second
output base or a new CI machine downloads it from the remote cache instead of rebuilding it. The
action needs the Debian mirror (`requires-network`): the one in the toolchain root's apt sources, or
`--action_env=DEBIAN_MIRROR=http://...`. If the mirror no longer serves a pinned version, the error
names it and says to run `./bazelw run //tools/bazel/images:base.update`.
"""

_UPDATE = "./bazelw run //tools/bazel/images:base.update"

def _debian_base_layer_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".tar.gz")
    ctx.actions.run(
        executable = ctx.executable._ocitool,
        arguments = ["base", "--quiet", "--packages", ctx.file.lock.path, "--out", out.path, "--update-command", _UPDATE],
        inputs = [ctx.file.lock],
        outputs = [out],
        mnemonic = "DebianBase",
        progress_message = "Building the Debian base layer %{label} with mmdebstrap (pinned .debs from the mirror)",
        # The mirror is named by the root's apt sources or DEBIAN_MIRROR (--action_env).
        use_default_shell_env = True,
        # mmdebstrap needs root, /tmp and the network; nothing of that can enter the output unchecked:
        # the tarball's sha256 is verified against the lock.
        execution_requirements = {"requires-network": "1", "no-sandbox": "1"},
    )
    return [DefaultInfo(files = depset([out]))]

debian_base_layer = rule(
    implementation = _debian_base_layer_impl,
    doc = "The Debian Python base layer (`.tar.gz`) from a base lock, verified against the lock's sha256.",
    attrs = {
        "lock": attr.label(mandatory = True, allow_single_file = [".json"], doc = "The base lock, e.g. `base.lock.json`."),
        "_ocitool": attr.label(default = "//tools/bazel/ocitool:ocitool_cli", executable = True, cfg = "exec"),
    },
)
