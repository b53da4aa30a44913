"""Three local `nats-server` processes in one JetStream cluster, for the lost-server trials.

Loopback ports chosen free at start; each server's JetStream store in the test's tmp
folder, kept across a kill and a restart (a restarted server catches up from its
peers, as in production). Servers are stopped with SIGKILL: no goodbye to the cluster.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


async def quiet(_error: Exception) -> None:
    """nats-py's default error callback logs a traceback per failed attempt; a lost server is the point here."""


def nats_server_binary() -> str | None:
    return shutil.which("nats-server") or ("/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server")
                                           else None)


class NatsCluster:
    """`n1`, `n2`, `n3`; `url` lists all three, as a production client would."""

    def __init__(self, folder: Path, size: int = 3) -> None:
        self.binary = nats_server_binary()
        self.folder = folder
        ports = _free_ports(2 * size)
        self.client_ports, self.route_ports = ports[:size], ports[size:]
        self.names = [f"n{number + 1}" for number in range(size)]
        self.processes: dict[str, subprocess.Popen | None] = {name: None for name in self.names}
        routes = ", ".join(f'"nats-route://127.0.0.1:{port}"' for port in self.route_ports)
        for name, client, route in zip(self.names, self.client_ports, self.route_ports):
            (folder / name).mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.conf").write_text(
                f'server_name: {name}\nlisten: "127.0.0.1:{client}"\n'
                f'jetstream {{ store_dir: "{folder / name}", max_memory_store: 64MB, max_file_store: 1GB }}\n'
                f'cluster {{ name: "ansinh-test", listen: "127.0.0.1:{route}", routes: [{routes}] }}\n')

    @property
    def url(self) -> str:
        return ",".join(f"nats://127.0.0.1:{port}" for port in self.client_ports)

    @property
    def servers(self) -> list[str]:
        return self.url.split(",")

    def url_of(self, name: str) -> str:
        return f"nats://127.0.0.1:{self.client_ports[self.names.index(name)]}"

    def start(self, name: str) -> None:
        log = open(self.folder / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen([self.binary, "-c", str(self.folder / f"{name}.conf")],
                                                stdout=log, stderr=log)
        log.close()

    def kill(self, name: str) -> None:
        process = self.processes[name]
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        self.processes[name] = None

    def start_all(self) -> None:
        for name in self.names:
            self.start(name)

    def stop_all(self) -> None:
        for name in self.names:
            self.kill(name)

    def reachable(self, name: str) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.client_ports[self.names.index(name)]), timeout=0.5).close()
            return True
        except OSError:
            return False

    async def wait_ready(self, within_seconds: float = 30.0) -> None:
        """Every running server answers JetStream requests (the cluster has elected its meta leader)."""
        import nats

        deadline = time.monotonic() + within_seconds
        pending = [name for name, process in self.processes.items() if process is not None]
        while pending:
            name = pending[0]
            try:
                nc = await nats.connect(self.url_of(name), connect_timeout=1, max_reconnect_attempts=0, error_cb=quiet)
                try:
                    await nc.jetstream().account_info()
                    pending.pop(0)
                finally:
                    await nc.close()
            except Exception as error:  # noqa: BLE001 - not up yet, or no meta leader yet
                if time.monotonic() > deadline:
                    raise TimeoutError(f"NATS cluster server {name} not ready within {within_seconds} s: "
                                       f"{type(error).__name__} {error}") from None
                await asyncio.sleep(0.2)

    async def stream_leader(self, stream: str, other_than: str = "", within_seconds: float = 30.0) -> str:
        """The server leading `stream` now, waiting out an election (and one that is not `other_than`)."""
        import nats

        deadline = time.monotonic() + within_seconds
        while True:
            try:
                nc = await nats.connect(self.servers, connect_timeout=1, max_reconnect_attempts=1, error_cb=quiet)
                try:
                    info = await nc.jetstream().stream_info(stream)
                    if info.cluster is not None and info.cluster.leader and info.cluster.leader != other_than:
                        return info.cluster.leader
                finally:
                    await nc.close()
            except Exception:  # noqa: BLE001 - during an election the request can fail; ask again
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"stream {stream} has no leader after {within_seconds} s")
            await asyncio.sleep(0.2)
