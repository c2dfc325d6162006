"""Look inside images: size, layers and the instruction that made each, the files of the final filesystem,
and every layer of a saved image (``docker save``), where deleted files still live.

All of it reads the real engine: ``docker image inspect``, ``docker history``, ``docker export`` of a
created (never started) container, ``docker save``. Serves lessons 05, 07 and 08.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from .engine import LABEL, current, docker


def inspect(ref: str) -> dict | None:
    """``docker image inspect``: the image's metadata, or None when there is no such image."""
    out = docker("image", "inspect", ref)
    if out.returncode != 0:
        return None
    data = json.loads(out.stdout or "[]")
    return data[0] if data else None


def size_mb(ref: str) -> float:
    """The image's size as ``docker images`` shows it (MB, 10^6 bytes, uncompressed)."""
    info = inspect(ref)
    return round((info or {}).get("Size", 0) / 1e6, 1)


@dataclass
class HistoryRow:
    created_by: str
    size: int  # bytes this instruction added (0: metadata only, no layer)
    comment: str = ""

    @property
    def instruction(self) -> str:
        """The Dockerfile line, without BuildKit's decoration."""
        text = self.created_by.removeprefix("/bin/sh -c ").removeprefix("#(nop) ").strip()
        return text.removesuffix(" # buildkit").strip() or "(imported base image)"


def history(ref: str) -> list[HistoryRow]:
    """``docker history --no-trunc --human=false``, oldest first."""
    out = docker("history", "--no-trunc", "--human=false", "--format", "{{json .}}", ref, check=True)
    rows = []
    for line in out.stdout.splitlines():
        if line.strip():
            d = json.loads(line)
            rows.append(HistoryRow(d.get("CreatedBy", ""), int(d.get("Size") or 0), d.get("Comment", "")))
    return rows[::-1]


def history_text(ref: str, width: int = 90) -> str:
    rows = history(ref)
    lines = [f"{'size':>9}  instruction (oldest first)"]
    for r in rows:
        text = r.instruction if len(r.instruction) <= width else r.instruction[: width - 3] + "..."
        lines.append(f"{r.size / 1e6:>7.1f}MB  {text}")
    layers = sum(1 for r in rows if r.size > 0)
    lines.append(f"{sum(r.size for r in rows) / 1e6:>7.1f}MB  in {layers} layers with content ({len(rows)} steps)")
    return "\n".join(lines)


# ------------------------------------------------------------------ the final filesystem
@dataclass(frozen=True)
class FileEntry:
    path: str  # absolute, as seen inside the container
    size: int
    mode: int
    uid: int
    kind: str  # "file" | "dir" | "link" | "other"

    @property
    def world_writable(self) -> bool:
        return self.kind in ("file", "dir") and bool(self.mode & stat.S_IWOTH)

    @property
    def executable(self) -> bool:
        return self.kind == "file" and bool(self.mode & 0o111)


def files(ref: str, lesson: str = "") -> dict[str, FileEntry]:
    """Every path of the image's final filesystem (``docker create`` + ``docker export``; nothing runs)."""
    labels = ["--label", f"{LABEL}={lesson}"] if lesson else []
    cid = docker("create", "--network", "none", *labels, ref, "true", check=True).stdout.strip()
    eng = current()
    out: dict[str, FileEntry] = {}
    try:
        with subprocess.Popen([eng.client, "export", cid], stdout=subprocess.PIPE, env=eng.environ()) as p:
            with tarfile.open(fileobj=p.stdout, mode="r|") as tar:
                for m in tar:
                    kind = "file" if m.isfile() else "dir" if m.isdir() else "other"
                    kind = "link" if m.issym() or m.islnk() else kind
                    path = "/" + _relname(m.name)
                    out[path] = FileEntry(path, m.size, m.mode, m.uid, kind)
    finally:
        docker("rm", "-f", cid)
    return out


def _relname(name: str) -> str:
    """A tar member's path without its leading ``./`` or ``/`` (``.env`` keeps its dot)."""
    name = name[2:] if name.startswith("./") else name
    return name.strip("/")


def find_files(entries: dict[str, FileEntry], pred) -> list[FileEntry]:
    return [e for e in entries.values() if pred(e)]


# ------------------------------------------------------------------ every layer (docker save)
@dataclass
class Layer:
    index: int  # 0 = the oldest
    instruction: str  # the history entry that made it
    member: str  # its tar inside the saved image
    diff_id: str
    from_base: bool = False


