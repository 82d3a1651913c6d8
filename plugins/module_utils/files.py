"""Write files on the target the way the modules of the collection write them.

Shared by the ``comfyui_login_password`` and ``token_sync`` modules: an atomic write that never
leaves a readable temporary file behind, and a read-only check of mode, owner and group. The
helpers do not fail the module; each module words its own failure.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ansible.module_utils.basic import AnsibleModule


class TempFileError(Exception):
    """No temporary file could be created in ``directory``; ``strerror`` says why."""

    def __init__(self, directory: str, strerror: str | None) -> None:
        super().__init__(f"cannot create a file in {directory} ({strerror})")
        self.directory = directory
        self.strerror = strerror


def write_atomic(
    module: AnsibleModule,
    path: str,
    data: bytes,
    *,
    prefix: str | None = None,
    keep_mode: bool = False,
    unsafe_writes: bool = False,
) -> None:
    """Write ``data`` to a 0600 temporary file beside ``path``, then rename it over ``path``.

    ``module`` is the ``AnsibleModule`` whose ``atomic_move`` does the rename. The temporary
    file is named ``<prefix>XXXXXXXX.tmp``, ``prefix`` defaulting to ``.<basename of path>.``.
    When ``path`` exists, its owner is kept and, with ``keep_mode``, its mode; the requested
    ones are for the caller to apply after the rename. A new file is 0600.

    Raises ``TempFileError`` when the temporary file cannot be created. Any other failure
    (``atomic_move`` raises plain ``Exception``) removes the temporary file and propagates.
    """
    directory = os.path.dirname(path)
    if prefix is None:
        prefix = f".{os.path.basename(path)}."
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    except OSError as exc:
        raise TempFileError(directory, exc.strerror) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if os.path.exists(path):
            # keep the owner (and, when asked, the mode) of the file replaced;
            # the requested ones are applied after the rename
            current = os.stat(path)
            with contextlib.suppress(OSError):
                os.chown(tmp, current.st_uid, current.st_gid)
            if keep_mode:
                os.chmod(tmp, stat.S_IMODE(current.st_mode))
        # a new file is made 0666 & ~umask by atomic_move: 0600 until the requested mode is set
        umask = os.umask(0o077)
        try:
            module.atomic_move(tmp, path, unsafe_writes=unsafe_writes, keep_dest_attrs=False)
        finally:
            os.umask(umask)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def attributes_drift(module: AnsibleModule, args: dict, diff: dict) -> bool:
    """Whether mode, owner or group differ from ``args``, recorded in ``diff``; changes nothing."""
    check_mode = module.check_mode
    module.check_mode = True
    try:
        return module.set_fs_attributes_if_different(args, False, diff=diff)
    finally:
        module.check_mode = check_mode
