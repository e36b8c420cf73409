"""Turn an unpacked root file system into layer contents, keeping what a root needs.

Unlike ``LayerContents.add_tree`` (which copies content through symlinks for application files),
this keeps symlinks as symlinks, hard links as hard links (the first path in sorted order holds
the data), the permission bits (setuid, sticky ``/tmp``) and numeric owners. Devices, FIFOs and
sockets are left out: the container runtime provides ``/dev``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tools.bazel.ocitool.layer import Entry, LayerContents, sort_key

__all__ = ["contents_from_root"]


def contents_from_root(root: str | os.PathLike[str]) -> LayerContents:
    root = Path(root)
    found: list[tuple[str, os.stat_result]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            found.append((rel.replace(os.sep, "/"), os.lstat(os.path.join(dirpath, name))))
    found.sort(key=lambda item: sort_key(item[0]))
    contents = LayerContents()
    first_link: dict[tuple[int, int], str] = {}
    for rel, st in found:
        mode = stat.S_IMODE(st.st_mode)
        full = root / rel
        if stat.S_ISDIR(st.st_mode):
            contents.add(
                Entry(
                    path=rel,
                    kind="dir",
                    mode=mode,
                    uid=st.st_uid,
                    gid=st.st_gid,
                    origin=str(full),
                )
            )
        elif stat.S_ISLNK(st.st_mode):
            contents.add(
                Entry(
                    path=rel,
                    kind="symlink",
                    mode=0o777,
                    target=os.readlink(full),
                    uid=st.st_uid,
                    gid=st.st_gid,
                    origin=str(full),
                )
            )
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in first_link:
                contents.add(
                    Entry(
                        path=rel,
                        kind="hardlink",
                        mode=mode,
                        target=first_link[key],
                        uid=st.st_uid,
                        gid=st.st_gid,
                        origin=str(full),
                    )
                )
                continue
            if st.st_nlink > 1:
                first_link[key] = rel
            contents.add(
                Entry(
                    path=rel,
                    kind="file",
                    mode=mode,
                    src=full,
                    uid=st.st_uid,
                    gid=st.st_gid,
                    origin=str(full),
                )
            )
        # devices, FIFOs, sockets: skipped on purpose
    return contents
