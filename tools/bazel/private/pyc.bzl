"""`pyc_compile`: byte-compile third-party sources in a build action, next to them in runfiles.

The `@pypi` repository only installs wheels (the fetch stays as fast as uv itself); this rule
compiles each distribution's `.py` files to `__pycache__/<mod>.cpython-313.pyc` (unchecked-hash,
valid whatever the file mtimes) as ordinary, parallel and remote-cacheable actions. The outputs sit
at the same runfiles paths as the sources' `__pycache__`, so imports in tests and images use them.
"""

def _pyc_compile_impl(ctx):
    outs = []
    args = ctx.actions.args()
    args.use_param_file("@%s", use_always = True)
    args.set_param_file_format("multiline")
    for src in ctx.files.srcs:
        rel = src.short_path
        marker = "/site-packages/"
        idx = rel.find(marker)
        if idx < 0:
            fail("pyc_compile(name=%r): %s is not under site-packages/" % (ctx.label.name, rel))
        inner = rel[idx + 1:]  # site-packages/pkg/mod.py
        head, _, tail = inner.rpartition("/")
        out = ctx.actions.declare_file("%s__pycache__/%s.%s.pyc" % (head + "/" if head else "", tail[:-len(".py")], ctx.attr.cache_tag))
        outs.append(out)
        args.add(src)
        args.add(out)
        args.add(inner[len("site-packages/"):])  # the name shown in tracebacks
    if outs:
        ctx.actions.run(
            executable = ctx.executable._compiler,
            arguments = [args],
            inputs = ctx.files.srcs,
            outputs = outs,
            mnemonic = "PyCompile",
            progress_message = "Byte-compiling %d files of %%{label}" % len(outs),
        )
    return [DefaultInfo(files = depset(outs), runfiles = ctx.runfiles(files = outs))]

pyc_compile = rule(
    implementation = _pyc_compile_impl,
    doc = "Byte-compiles `srcs` (files under `site-packages/`) into `__pycache__` beside them.",
    attrs = {
        "srcs": attr.label_list(allow_files = [".py"], doc = "Python sources under `site-packages/`."),
        "cache_tag": attr.string(default = "cpython-313", doc = "The interpreter's `sys.implementation.cache_tag`. Default `cpython-313`."),
        "_compiler": attr.label(default = Label("//tools/bazel/private:pyc_compiler"), executable = True, cfg = "exec"),
    },
)
