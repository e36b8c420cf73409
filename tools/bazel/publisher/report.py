"""Human-readable output: progress lines, the final summary table, the releases table."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from tools.bazel.publisher.events import Event

if TYPE_CHECKING:  # types only: a plain publish loads neither the smoke client nor the release listing
    from tools.bazel.publisher.publish import PublishResult
    from tools.bazel.publisher.releases import ReleaseInfo
    from tools.bazel.publisher.smoke import SmokeResult

__all__ = ["ProgressPrinter", "format_releases", "format_result"]


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KiB"


def _short(digest: str | None) -> str:
    if not digest:
        return "none"
    return digest[: len("sha256:") + 12]


class ProgressPrinter:
    """An EventSink printing one line per step to ``stream`` (stderr in the CLI)."""

    def __init__(self, stream: TextIO, *, prefix: str = "publish") -> None:
        self.stream = stream
        self.prefix = prefix
        self._mutex = threading.Lock()  # uploads report from worker threads

    def __call__(self, event: Event) -> None:
        line = event.message
        if event.size is not None:
            line += f" ({_size(event.size)})"
        if event.kind == "warning":
            line = f"warning: {line}"
        with self._mutex:
            self.stream.write(f"{self.prefix}: {line}\n")
            self.stream.flush()


def format_result(result: PublishResult, smoke: SmokeResult | None = None) -> str:
    plan = result.plan
    lines = [f"{result.action} {result.package} -> {result.location}  (env {result.env})"]
    if result.outcome == "published":
        head = f"published release {result.release_id}"
        if result.rollback_of:
            head += f" (rollback to {result.rollback_of})"
        lines.append(f"outcome   {head}; previous {result.previous_release_id or 'none'}")
    elif result.outcome == "noop":
        lines.append(f"outcome   nothing to do: release {result.previous_release_id} is up to date")
    elif result.outcome == "repaired":
        lines.append(f"outcome   release {result.release_id} unchanged; live files repaired/pruned")
    else:
        lines.append("outcome   dry run: nothing was written")
    if result.image is not None:
        how = "pushed" if result.image.pushed else "verified in the registry"
        tags = f", tags: {', '.join(result.image.tags)}" if result.image.tags else ""
        lines.append(f"image     {result.image.reference}  {how}{tags}")
    else:
        lines.append(f"image     {result.image_repository}@{plan.digest_after}  (not checked: dry run)")
    lines.append(f"digest    {_short(plan.digest_before)} -> {_short(plan.digest_after)}")
    rows: list[tuple[str, str, str]] = []
    status: dict[str, str] = {}
    for name, ids in (("added", plan.added), ("changed", plan.changed), ("unchanged", plan.unchanged)):
        for dag_id in ids:
            status[dag_id] = name
    for dag_id in plan.repair:
        status[dag_id] = "repaired" if result.outcome != "dry-run" else "to repair"
    for dag_id in plan.removed:
        status[dag_id] = "removed"
    for dag_id in sorted(status):
        rows.append((dag_id, status[dag_id], _size(result.dag_sizes.get(dag_id))))
    width = max([len("DAG"), *(len(r[0]) for r in rows)])
    lines.append("")
    lines.append(f"{'DAG':<{width}}  {'STATUS':<10}  SIZE")
    lines.extend(f"{d:<{width}}  {s:<10}  {z}" for d, s, z in rows)
    lines.append("")
    lines.append(
        f"total     {len(result.dag_sizes)} DAGs: {len(plan.added)} added, {len(plan.changed)} changed, "
        f"{len(plan.removed)} removed, {len(plan.unchanged)} unchanged"
    )
    w = result.writes
    lines.append(f"writes    {w['put']} put, {w['copy']} copy, {w['delete']} delete in {result.duration_seconds:.2f}s")
    for warning in result.warnings:
        lines.append(f"warning   {warning}")
    if smoke is not None:
        lines.append(
            f"smoke     {smoke.dag_id!r} run {smoke.run_id}: {smoke.run.describe()} "
            f"(parsed after {smoke.waited_seconds:.1f}s, ran {smoke.run.seconds:.1f}s)"
        )
    return "\n".join(lines) + "\n"


def format_releases(location: str, releases: Sequence[ReleaseInfo]) -> str:
    if not releases:
        return f"no releases stored under {location}releases/\n"
    header = ("", "RELEASE", "PUBLISHED", "IMAGE DIGEST", "DAGS", "NOTE")
    rows = []
    for r in releases:
        notes = []
        if r.rollback_of:
            notes.append(f"rollback to {r.rollback_of}")
        if r.image_tag:
            notes.append(f"tag {r.image_tag}")
        if not r.committed:
            notes.append("never committed" if r.problem is None else r.problem)
        rows.append(
            (
                "*" if r.current else "",
                r.id,
                r.published_at or "-",
                _short(r.image_digest),
                "-" if r.dag_count is None else str(r.dag_count),
                "; ".join(notes),
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    out = [f"releases of {location}  (* = current)"]
    for row in [header, *rows]:
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(out) + "\n"
