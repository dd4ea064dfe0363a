"""TF Serving's model base path: one folder per version, named by its number.

TF Serving reads every child whose name is a number as that version ("7" and
"0007" are both version 7) and ignores other names. So an export is written to a
temporary sibling, whose name is not a number, and renamed to its version only
when complete: a half-written export is never a version. On URL base paths
(gs://, s3://, hdfs://, ram://), where a directory rename is not atomic, the
finished folder is copied into the version folder with saved_model.pb last
(`fileio.move_directory`): until then TF Serving fails to load the version and
keeps serving the one before. An export killed during that copy leaves a version
folder without saved_model.pb; it keeps its number (TF Serving sees it), the next
export takes the next one, and the leftover is removed by hand.
"""
from __future__ import annotations

from typing import Callable

from sllmr_tf import fileio
from sllmr_tf.errors import ArtifactError

SAVED_MODEL_FILE = "saved_model.pb"  # what TF Serving loads a version from: copied last


def versions(export_base: str) -> dict[int, str]:
    """{version number: folder name} of the versions under `export_base` (none if it does not exist)."""
    if not fileio.isdir(export_base):
        return {}
    return {int(name): name for name in fileio.listdir(export_base)
            if name.isdigit() and fileio.isdir(fileio.join(export_base, name))}


def next_version(export_base: str) -> int:
    """One above the highest version present; 1 for an empty base path."""
    return max(versions(export_base), default=0) + 1


def publish(export_base: str, version: int, write: Callable[[str], None]) -> str:
    """Run `write(folder)` on a fresh temporary folder, then move it to the version (`fileio.move_directory`).

    Args:
        export_base: the base path (created if needed).
        version: the version number; an existing version is never replaced.
        write: fills the folder it is given; if it raises, the folder is removed and the
            base path is as it was.

    Returns:
        The version folder's path.

    Raises:
        ArtifactError: the version exists.
    """
    target = fileio.join(export_base, str(version))
    _refuse_existing(export_base, version)
    fileio.makedirs(export_base)
    staging = fileio.temporary_sibling(target)
    try:
        write(staging)
        _refuse_existing(export_base, version)  # another export may have taken it meanwhile
        fileio.move_directory(staging, target, last=SAVED_MODEL_FILE)
    finally:
        fileio.rmtree(staging)  # gone already once renamed
    return target


def _refuse_existing(export_base: str, version: int) -> None:
    existing = versions(export_base).get(version)
    if existing is not None:
        raise ArtifactError(f"{fileio.join(export_base, existing)}: version {version} exists and a served "
                            "version is never replaced; pass another --version or leave it out")
