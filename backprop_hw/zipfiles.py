"""Zip files that are the same bytes on every build: fixed dates, sorted entries, fixed modes."""

import zipfile
from pathlib import Path

# A fixed date for every entry, so that an archive is byte-for-byte reproducible.
ZIP_DATE = (2024, 1, 1, 0, 0, 0)


def write_zip(path: Path, entries: dict[str, bytes], executables: tuple[str, ...] = ()) -> None:
    """Write `entries` ({name: data}) to a new zip at `path`; `executables` get mode 0755."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = (0o755 if name in executables else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name])
