"""ocitool: the tools behind this repo's OCI image rules (layers, images, base, push).

Stdlib only. CLI: ``python -m tools.bazel.ocitool {layer,image,base,push} ...`` (see README.md). The
library entry points other parts of the repo call are re-exported here.
"""

from __future__ import annotations

from tools.bazel.ocitool._version import __version__
from tools.bazel.ocitool.image import ImageOptions, ImageResult, build_image
from tools.bazel.ocitool.layer import LayerContents, LayerResult, write_layer
from tools.bazel.ocitool.push import PushResult, push_layout
from tools.bazel.ocitool.registry import manifest_exists

__all__ = [
    "ImageOptions",
    "ImageResult",
    "LayerContents",
    "LayerResult",
    "PushResult",
    "__version__",
    "build_image",
    "manifest_exists",
    "push_layout",
    "write_layer",
]
