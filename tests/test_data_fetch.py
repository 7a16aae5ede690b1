"""``ltos-traffic data fetch`` against an HTTP server on 127.0.0.1.

The server serves tiny synthetic CityFlow files that the test makes (the
two-intersection network of ``test_cityflow``), never the authors' data, at the
upstream paths; the test pins their SHA-256 in place of the real ones. Checked:
download and store, a second fetch downloads nothing, a corrupted or longer
file and an unreachable server are one-line errors naming the manual route and
leave the data folder empty, a differing local file needs --force, and
``run --net shenzhen`` then works on the fetched files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cityflow import tiny_flow, tiny_roadnet

from ltos_traffic.cli import main
from ltos_traffic.net import cityflow
from ltos_traffic.net.cityflow import UPSTREAM_URL, Upstream

SHENZHEN = cityflow.DATASETS["shenzhen"]


class Mirror(http.server.ThreadingHTTPServer):
    """Serves ``files`` (URL path -> bytes) and counts the requests."""

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = files
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/mirror"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Mirror

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path.removeprefix("/mirror/"))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass


@pytest.fixture()
def tiny_files() -> dict[str, bytes]:
    """Upstream path -> bytes of a tiny synthetic roadnet and flow."""
    return {
        SHENZHEN.roadnet_upstream.path: json.dumps(tiny_roadnet()).encode(),
        SHENZHEN.flow_upstream.path: json.dumps(tiny_flow()).encode(),
    }


@pytest.fixture()
def mirror(tiny_files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> Iterator[Mirror]:
    """A loopback server of the tiny files, pinned as the shenzhen dataset."""

    def pin(up: Upstream) -> Upstream:
        data = tiny_files[up.path]
        return Upstream(up.path, hashlib.sha256(data).hexdigest(), len(data))

    pinned = dataclasses.replace(
        SHENZHEN, roadnet_upstream=pin(SHENZHEN.roadnet_upstream),
        flow_upstream=pin(SHENZHEN.flow_upstream),
    )  # fmt: skip
    monkeypatch.setitem(cityflow.DATASETS, "shenzhen", pinned)
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "LTOS_DATA_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    server = Mirror(dict(tiny_files))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def ltos(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    """Run the real entry point in this process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["ltos-traffic", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_manual_route(err: str, data: Path) -> None:
    """One line that names each upstream URL (GitHub, pinned commit) and where to put it."""
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    for file, up in SHENZHEN.files():
        assert f"{UPSTREAM_URL}/{up.path} as {data / 'shenzhen' / file}" in err


def test_fetch_stores_the_checked_files_and_run_uses_them(
    mirror: Mirror, tiny_files: dict[str, bytes], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    data = tmp_path / "data"
    code, out, err = ltos(capsys, monkeypatch, "data", "fetch", "shenzhen",
                          "--data-dir", str(data), "--base-url", mirror.url)  # fmt: skip
    assert code == 0, err
    for file, up in SHENZHEN.files():
        assert (data / "shenzhen" / file).read_bytes() == tiny_files[up.path]
        assert f"{data / 'shenzhen' / file}" in out
    assert "downloaded from" in out and "SHA-256 ok" in out
    assert sorted(mirror.requests) == sorted(f"/mirror/{p}" for p in tiny_files)

    # a second fetch checks the files and downloads nothing
    monkeypatch.setenv("LTOS_DATA_URL", mirror.url)
    code, out, err = ltos(capsys, monkeypatch, "data", "fetch", "shenzhen", "--data-dir", str(data))
    assert code == 0, err
    assert out.count("already there") == 2 and len(mirror.requests) == 2

    run = subprocess.run(
        [sys.executable, "-m", "ltos_traffic.cli", "run", "--net", "shenzhen",
         "--data-dir", str(data), "--controller", "max_pressure", "--seconds", "120",
         "--out", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(
        (tmp_path / "runs" / "shenzhen_v1" / "max_pressure" / "seed0" / "summary.json").read_text()
    )
    assert summary["arrived"] > 0


@pytest.mark.parametrize("damage", ["flipped byte", "longer file"])
def test_a_corrupted_file_is_refused_and_nothing_is_saved(
    damage: str, mirror: Mirror, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    flow = mirror.files[SHENZHEN.flow_upstream.path]
    bad = flow[:10] + bytes([flow[10] ^ 1]) + flow[11:] if damage == "flipped byte" else flow + b" "
    mirror.files[SHENZHEN.flow_upstream.path] = bad
    data = tmp_path / "data"
    code, _, err = ltos(capsys, monkeypatch, "data", "fetch", "shenzhen",
                        "--data-dir", str(data), "--base-url", mirror.url)  # fmt: skip
    assert code == 1
    assert "is not the pinned file" in err and "nothing was saved" in err
    assert_manual_route(err, data)
    assert not data.exists() or not any(data.rglob("*.json"))  # the good roadnet is not kept


def test_offline_or_missing_files_name_the_manual_route(
    mirror: Mirror, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    data = tmp_path / "data"
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    code, _, err = ltos(capsys, monkeypatch, "data", "fetch", "shenzhen",
                        "--data-dir", str(data), "--base-url", closed)  # fmt: skip
    assert code == 1 and "cannot download" in err
    assert_manual_route(err, data)

    elsewhere = mirror.url + "/elsewhere"
    code, _, err = ltos(capsys, monkeypatch, "data", "fetch", "shenzhen",
                        "--data-dir", str(data), "--base-url", elsewhere)  # fmt: skip
    assert code == 1 and "HTTP 404" in err
    assert_manual_route(err, data)
    assert not data.exists()

    # and the run that needs the data names the fetch command and the manual route
    code, _, err = ltos(capsys, monkeypatch, "run", "--net", "shenzhen", "--data-dir", str(data),
                        "--out", str(tmp_path / "runs"))  # fmt: skip
    assert code == 2
    assert f"ltos-traffic data fetch shenzhen --data-dir {data}" in err
    assert_manual_route(err, data)


def test_a_differing_local_file_is_replaced_only_with_force(
    mirror: Mirror, tiny_files: dict[str, bytes], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    mine = tmp_path / "data" / "shenzhen" / SHENZHEN.roadnet
    mine.parent.mkdir(parents=True)
    mine.write_text("{}")
    args = ("data", "fetch", "shenzhen", "--data-dir", str(tmp_path / "data"),
            "--base-url", mirror.url)  # fmt: skip
    code, _, err = ltos(capsys, monkeypatch, *args)
    assert code == 2 and "--force" in err and str(mine) in err
    assert mine.read_text() == "{}" and mirror.requests == []
    code, _, err = ltos(capsys, monkeypatch, *args, "--force")
    assert code == 0, err
    assert mine.read_bytes() == tiny_files[SHENZHEN.roadnet_upstream.path]


def test_pins_match_the_local_copy_of_the_release() -> None:
    """Where ../shared holds the authors' files, the pinned sizes and SHA-256 are theirs."""
    root = cityflow.default_data_dir()
    for ds in cityflow.DATASETS.values():
        for file, up in ds.files():
            path = root / ds.folder / file
            if not path.is_file():
                pytest.skip(f"{path} is not here")
            data = path.read_bytes()
            assert (len(data), hashlib.sha256(data).hexdigest()) == (up.size, up.sha256), path
            assert up.url().startswith(
                f"https://raw.githubusercontent.com/zhuliwen/RoadnetSZ/{cityflow.UPSTREAM_COMMIT}/"
            )
