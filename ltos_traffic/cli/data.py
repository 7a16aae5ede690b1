"""``ltos-traffic data fetch``: download the LToS CityFlow data (Shenzhen, ltos6x6)."""

from __future__ import annotations

import click

from ltos_traffic.net.cityflow import DATASETS, UPSTREAM_COMMIT, UPSTREAM_REPO
from ltos_traffic.net.fetch import BASE_URL_ENV


@click.group("data")
def data_cmd() -> None:
    """The third-party data of the shenzhen and ltos6x6 networks."""


@data_cmd.command("fetch")
@click.argument("names", nargs=-1, required=True, type=click.Choice(sorted(DATASETS)))
@click.option(
    "--data-dir",
    default=None,
    help="Data folder to fill (default: env LTOS_DATA, else ../shared/data/ltos-cityflow).",
)
@click.option(
    "--base-url",
    default=None,
    help=f"Mirror serving the repository's paths (or env {BASE_URL_ENV}); default GitHub.",
)
@click.option("--force", is_flag=True, help="Replace files that differ from the pinned ones.")
def fetch_cmd(
    names: tuple[str, ...], data_dir: str | None, base_url: str | None, force: bool
) -> None:
    """Download the authors' CityFlow files of NAMES (shenzhen, ltos6x6).

    The files come from the public repository zhuliwen/RoadnetSZ at a pinned
    commit and are checked against pinned SHA-256 sums before they are saved,
    into the folder that `run --net NAME` reads. Files already there and intact
    are kept, so running it again checks a copy made by hand.
    """
    from ltos_traffic.net.fetch import fetch_dataset

    short = UPSTREAM_COMMIT[:7]
    for name in dict.fromkeys(names):
        files = fetch_dataset(name, data_dir, base_url=base_url, force=force)
        for file in files:
            how = f"downloaded from {file.url}" if file.url else "already there"
            click.echo(f"{file.path}  {file.size:,} bytes, SHA-256 ok, {how}")
        same_dir = f" --data-dir {data_dir}" if data_dir else ""
        click.echo(
            f"{name}: {UPSTREAM_REPO}@{short} in {files[0].path.parent}; "
            f"`ltos-traffic run --net {name}{same_dir}` uses it"
        )
