"""The publisher behind ``bazel run //packages/<pkg>:publish``.

Library entry points (the CLI is ``python -m publisher``)::

    from publisher import load_build_output, open_store, publish_build, PublishOptions
    build = load_build_output(dags_dir, package="file_processing", image_digest_file=digest_file)
    result = publish_build(build, store=open_store("s3://dags"), env="dev",
                           registry=OcitoolRegistry(), image_layout=layout)
"""

from __future__ import annotations

from publisher.build import BuildOutput, DagFile, load_build_output
from publisher.errors import (
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
from publisher.events import Event, EventSink
from publisher.image import ImageOutcome, ImageRegistry, OcitoolRegistry
from publisher.keys import PackageKeys
from publisher.publish import (
    PublishOptions,
    PublishResult,
    publish_build,
    rollback_release,
)
from publisher.releases import ReleaseInfo, list_releases
from publisher.store import ObjectInfo, Store, default_store_url, open_store

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
    "ReleaseInfo",
    "ReleaseNotFoundError",
    "SmokeError",
    "Store",
    "StoreError",
    "UsageError",
    "default_store_url",
    "list_releases",
    "load_build_output",
    "open_store",
    "publish_build",
    "rollback_release",
]
