"""Hub-style ids (``org/name``) resolved to a snapshot folder of the local Hugging Face cache, strictly offline.

``load_model`` and ``load_tokenizer`` accept an id such as ``sentence-transformers/all-MiniLM-L6-v2`` where a local
folder is expected. A path that exists is always taken as a path; otherwise an id is looked up in the cache folder
that huggingface_hub itself would use (``HF_HUB_CACHE``, else ``HUGGINGFACE_HUB_CACHE``, else ``$HF_HOME/hub``, else
``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``), in its layout
``models--org--name/snapshots/<commit>``, the commit named by ``refs/main``. The lookup reads the file system only:
nothing here imports huggingface_hub or opens a connection, so it cannot download, whatever ``HF_HUB_OFFLINE`` says.
When the id is not there, both loaders raise the same ``ModelNotFoundError``, which says where it looked and how to
get the files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["ModelNotFoundError", "hub_cache_dir", "is_hub_id", "resolve_local_path"]

# huggingface_hub's validate_repo_id: one optional "org/" and a name of word characters, "-" and "."; no "--" or "..".
_HUB_ID_RE = re.compile(r"^(?:[\w.-]+/)?[\w.-]+$")
_MAX_ID_LENGTH = 96
# A missing name with one of these endings is a file path (a weights or config file), not a model id.
_FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".pkl", ".ckpt", ".json", ".txt", ".model", ".py", ".onnx")
_CACHE_VARIABLES = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")


class ModelNotFoundError(FileNotFoundError, ValueError):
    """A path is neither a local file or folder nor a model id found in the local Hugging Face cache.

    Shared by the model and tokenizer loaders; it is a ValueError like ``ModelLoadError`` and an OSError like
    ``TokenizerLoadError``, so callers catching either keep catching it."""


def is_hub_id(value: str) -> bool:
    """True for strings shaped like a Hugging Face model id: ``name`` or ``org/name``, not a file name."""
    if not value or len(value) > _MAX_ID_LENGTH or not _HUB_ID_RE.match(value):
        return False
    if "--" in value or ".." in value or value.startswith((".", "-")) or value.endswith((".", "-")):
        return False
    return not value.lower().endswith(_FILE_SUFFIXES)


def hub_cache_dir() -> tuple[Path, str]:
    """The cache folder huggingface_hub would use, and what chose it (a variable's name, or "default")."""
    for name in _CACHE_VARIABLES:
        value = os.environ.get(name)
        if value:
            return Path(os.path.expandvars(os.path.expanduser(value))), name
    home = os.environ.get("HF_HOME")
    if home:
        return Path(os.path.expandvars(os.path.expanduser(home))) / "hub", "HF_HOME"
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(os.path.expanduser(xdg)) / "huggingface" / "hub", "XDG_CACHE_HOME"
    return Path.home() / ".cache" / "huggingface" / "hub", "default"


def _repo_folder_name(model_id: str) -> str:
    return "models--" + model_id.replace("/", "--")


def _not_found(model_id: str, field: str, looked: str, problem: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"{field}: '{model_id}' is neither a local path (relative paths are resolved against the worker's working "
        f"directory '{os.getcwd()}') nor a model in the local Hugging Face cache: {problem} ({looked}). Nothing is "
        "downloaded (the worker loads offline only). To fix: download the model where there is network (e.g. "
        f"`hf download {model_id}`) and copy its cache folder '{_repo_folder_name(model_id)}' into the cache folder "
        "(or point HF_HUB_CACHE at a cache that has it), or give the path of a local folder holding its files"
    )


def _snapshot(model_id: str, field: str) -> Path:
    cache, chosen_by = hub_cache_dir()
    looked = f"cache folder '{cache}', " + (
        f"from {chosen_by}" if chosen_by != "default" else "the default; set HF_HUB_CACHE or HF_HOME to change it"
    )
    repo = cache / _repo_folder_name(model_id)
    if not repo.is_dir():
        raise _not_found(model_id, field, looked, f"there is no '{repo.name}' in it")
    snapshots = repo / "snapshots"
    ref = repo / "refs" / "main"
    if ref.is_file():
        commit = ref.read_text(encoding="utf-8").strip()
        if commit and (snapshots / commit).is_dir():
            return snapshots / commit
        problem = f"'{ref}' names snapshot '{commit}', which is not in '{snapshots}' (an interrupted download?)"
        raise _not_found(model_id, field, looked, problem)
    found = sorted(entry for entry in snapshots.iterdir() if entry.is_dir()) if snapshots.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise _not_found(model_id, field, looked, f"'{repo}' has no snapshot in snapshots/")
    problem = (
        f"'{repo}' has {len(found)} snapshots ({', '.join(entry.name for entry in found)}) and no refs/main to choose "
        "one; give the snapshot folder you mean as the path"
    )
    raise _not_found(model_id, field, looked, problem)


def resolve_local_path(path: str, field: str = "path") -> str:
    """``path`` itself when it exists or is not shaped like a model id; else the cached snapshot folder of that id.

    Raises ``ModelNotFoundError`` (naming ``field``, the cache folder and the fix) for an id the cache lacks."""
    if Path(path).exists() or not is_hub_id(path):
        return path
    return str(_snapshot(path, field))
