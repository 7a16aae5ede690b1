"""Download the LToS CityFlow data from the authors' repository, pinned and checked.

The Shenzhen and ``ltos6x6`` networks exist only as the authors' CityFlow files
(:data:`ltos_traffic.net.cityflow.DATASETS`: upstream path, commit, SHA-256 and size
of each). They carry no licence, so the project fetches them instead of shipping
them. :func:`fetch_dataset` downloads each file whole (they are 0.7-2 MB), checks
its size and SHA-256 before anything is written, and stores it in the data folder
that :func:`ltos_traffic.net.cityflow.find_dataset` searches, under the name the
project uses. A file already there with the right checksum is kept; one that
differs is only replaced with ``force``.

The base URL defaults to GitHub's raw files at the pinned commit; ``base_url``
(``--base-url`` or ``$LTOS_DATA_URL``) points at a mirror that serves the same
paths, e.g. ``file:///media/usb/RoadnetSZ`` for a copy of the repository.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ltos_traffic import atomic
from ltos_traffic.errors import UserError
from ltos_traffic.net.cityflow import UPSTREAM_URL, Upstream, data_root, dataset, manual_route
from ltos_traffic.version import __version__

BASE_URL_ENV = "LTOS_DATA_URL"
TIMEOUT_S = 60.0  # per file: connecting and reading


class FetchError(UserError):
    """A download failed or did not match its checksum: not the user's input, so exit code 1."""

    exit_code = 1


@dataclass(frozen=True)
class Fetched:
    """One file of a fetched dataset.

    Attributes:
        path: where it is now.
        url: where it was downloaded from (``None`` when it was already there).
        size: bytes.
    """

    path: Path
    url: str | None
    size: int


def base_url_from(option: str | None) -> str:
    """``option`` (``--base-url``), else ``$LTOS_DATA_URL``, else the pinned GitHub URL.

    Raises:
        UserError: a URL that is not http, https or file.
    """
    url = option or os.environ.get(BASE_URL_ENV) or UPSTREAM_URL
    if urllib.parse.urlsplit(url).scheme not in ("http", "https", "file"):
        raise UserError(
            f"the data base URL must start with http://, https:// or file://, got {url!r}"
        )
    return url


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_dataset(
    name: str,
    data_dir: str | None = None,
    *,
    base_url: str | None = None,
    force: bool = False,
    timeout_s: float = TIMEOUT_S,
) -> list[Fetched]:
    """Download a dataset's files into the data folder, after checking their SHA-256.

    Every missing file is downloaded and checked before any is written, so a
    failed fetch leaves the data folder as it was.

    Args:
        name: ``"shenzhen"`` or ``"ltos6x6"``.
        data_dir: the data folder (``--data-dir``); ``None`` for ``$LTOS_DATA``
            or the default, as :func:`ltos_traffic.net.cityflow.data_root` decides.
        base_url: where the upstream paths are served; see :func:`base_url_from`.
        force: replace a file that is there but differs from the pinned one.
        timeout_s: seconds to wait for a connection or for data, per file.

    Returns:
        The roadnet and the flow, in that order.

    Raises:
        UserError: an unknown name, a differing file without ``force``, or an
            unwritable folder.
        FetchError: offline, an HTTP error, or a checksum mismatch; the message
            names the manual route.
    """
    ds = dataset(name)
    root, origin = data_root(data_dir)
    base = base_url_from(base_url)
    folder = root / ds.folder
    wanted: list[tuple[Path, Upstream]] = []
    for file, up in ds.files():
        path = folder / file
        if path.is_file():
            if sha256_of(path) == up.sha256:
                continue
            if not force:
                raise UserError(
                    f"{path} is there but is not the pinned upstream file (SHA-256 differs); "
                    "move it away or pass --force to replace it"
                )
        wanted.append((path, up))
    downloads = {path: _download(up, base, timeout_s, name, root) for path, up in wanted}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path, data in downloads.items():
            atomic.atomic_write_bytes(path, data)
    except OSError as exc:
        raise UserError(
            f"cannot write the {name!r} data to {folder} ({origin}): {exc.strerror or exc}; "
            "choose another --data-dir"
        ) from None
    return [
        Fetched(folder / file, up.url(base) if folder / file in downloads else None, up.size)
        for file, up in ds.files()
    ]


def _download(up: Upstream, base_url: str, timeout_s: float, name: str, root: Path) -> bytes:
    """The bytes of one upstream file, checked against its pinned size and SHA-256."""
    url = up.url(base_url)
    by_hand = f"download by hand {manual_route(name, root)}"
    request = urllib.request.Request(url, headers={"User-Agent": f"ltos-traffic/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            data = response.read(up.size + 1)  # one byte more reveals a longer file
    except urllib.error.HTTPError as exc:
        raise FetchError(
            f"cannot download {url}: HTTP {exc.code} {exc.reason}; {by_hand}"
        ) from None
    except urllib.error.URLError as exc:
        raise FetchError(f"cannot download {url}: {exc.reason}; {by_hand}") from None
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, short reads
        reason = str(exc) or type(exc).__name__
        raise FetchError(f"cannot download {url}: {reason}; {by_hand}") from None
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != up.size or digest != up.sha256:
        raise FetchError(
            f"{url} is not the pinned file ({len(data):,} bytes, SHA-256 {digest[:12]}...; "
            f"expected {up.size:,} bytes, {up.sha256[:12]}...); nothing was saved; {by_hand}"
        )
    return data
