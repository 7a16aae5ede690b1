"""``ltos-traffic import-cityflow``: convert a CityFlow roadnet and flow to SUMO files."""

from __future__ import annotations

from pathlib import Path

import click

from ltos_traffic.net.cityflow import count_vehicles, import_cityflow, read_net_summary


@click.command("import-cityflow")
@click.option(
    "--roadnet",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CityFlow roadnet JSON.",
)
@click.option(
    "--flow",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CityFlow flow JSON (vehicles and their routes).",
)
@click.option("--name", required=True, help="Stem of the files: NAME.net.xml, NAME.rou.xml.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: ./NAME).",
)
def import_cityflow_cmd(roadnet: Path, flow: Path, name: str, out: Path | None) -> None:
    """Convert a CityFlow network and demand into a SUMO network and route file.

    Virtual CityFlow intersections become unsignalised boundary nodes, the
    others traffic lights; every CityFlow lane link becomes one SUMO connection.
    Signal phases are built from movements when the network is run, not from
    CityFlow's lightphases. Every route is checked to be drivable.
    """
    files = import_cityflow(roadnet, flow, name, out if out is not None else Path(name))
    net = read_net_summary(files.net_file)
    n, first, last = count_vehicles(files.route_files[0])
    click.echo(
        f"{files.net_file}: {net.junctions} junctions, {len(net.traffic_lights)} traffic lights, "
        f"{len(net.edges)} edges"
    )
    click.echo(f"{files.route_files[0]}: {n:,} vehicles departing {first:g}-{last:g} s")
