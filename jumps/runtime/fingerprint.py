"""The fingerprint of a trajectory run: what must be equal for a resume to continue it.

Chunks of trajectories mean the same trajectories only with the same config (every section,
including the content of the files it names), seed, trajectory count, chunk size and code.
The fingerprint keeps these as separate parts so that a refused ``--resume`` can name what
differs; it is stored in ``checkpoint/plan.json`` and in the result's ``run.json``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

from .. import __version__

# [run] keys held as parts of their own (named when they differ), and keys that change nothing
# in the trajectories (checkpoint_seconds: a resume may checkpoint more or less often).
OWN_PARTS = ("seed", "trajectories", "chunk_size")
IGNORED_RUN_KEYS = ("checkpoint_seconds", "allow_long")
_MAX_PATH = 4096
_BLOCK = 1 << 20


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def code_digest() -> str:
    """SHA-256 of the package's Python sources (paths and contents), read now (a few ms)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def input_files(raw: dict, base: Path) -> dict[str, str]:
    """``{path as written: sha256 of its bytes}`` for every file the config names: the strings
    that end in ``.npy`` or name an existing file, relative to ``base`` (the config's
    directory). A ``.npy`` path that is missing maps to ``"missing"``."""
    files = {}
    for text in _strings(raw):
        if not text or len(text) > _MAX_PATH or "\0" in text or text in files:
            continue
        path = Path(text) if Path(text).is_absolute() else base / text
        try:
            if path.is_file():
                files[text] = _file_digest(path)
            elif text.endswith(".npy"):
                files[text] = "missing"
        except OSError:
            files[text] = "unreadable"
    return files


def comparable_config(raw: dict) -> dict:
    """The config without the keys held as their own parts or ignored."""
    raw = copy.deepcopy(raw)
    run = raw.get("run")
    if isinstance(run, dict):
        for key in OWN_PARTS + IGNORED_RUN_KEYS:
            run.pop(key, None)
    return raw


def _config_digest(raw: dict) -> str:
    text = json.dumps(comparable_config(raw), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_fingerprint(config, chunk: int) -> dict:
    """The fingerprint of a run of ``config`` (a RunConfig) cut into chunks of ``chunk``."""
    base = Path(config.source).parent if config.source else Path(".")
    return {"seed": config.seed, "trajectories": config.trajectories, "chunk_size": chunk,
            "config": _config_digest(config.raw), "files": input_files(config.raw, base),
            "version": __version__, "code": code_digest()}


def digest(fingerprint: dict) -> str:
    """One string for a fingerprint (carried by every checkpoint file)."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:32]


def differences(then: dict, now: dict, then_config: dict | None, now_config: dict,
                where: str, since: str) -> list[str]:
    """What differs between two fingerprints, in words (empty: the same run). ``where`` and
    ``since`` name the earlier one ("in the interrupted run", "the interrupted run"); the
    configs name a changed key."""
    out = []
    for key, words in (("seed", "the seed"), ("trajectories", "the trajectory count"),
                       ("chunk_size", "the chunk size")):
        if then.get(key) != now.get(key):
            out.append(f"{words} differs ({then.get(key)} {where}, {now.get(key)} now)")
    old_files, new_files = then.get("files", {}), now.get("files", {})
    for name in sorted(set(old_files) | set(new_files)):
        if name not in new_files:
            out.append(f"file {name} is no longer used")
        elif name not in old_files:
            out.append(f"file {name} is new")
        elif old_files[name] != new_files[name]:
            out.append(f"file {name} changed since {since}")
    if then.get("config") != now.get("config"):
        change = (_first_change(comparable_config(then_config), comparable_config(now_config))
                  if then_config is not None else None)
        out.append(f"the config differs{f' at {change}' if change else ''}")
    if then.get("version") != now.get("version"):
        out.append(f"the jumps version differs ({then.get('version')} {where}, "
                   f"{now.get('version')} now)")
    elif then.get("code") != now.get("code"):
        out.append(f"the jumps source code changed (code hash {then.get('code')} {where}, "
                   f"{now.get('code')} now)")
    return out


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _first_change(then, now, path: str = "") -> str | None:
    """The first key path where two config values differ, with both values."""
    if isinstance(then, dict) and isinstance(now, dict):
        for key in sorted(set(then) | set(now), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in then:
                return f"{where} (absent then, {_short(now[key])} now)"
            if key not in now:
                return f"{where} ({_short(then[key])} then, absent now)"
            found = _first_change(then[key], now[key], where)
            if found:
                return found
        return None
    if isinstance(then, list) and isinstance(now, list) and len(then) == len(now):
        for index, (a, b) in enumerate(zip(then, now, strict=True)):
            found = _first_change(a, b, f"{path}[{index}]")
            if found:
                return found
        return None
    if json.dumps(then, sort_keys=True, default=str) != json.dumps(now, sort_keys=True,
                                                                  default=str):
        return f"{path} ({_short(then)} then, {_short(now)} now)"
    return None
