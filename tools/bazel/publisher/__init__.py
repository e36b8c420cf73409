"""The publisher behind ``bazel run //packages/<pkg>:publish``.

Library entry points (the CLI is ``python -m tools.bazel.publisher``)::

    from tools.bazel.publisher import load_build_output, open_store, publish_build, PublishOptions
    build = load_build_output(dags_dir, package="file_processing", image_digest_file=digest_file)
    result = publish_build(build, store=open_store("s3://dags"), env="dev",
                           registry=OcitoolRegistry(), image_layout=layout)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The names below are imported on first use (PEP 562), so ``python -m tools.bazel.publisher`` and
# ``import publisher.x`` load only the modules a run needs (no smoke client, no registry code,
# no release listing on a plain publish).
_WHERE = {
    "BuildOutput": "build",
    "DagFile": "build",
    "check_syntax": "build",
    "load_build_output": "build",
    "Event": "events",
    "EventSink": "events",
    "ImageOutcome": "image",
    "ImageRegistry": "image",
    "OcitoolRegistry": "image",
    "PublishOptions": "publish",
    "PublishResult": "publish",
    "ReleaseDraft": "publish",
    "decommission_package": "publish",
    "draft_release": "publish",
    "publish_build": "publish",
    "rollback_release": "publish",
    "ReleaseInfo": "releases",
    "list_releases": "releases",
    "ObjectInfo": "store",
    "Store": "store",
    "default_store_url": "store",
    "open_store": "store",
}
_ERRORS = (
    "BuildOutputError",
    "ConcurrentPublishError",
    "DagIdCollisionError",
    "DagSyntaxError",
    "ImageError",
    "InvalidNameError",
    "MassDeleteError",
    "MetadataError",
    "OutsidePrefixError",
    "PreconditionFailedError",
    "PublishError",
    "ReleaseNotFoundError",
    "SmokeError",
    "StoreError",
    "UsageError",
)
_WHERE.update(dict.fromkeys(_ERRORS, "errors"))


def __getattr__(name: str) -> Any:
    if name == "PackageKeys":  # the store contract's, re-exported for the library API
        from tools.bazel.storecontract import PackageKeys

        globals()[name] = PackageKeys
        return PackageKeys
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from tools.bazel.publisher.build import BuildOutput, DagFile, check_syntax, load_build_output
    from tools.bazel.publisher.errors import (
        BuildOutputError,
        ConcurrentPublishError,
        DagIdCollisionError,
        DagSyntaxError,
        ImageError,
        InvalidNameError,
        MassDeleteError,
        MetadataError,
        OutsidePrefixError,
        PreconditionFailedError,
        PublishError,
        ReleaseNotFoundError,
        SmokeError,
        StoreError,
        UsageError,
    )
    from tools.bazel.publisher.events import Event, EventSink
    from tools.bazel.publisher.image import ImageOutcome, ImageRegistry, OcitoolRegistry
    from tools.bazel.publisher.publish import (
        PublishOptions,
        PublishResult,
        ReleaseDraft,
        decommission_package,
        draft_release,
        publish_build,
        rollback_release,
    )
    from tools.bazel.publisher.releases import ReleaseInfo, list_releases
    from tools.bazel.publisher.store import ObjectInfo, Store, default_store_url, open_store
    from tools.bazel.storecontract import PackageKeys

__all__ = [
    "BuildOutput",
    "BuildOutputError",
    "ConcurrentPublishError",
    "DagFile",
    "DagIdCollisionError",
    "DagSyntaxError",
    "Event",
    "EventSink",
    "ImageError",
    "ImageOutcome",
    "ImageRegistry",
    "InvalidNameError",
    "MassDeleteError",
    "MetadataError",
    "ObjectInfo",
    "OcitoolRegistry",
    "OutsidePrefixError",
    "PackageKeys",
    "PreconditionFailedError",
    "PublishError",
    "PublishOptions",
    "PublishResult",
    "ReleaseDraft",
    "ReleaseInfo",
    "ReleaseNotFoundError",
    "SmokeError",
    "Store",
    "StoreError",
    "UsageError",
    "check_syntax",
    "decommission_package",
    "default_store_url",
    "draft_release",
    "list_releases",
    "load_build_output",
    "open_store",
    "publish_build",
    "rollback_release",
]
