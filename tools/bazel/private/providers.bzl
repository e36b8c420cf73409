"""Providers shared by the project's rules."""

OciImageInfo = provider(
    doc = "An OCI image layout built by `oci_image`.",
    fields = {
        "layout": "File (directory): the OCI image layout.",
        "digest": "File: `sha256:<hex>` of the image manifest.",
    },
)

PyImageLayersInfo = provider(
    doc = "The layers of a Python program for an image, split by how often they change.",
    fields = {
        "deps_layer": "File: third-party wheels (.tar.gz).",
        "app_layer": "File: first-party code (.tar.gz).",
        "pythonpath": "list of string: import roots inside the image, in order.",
    },
)

AirflowDagInfo = provider(
    doc = "One rendered Airflow DAG.",
    fields = {
        "dag_id": "string: the DAG id (the spec file's stem).",
        "spec": "File: the YAML spec it was rendered from.",
        "dag_file": "File: the rendered `<dag_id>.py`.",
    },
)
