"""scripts/fetch-webchat.sh: a bundle in place that checks out is kept without a download;
one that does not is removed, and a tarball that does not match its pinned integrity is
refused with nothing written.

The script runs in a real bash, in a copy of the checkout's layout, against a registry
that is a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import shutil
import tarfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web
from support.server import REPO, free_port

SCRIPT = REPO / "scripts" / "fetch-webchat.sh"
BUNDLE = REPO / "adapters" / "channels" / "static" / "vendor" / "webchat.js"


def _checkout(tmp_path: Path) -> Path:
    """A directory laid out like the checkout, holding only the script."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts" / SCRIPT.name)
    return tmp_path


@asynccontextmanager
async def registry(tarball: bytes) -> AsyncIterator[tuple[str, list[str]]]:
    """A registry answering every tarball request with ``tarball``; yields its URL and the
    paths asked for."""
    asked: list[str] = []

    async def serve(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.Response(body=tarball, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", asked
    finally:
        await runner.cleanup()


async def _run(checkout: Path, registry_url: str) -> tuple[int, str]:
    env = {**os.environ, "NPM_CONFIG_REGISTRY": registry_url}
    process = await asyncio.create_subprocess_exec(
        "bash",
        str(checkout / "scripts" / SCRIPT.name),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode()


def _tarball(bundle: bytes) -> bytes:
    """An npm-style tarball holding ``package/dist/webchat.js``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (
            ("package/dist/webchat.js", bundle),
            ("package/dist/webchat.js.LICENSE.txt", b"MIT"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


async def test_a_bundle_in_place_that_checks_out_is_kept_without_a_download(
    tmp_path: Path,
) -> None:
    checkout = _checkout(tmp_path)
    vendor = checkout / "adapters" / "channels" / "static" / "vendor"
    vendor.mkdir(parents=True)
    shutil.copy(BUNDLE, vendor / "webchat.js")  # fetched by setup, as every run needs
    async with registry(b"") as (url, asked):
        code, out = await _run(checkout, url)
    assert (code, out, asked) == (0, "", [])


async def test_a_changed_bundle_goes_and_a_tarball_not_the_pinned_one_is_refused(
    tmp_path: Path,
) -> None:
    checkout = _checkout(tmp_path)
    vendor = checkout / "adapters" / "channels" / "static" / "vendor"
    vendor.mkdir(parents=True)
    (vendor / "webchat.js").write_bytes(b"window.WebChat = 'tampered';")
    async with registry(_tarball(b"alert('not Web Chat')")) as (url, asked):
        code, out = await _run(checkout, url)
    assert code == 1 and "does not match its registry integrity" in out
    assert asked == ["/botframework-webchat/-/botframework-webchat-4.18.1.tgz"]
    assert list(vendor.iterdir()) == []
