"""Analysis tests: the registry prefix comes from the `//tools/bazel:image_repository` build setting.

Built with the setting at a non-default value, `:image.repository` (what `:push` pushes to), the
DAG renderer and metadata.json all use that value; nothing copies the setting's default.
"""

load("@bazel_skylib//lib:unittest.bzl", "analysistest", "asserts")

PREFIX = "registry.example.com/etl"
_SETTINGS = {str(Label("//tools/bazel:image_repository")): PREFIX}

def _repository_file_impl(ctx):
    env = analysistest.begin(ctx)
    writes = [a for a in analysistest.target_actions(env) if a.mnemonic == "FileWrite"]
    asserts.equals(env, 1, len(writes))
    asserts.equals(env, "%s/%s\n" % (PREFIX, ctx.attr.image_name), writes[0].content)
    return analysistest.end(env)

repository_file_test = analysistest.make(
    _repository_file_impl,
    attrs = {"image_name": attr.string(mandatory = True)},
    config_settings = _SETTINGS,
)

def _push_impl(ctx):
    env = analysistest.begin(ctx)
    target = analysistest.target_under_test(env)
    launcher = [a for a in analysistest.target_actions(env) if a.mnemonic == "FileWrite"]
    asserts.equals(env, 1, len(launcher))
    script = launcher[0].content
    repository_file = ctx.attr.repository_file
    asserts.true(env, '--repository "$(head -n 1 "%s")"' % repository_file in script, "push reads %s: %s" % (repository_file, script))
    asserts.false(env, "localhost:5000" in script, "push copies the default: " + script)
    runfiles = [f.short_path for f in target[DefaultInfo].default_runfiles.files.to_list()]
    asserts.true(env, repository_file in runfiles, "%s not in the runfiles of push" % repository_file)
    return analysistest.end(env)

push_test = analysistest.make(
    _push_impl,
    attrs = {"repository_file": attr.string(mandatory = True)},
    config_settings = _SETTINGS,
)

def _renderer_impl(ctx):
    env = analysistest.begin(ctx)
    actions = [a for a in analysistest.target_actions(env) if a.mnemonic == ctx.attr.mnemonic]
    asserts.equals(env, 1, len(actions))
    argv = actions[0].argv
    asserts.true(env, "--repository" in argv, "no --repository in %s" % argv)
    asserts.equals(env, PREFIX, argv[argv.index("--repository") + 1])
    return analysistest.end(env)

renderer_test = analysistest.make(
    _renderer_impl,
    attrs = {"mnemonic": attr.string(mandatory = True)},
    config_settings = _SETTINGS,
)
