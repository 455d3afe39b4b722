"""Find the manifest that declares a field in a checked-out repository, and edit it preserving its comments and
formatting (ruamel.yaml round-trip): plain YAML, Kustomize overlays (patches, ``images:``), Helm values files
(by the operator's mapping of fields to value paths).

Nothing here runs what the repository contains: files are parsed as data, paths never leave the checkout.
"""

from __future__ import annotations

import difflib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import ScalarString

from kubernaut.gitops.changes import FieldChange

_MAX_FILES = 2000
_MAX_BYTES = 1_000_000
_TEMPLATE = {"CronJob": ("spec", "jobTemplate", "spec", "template", "spec")}
_DEFAULT_TEMPLATE = ("spec", "template", "spec")
_KUSTOMIZATION = ("kustomization.yaml", "kustomization.yml", "Kustomization")


class ManifestNotFound(LookupError):
    """No file in the repository declares the object (or the field): the caller falls back (policy)."""


@dataclass
class FileEdit:
    path: str  # relative to the repository root
    before: str
    after: str

    def diff(self) -> str:
        return "".join(difflib.unified_diff(self.before.splitlines(keepends=True), self.after.splitlines(keepends=True),
                                            f"a/{self.path}", f"b/{self.path}"))


@dataclass
class _File:
    path: Path
    text: str
    yaml: YAML
    docs: list[Any]
    touched: bool = False
    explicit_start: bool = False


@dataclass
class _Tree:
    root: Path
    files: dict[Path, _File] = field(default_factory=dict)

    def load(self, path: Path) -> _File | None:
        if path in self.files:
            return self.files[path]
        try:
            if path.stat().st_size > _MAX_BYTES:
                return None
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        loaded = _parse(path, text)
        if loaded is not None:
            self.files[path] = loaded
        return loaded


def _candidates(explicit_start: bool) -> list[YAML]:
    out = []
    for mapping, sequence, offset in ((2, 2, 0), (2, 4, 2), (4, 4, 2), (4, 6, 4)):
        y = YAML(typ="rt")
        y.preserve_quotes = True
        y.width = 4096
        y.indent(mapping=mapping, sequence=sequence, offset=offset)
        y.explicit_start = explicit_start
        out.append(y)
    return out


def _dump(y: YAML, docs: list[Any]) -> str:
    buf = io.StringIO()
    y.dump_all(docs, buf)
    return buf.getvalue()


def _parse(path: Path, text: str) -> _File | None:
    """Parse with the indentation that writes the file back unchanged (so an edit changes only its lines)."""
    explicit = text.lstrip().startswith("---")
    best: _File | None = None
    for y in _candidates(explicit):
        try:
            docs = list(y.load_all(text))
        except YAMLError:
            return None
        candidate = _File(path, text, y, docs, explicit_start=explicit)
        try:
            if _dump(y, docs) == text:
                return candidate
        except Exception:  # a document ruamel cannot write back: keep looking, the first parse stands
            pass
        best = best or candidate
    return best


def _get(node: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _is(doc: Any, kind: str, name: str) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == kind and _get(doc, ("metadata", "name")) == name


def _container(doc: Any, kind: str, container: str) -> Any:
    containers = _get(doc, (*_TEMPLATE.get(kind, _DEFAULT_TEMPLATE), "containers"))
    if isinstance(containers, list):
        for c in containers:
            if isinstance(c, dict) and c.get("name") == container:
                return c
    return None


def _field_path(change: FieldChange) -> tuple[str, ...]:
    """The path inside the container (container fields) or the object (the rest)."""
    if change.container is not None:
        return tuple(change.field.split(".", 2)[2].split("."))
    return ("spec", change.field)


def _holds(doc: Any, change: FieldChange) -> bool:
    """The document declares this field (an overlay's patch that sets it wins over the base)."""
    if change.container is not None:
        c = _container(doc, change.kind, change.container)
        return c is not None and _get(c, _field_path(change)) is not None
    return _get(doc, _field_path(change)) is not None


def _can_hold(doc: Any, change: FieldChange) -> bool:
    if change.container is not None:
        return _container(doc, change.kind, change.container) is not None
    return isinstance(doc.get("spec"), dict)


def _set(node: Any, keys: tuple[str, ...], value: Any) -> None:
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = CommentedMap()
        node = node[key]
    last = keys[-1]
    if value is None:
        node.pop(last, None)
        return
    old = node.get(last)
    if isinstance(old, ScalarString) and isinstance(value, str):
        value = type(old)(value)  # keep the quoting the author chose
    node[last] = value


def _yaml_files(root: Path, start: Path) -> list[Path]:
    out: list[Path] = []
    for path in sorted(start.rglob("*")):
        if len(out) >= _MAX_FILES:
            break
        if path.suffix in (".yaml", ".yml") and path.is_file() and ".git" not in path.relative_to(root).parts:
            out.append(path)
    return out


def _inside(root: Path, path: Path) -> Path:
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise ManifestNotFound(f"{path} is outside the repository")
    return resolved


def _search_dirs(root: Path, start: Path, tree: _Tree) -> list[Path]:
    """``start`` and the directories its kustomizations name (bases), overlay first."""
    seen: list[Path] = []
    todo = [start]
    while todo and len(seen) < 20:
        d = todo.pop(0)
        if d in seen or not d.is_dir():
            continue
        seen.append(d)
        for name in _KUSTOMIZATION:
            k = tree.load(d / name)
            if k is None or not k.docs or not isinstance(k.docs[0], dict):
                continue
            for entry in list(k.docs[0].get("resources") or []) + list(k.docs[0].get("bases") or []):
                if isinstance(entry, str) and "://" not in entry:
                    try:
                        todo.append(_inside(root, d / entry))
                    except ManifestNotFound:
                        continue
    return seen


def _kustomize_image(tree: _Tree, dirs: list[Path], image: str) -> _File | None:
    """An overlay's ``images:`` entry for the image's name: where a Kustomize repository pins tags."""
    name, tag = _split_image(image)
    for d in dirs:
        for fname in _KUSTOMIZATION:
            k = tree.load(d / fname)
            if k is None or not k.docs or not isinstance(k.docs[0], dict):
                continue
            for entry in k.docs[0].get("images") or []:
                if isinstance(entry, dict) and name in (entry.get("name"), entry.get("newName")):
                    if tag.startswith("@"):
                        entry.pop("newTag", None)
                        _set(entry, ("digest",), tag[1:])
                    else:
                        _set(entry, ("newTag",), tag)
                    k.touched = True
                    return k
    return None


def _split_image(image: str) -> tuple[str, str]:
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1:]
    return image, "latest"


