"""Public Starlark API of the ETL platform. Load rules from here only, never from private/.

    load("//tools/bazel:defs.bzl", "etl_package", "airflow_dag", "oci_image", "oci_push", "image_repository", "py_pytest_test")

`oci_image` and `oci_push` are named and shaped after rules_oci's (see docs/rules.md for the
differences), so a team with the Bazel Central Registry can switch by changing load lines.
"""

load("//tools/bazel/private:airflow_dag.bzl", _airflow_dag = "airflow_dag")
load("//tools/bazel/private:etl_package.bzl", _etl_package = "etl_package")
load("//tools/bazel/private:image_repository.bzl", _image_repository = "image_repository")
load("//tools/bazel/private:oci_image.bzl", _oci_image = "oci_image")
load("//tools/bazel/private:oci_push.bzl", _oci_push = "oci_push")
load("//tools/bazel/private:providers.bzl", _AirflowDagInfo = "AirflowDagInfo", _OciImageInfo = "OciImageInfo")
load("//tools/bazel/private:py_image_layers.bzl", _py_image_layers = "py_image_layers")
load("//tools/bazel/private:pytest.bzl", _py_pytest_test = "py_pytest_test")

airflow_dag = _airflow_dag
etl_package = _etl_package
image_repository = _image_repository
oci_image = _oci_image
oci_push = _oci_push
py_image_layers = _py_image_layers
py_pytest_test = _py_pytest_test
AirflowDagInfo = _AirflowDagInfo
OciImageInfo = _OciImageInfo
