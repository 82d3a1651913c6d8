"""Write files on the target the way the modules of the collection write them.

Shared by the ``comfyui_login_password``, ``compose_project``, ``docker_daemon_json`` and
``token_sync`` modules: an atomic write, synced to disk, that never leaves a temporary file behind
(nor a readable one while it is there), and a read-only check of mode, owner and group. The
helpers do not fail the module; each module words its own failure.
"""

from __future__ import annotations

import os
import stat
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

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
    data: bytes | str,
    *,
    mode: int = 0o600,
    keep_mode: bool = False,
    owner: int | None = None,
    group: int | None = None,
    validate: Callable[[str], object] | None = None,
    prefix: str | None = None,
    unsafe_writes: bool = False,
) -> None:
    """Write ``data`` to a 0600 temporary file beside ``path``, synced, then rename it over ``path``.

    ``module`` is the ``AnsibleModule`` whose ``atomic_move`` does the rename. Text is written as
    UTF-8. The temporary file is named ``<prefix>XXXXXXXX.tmp``, ``prefix`` defaulting to
    ``.<basename of path>.``.

    The file gets ``mode`` or, with ``keep_mode``, the mode of the file it replaces (``mode`` is
    then for a new file only). It gets the ``owner`` (uid) and ``group`` (gid) given; unset, those
    of the file it replaces, where the user may give it away (else the user's, as a new file's).
    The temporary file gets them before the rename, so that an owner that cannot be given fails
    the write; a new file gets them again after it (0600 and the user's in between, whatever the
    umask).

    ``validate``, when given, is called with the temporary file's path once the content is
    written, before the rename: it refuses the content by raising (``fail_json`` included);
    ``path`` is then left as it is.

    Raises ``TempFileError`` when the temporary file cannot be created. Any other failure
    (``atomic_move`` raises plain ``Exception``, a requested owner that cannot be given
    ``OSError``) removes the temporary file and propagates.
    """
    directory = os.path.dirname(path) or "."
    if prefix is None:
        prefix = f".{os.path.basename(path)}."
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    except OSError as exc:
        raise TempFileError(directory, exc.strerror) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if validate is not None:
            validate(tmp)
        replaced = os.stat(path) if os.path.exists(path) else None
        if replaced is not None and keep_mode:
            mode = stat.S_IMODE(replaced.st_mode)
        kept = (-1, -1) if replaced is None else (replaced.st_uid, replaced.st_gid)
        ids = (kept[0] if owner is None else owner, kept[1] if group is None else group)
        try:
            os.chown(tmp, *ids)
        except OSError:
            # the owner of the file replaced is kept where the user may; one asked for must be
            if owner is not None or group is not None:
                raise
        os.chmod(tmp, mode)  # after chown, which may clear the set-id bits
        # a new file is made 0666 & ~umask by atomic_move, and the user's: 0600 until set again
        umask = os.umask(0o077)
        try:
            module.atomic_move(tmp, path, unsafe_writes=unsafe_writes, keep_dest_attrs=False)
        finally:
            os.umask(umask)
        if replaced is None:
            if ids != (-1, -1):
                os.chown(path, *ids)
            os.chmod(path, mode)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def attributes_drift(module: AnsibleModule, args: dict, diff: dict) -> bool:
    """Whether mode, owner or group differ from ``args``, recorded in ``diff``; changes nothing."""
    check_mode = module.check_mode
    module.check_mode = True
    try:
        return module.set_fs_attributes_if_different(args, False, diff=diff)
    finally:
        module.check_mode = check_mode