def edit_manifests(root: Path, path: str | None, changes: list[FieldChange]) -> list[FileEdit]:
    """Edit the plain or Kustomize manifests under ``path`` for every change; ManifestNotFound when one has no home."""
    root = root.resolve()
    start = _inside(root, root / (path or "."))
    tree = _Tree(root)
    dirs = _search_dirs(root, start, tree)
    for change in changes:
        if change.container is not None and change.field.endswith(".image") and isinstance(change.value, str) and \
                _kustomize_image(tree, dirs, change.value) is not None:
            continue
        holders: list[tuple[_File, Any]] = []
        able: list[tuple[_File, Any]] = []
        for d in dirs:
            for fpath in _yaml_files(root, d):
                f = tree.load(fpath)
                if f is None or fpath.name in _KUSTOMIZATION:
                    continue
                for doc in f.docs:
                    if _is(doc, change.kind, change.name):
                        if _holds(doc, change):
                            holders.append((f, doc))
                        elif _can_hold(doc, change):
                            able.append((f, doc))
        chosen = holders[0] if holders else next(iter(able), None)
        if chosen is None:
            raise ManifestNotFound(f"no manifest of {change.kind} {change.name} declaring {change.field} under "
                                   f"{path or '/'}")
        f, doc = chosen
        node = _container(doc, change.kind, change.container) if change.container is not None else doc
        _set(node, _field_path(change), change.value)
        f.touched = True
    return _written(root, tree)


def edit_helm_values(root: Path, values_file: str, mapping: dict[str, str], changes: list[FieldChange]
                     ) -> list[FileEdit]:
    """Set each change's value path (``mapping``: field → dotted value path; ``containers.*.`` matches any
    container) in the values file."""
    root = root.resolve()
    target = _inside(root, root / values_file)
    tree = _Tree(root)
    f = tree.load(target)
    if f is None or not f.docs or not isinstance(f.docs[0], dict):
        raise ManifestNotFound(f"values file {values_file} not found or not a YAML mapping")
    for change in changes:
        key = mapping.get(change.field)
        if key is None and change.container is not None:
            key = mapping.get("containers.*." + change.field.split(".", 2)[2])
        if key is None:
            raise ManifestNotFound(f"no Helm value path configured for {change.field} (gitops.repositories[]."
                                   "helm_values)")
        value = change.value
        if change.field.endswith(".image") and isinstance(value, str) and key.endswith(".tag"):
            value = _split_image(value)[1].lstrip("@")
        _set(f.docs[0], tuple(key.split(".")), value)
        f.touched = True
    return _written(root, tree)


def _written(root: Path, tree: _Tree) -> list[FileEdit]:
    edits = []
    for f in tree.files.values():
        if not f.touched:
            continue
        after = _dump(f.yaml, f.docs)
        if after != f.text:
            edits.append(FileEdit(str(f.path.relative_to(root)), f.text, after))
    return edits


def apply(root: Path, edits: list[FileEdit]) -> None:
    for e in edits:
        (_inside(root.resolve(), root / e.path)).write_text(e.after, encoding="utf-8")


__all__ = ["FileEdit", "ManifestNotFound", "apply", "edit_helm_values", "edit_manifests"]
