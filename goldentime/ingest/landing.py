"""Finding files in the landing zone: `<landing>/<feed>/date=YYYY-MM-DD/<file>`.

The landing zone is any fsspec URL; a plain path is a local folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import fsspec
from fsspec.core import url_to_fs

FEEDS = {"events": (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz"), "orders": (".csv", ".csv.gz")}
DAY_FOLDER = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


class LandingZoneError(Exception):
    """The landing zone itself is unusable (missing, unreadable): no partition can be loaded."""


@dataclass(frozen=True)
class LandingFile:
    feed: str
    day: date
    path: str  # fsspec path, without protocol for local files
    size: int
    modified: str  # whatever the filesystem reports; only used to notice a changed file
    fs: fsspec.AbstractFileSystem

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def fingerprint(self) -> str:
        return f"{self.path}|{self.size}|{self.modified}"


def _filesystem(landing_url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = url_to_fs(landing_url)
    if not fs.exists(root) or not fs.isdir(root):
        raise LandingZoneError(
            f"landing zone {landing_url!r} does not exist or is not a folder: set GOLDENTIME_LANDING "
            "or run `goldentime generate` to create sample data there"
        )
    return fs, root.rstrip("/")


def landing_days(landing_url: str, feed: str) -> list[date]:
    """Every day that has a folder for this feed, oldest first."""
    fs, root = _filesystem(landing_url)
    feed_root = f"{root}/{feed}"
    if not fs.exists(feed_root):
        return []
    days = []
    for entry in fs.ls(feed_root, detail=False):
        match = DAY_FOLDER.match(entry.rstrip("/").rsplit("/", 1)[-1])
        if match:
            days.append(date.fromisoformat(match.group(1)))
    return sorted(days)


def landing_files(landing_url: str, feed: str, day: date | None = None) -> list[LandingFile]:
    """The feed's files, for one day or all days, in the order they are read (day, then name).

    Files with an unexpected extension are returned too: the loader reports them rather than
    ignoring them silently.
    """
    if feed not in FEEDS:
        raise ValueError(f"unknown feed {feed!r}; expected one of {sorted(FEEDS)}")
    fs, root = _filesystem(landing_url)
    days = [day] if day is not None else landing_days(landing_url, feed)
    files: list[LandingFile] = []
    for one_day in days:
        folder = f"{root}/{feed}/date={one_day.isoformat()}"
        if not fs.exists(folder):
            continue
        for info in sorted(fs.ls(folder, detail=True), key=lambda i: i["name"]):
            if info.get("type") != "file":
                continue
            name = info["name"].rsplit("/", 1)[-1]
            if name.startswith((".", "_")):  # editor swap files, _SUCCESS markers
                continue
            files.append(
                LandingFile(
                    feed=feed,
                    day=one_day,
                    path=info["name"],
                    size=int(info.get("size") or 0),
                    modified=str(info.get("mtime") or info.get("LastModified") or info.get("updated") or ""),
                    fs=fs,
                )
            )
    return files


def has_expected_extension(file: LandingFile) -> bool:
    return file.name.endswith(FEEDS[file.feed])