@dataclass
class SavedImage:
    """An image saved with ``docker save``: its config, and its layers mapped to the instructions that made them."""

    ref: str
    path: Path
    config: dict
    layers: list[Layer] = field(default_factory=list)

    def layer_members(self, layer: Layer):
        """(name, bytes) of each regular file in one layer (deleted files show as ``.wh.<name>`` whiteouts)."""
        with tarfile.open(self.path) as outer:
            raw = outer.extractfile(layer.member).read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        with tarfile.open(fileobj=io.BytesIO(raw)) as inner:
            for m in inner:
                if m.isfile():
                    yield m.name, inner.extractfile(m).read()
                elif os.path.basename(m.name).startswith(".wh."):
                    yield m.name, b""

    def extract(self, dest: Path, include_base: bool = False, leave_out: str | None = None) -> dict:
        """Write each layer's files under ``dest/layer-NN/`` (what a scanner reads).

        ``leave_out``: a regular expression of paths not written (e.g. third-party packages). Returns
        ``{'layers': [folders], 'files': n written, 'left_out': n not written}``."""
        rx = re.compile(leave_out) if leave_out else None
        dest = Path(dest)
        shutil.rmtree(dest, ignore_errors=True)
        out = {"layers": [], "files": 0, "left_out": 0}
        for layer in self.layers:
            if layer.from_base and not include_base:
                continue
            d = dest / f"layer-{layer.index:02d}"
            d.mkdir(parents=True, exist_ok=True)
            for name, data in self.layer_members(layer):
                rel = os.path.normpath(name).lstrip("/")
                if rel.startswith(".."):
                    continue
                if rx and rx.search("/" + rel):
                    out["left_out"] += 1
                    continue
                target = d / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                out["files"] += 1
            out["layers"].append(d)
        return out

    def find(self, secret: str, include_base: bool = False) -> list[str]:
        """Where ``secret`` (as text, base64 or hex) appears: layer files, the image config (ENV, labels)
        and the history (ARG values used by RUN lines). One line per place found."""
        needles = {secret.encode(), base64.b64encode(secret.encode()), secret.encode().hex().encode()}
        where = []
        for layer in self.layers:
            if layer.from_base and not include_base:
                continue
            for name, data in self.layer_members(layer):
                if any(n in data for n in needles):
                    where.append(f"layer {layer.index} ({layer.instruction[:70]}): /{_relname(name)}")
        cfg = json.dumps(self.config.get("config", {}))
        if any(n.decode() in cfg for n in needles):
            where.append("the image config (ENV or LABEL): `docker image inspect` shows it to anyone")
        for h in self.config.get("history", []):
            if secret in h.get("created_by", ""):
                where.append(f"the history: `docker history` shows {h['created_by'][:90]!r}")
        return where

    def describe(self) -> str:
        lines = []
        for layer in self.layers:
            base = " (base image)" if layer.from_base else ""
            lines.append(f"  layer {layer.index:>2}{base}: {layer.instruction[:90]}")
        return "\n".join(lines)


def save(ref: str, dest, base: str | None = None, show: bool = True) -> SavedImage:
    """``docker save`` the image into ``dest/image.tar`` and map its layers to the history.

    ``base``: an image whose layers are marked ``from_base`` (scanners may skip them)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tar_path = dest / "image.tar"
    docker("save", "-o", str(tar_path), ref, show=show, check=True, cwd=dest)
    with tarfile.open(tar_path) as t:
        manifest = json.load(t.extractfile("manifest.json"))[0]
        config = json.load(t.extractfile(manifest["Config"]))
    history_rows = [h for h in config.get("history", []) if not h.get("empty_layer")]
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    base_ids = set(((inspect(base) or {}).get("RootFS") or {}).get("Layers", [])) if base else set()
    saved = SavedImage(ref, tar_path, config)
    for i, member in enumerate(manifest["Layers"]):
        made_by = history_rows[i].get("created_by", "") if i < len(history_rows) else ""
        made_by = made_by.removeprefix("/bin/sh -c ").removesuffix(" # buildkit") or "(imported base image)"
        diff = diff_ids[i] if i < len(diff_ids) else ""
        saved.layers.append(Layer(i, made_by, member, diff, diff in base_ids))
    return saved


# ------------------------------------------------------------------ cleaning up
def remove_labelled(lesson: str) -> dict[str, list[str]]:
    """Remove every container, then every image, labelled ``cloudlab.lesson=<lesson>``."""
    removed: dict[str, list[str]] = {"containers": [], "images": []}
    flt = f"label={LABEL}={lesson}"
    ps = docker("ps", "-a", "--filter", flt, "--format", "{{.Names}}")
    names = [n for n in ps.stdout.split() if n]
    if names:
        docker("rm", "-f", *names)
        removed["containers"] = names
    imgs = docker("images", "--filter", flt, "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    refs = [line.split() for line in imgs.stdout.splitlines() if line.strip()]
    if refs:
        docker("rmi", "-f", *dict.fromkeys(r[0] if not r[0].startswith("<none>") else r[1] for r in refs))
        removed["images"] = list(dict.fromkeys(r[0] for r in refs))
    return removed
