"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

# What a plain open() would give a new file (mkstemp gives 0600 whatever the umask): read
# once, at import, because os.umask can only be read by setting it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
FOLDER_MODE = 0o777 & ~_UMASK


def first_existing_folder(folder) -> Path:
    """``folder``, or its nearest ancestor that exists: where a write that makes the missing
    folders must be allowed to write."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def cannot_write_in(folder) -> str | None:
    """Why no new file can be made in ``folder`` (the system's words), or None when one can.
    Probed with a temporary file that is removed at once: os.access would not do, because
    root passes it for folders such as /proc."""
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        return error.strerror or str(error)
    return None


@contextmanager
def errors_naming(path, temporary=None):
    """An OSError raised while writing ``path`` (through ``temporary``, when given) re-raised
    as one naming ``path``: the user never named the temporary file, which is gone by the
    time they read the message."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or str(error)
        if temporary is not None:
            reason = reason.replace(str(temporary), str(path))
        named = OSError(f"cannot write {path}: {reason}")
        named.errno = error.errno
        raise named from error


def write_bytes_atomic(path, content: bytes) -> Path:
    """Write ``content`` to a temporary file beside ``path``, flush it to disk, rename it over ``path``."""
    path = Path(path)
    with errors_naming(path):
        return _write_bytes_atomic(path, content)


def _write_bytes_atomic(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        os.fchmod(handle, FILE_MODE)  # readable by others like any file written by the user
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path, payload) -> Path:
    """JSON (numpy scalars allowed) written atomically, indented for people. JSON has no NaN
    or infinity: one is refused (ValueError naming the file, nothing written) rather than
    written as ``NaN``, which makes a manifest a file other JSON readers refuse."""
    try:
        text = json.dumps(payload, indent=2, default=_json_default, allow_nan=False)
    except ValueError as error:
        raise ValueError(f"{Path(path).name} not written: {error}") from None
    return write_bytes_atomic(path, (text + "\n").encode())


def undefined_as_null(value):
    """``value`` with every NaN or infinite float (a figure that is undefined, such as the
    standard error of one customer's difference) replaced by None, in nested dicts and lists:
    a model's manifest says "undefined" as JSON can, and a model published before NaN was
    refused can still be rewritten."""
    if isinstance(value, dict):
        return {key: undefined_as_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [undefined_as_null(item) for item in value]
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return value


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
