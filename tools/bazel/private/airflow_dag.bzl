"""`airflow_dag`: render one DAG spec into an Airflow DAG file pinned to an image digest."""

load("@bazel_skylib//rules:common_settings.bzl", "BuildSettingInfo")
load(":providers.bzl", "AirflowDagInfo", "OciImageInfo")

def _stem(f):
    return f.basename[:-len("." + f.extension)]

def _airflow_dag_impl(ctx):
    spec = ctx.file.spec
    dag_id = _stem(spec)
    out = ctx.actions.declare_file("%s/%s.py" % (ctx.attr.out_dir, dag_id))
    image = ctx.attr.image[OciImageInfo]
    repository = ctx.attr.repository or ctx.attr._repository_flag[BuildSettingInfo].value

    args = ctx.actions.args()
    args.add("render")
    args.add("--spec", spec.short_path)
    args.add("--package", ctx.attr.package)
    args.add("--repository", repository)
    args.add("--digest-file", image.digest)
    args.add("--target", "//%s:%s" % (ctx.label.package, ctx.label.name))
    inputs = [spec, image.digest]
    if ctx.file.entrypoints:
        args.add("--entrypoints", ctx.file.entrypoints)
        inputs.append(ctx.file.entrypoints)
    args.add("--out", out)
    ctx.actions.run(
        executable = ctx.executable._dagrender,
        arguments = [args],
        inputs = inputs,
        outputs = [out],
        mnemonic = "EtlDagRender",
        progress_message = "Rendering DAG %s from %s" % (dag_id, spec.short_path),
    )
    return [
        DefaultInfo(files = depset([out])),
        AirflowDagInfo(dag_id = dag_id, spec = spec, dag_file = out),
    ]

airflow_dag = rule(
    implementation = _airflow_dag_impl,
    doc = """Renders `dags/<dag_id>.yaml` into `<out_dir>/<dag_id>.py`: a KubernetesPodOperator DAG whose
image is `<repository>/<package>@sha256:<digest of image>`. The spec is validated first (pydantic);
a bad spec fails the build with the file and field, and nothing is rendered.""",
    attrs = {
        "spec": attr.label(
            mandatory = True,
            allow_single_file = [".yaml", ".yml"],
            doc = "The DAG spec, e.g. `dags/daily_profile.yaml`; its stem must equal its dag_id.",
        ),
        "package": attr.string(mandatory = True, doc = "Package name, e.g. `file_processing`; the image is `<repository>/<package>`."),
        "image": attr.label(
            mandatory = True,
            providers = [OciImageInfo],
            doc = "The package's `oci_image`, e.g. `:image`; its digest is read by the action, never at analysis.",
        ),
        "entrypoints": attr.label(
            allow_single_file = True,
            doc = "File listing the job modules in the image, one per line; a task naming another job fails the build. Optional.",
        ),
        "repository": attr.string(
            doc = "Image repository prefix, e.g. `registry.example.com/etl`. Default: the `//tools/bazel:image_repository` build setting.",
        ),
        "out_dir": attr.string(default = "dags", doc = "Output folder inside the package. Default `dags`."),
        "_repository_flag": attr.label(default = "//tools/bazel:image_repository"),
        "_dagrender": attr.label(
            default = "//tools/bazel/dagrender:dagrender_cli",
            executable = True,
            cfg = "exec",
        ),
    },
)
