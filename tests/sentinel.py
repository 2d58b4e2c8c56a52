"""A real Redis Sentinel deployment for tests: a master, a replica and three Sentinels, all
redis-server processes on private ports of 127.0.0.1 in a temporary directory, ended with
everything they started.

The Sentinels agree on a failure with a quorum of 2, mark a master down after a second of
silence and may retry a failover after 5 s, so a killed master's replica takes over within
a few seconds.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis

from liveblog.embedded import find_redis_server
from tests.cluster import Node, start_node
from tests.support import free_port, wait_until

SERVICE = "liveblog"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


@dataclass
class Sentinels:
    """The data nodes (the master first, as started) and the Sentinels that watch them."""

    nodes: list[Node]
    sentinels: list[Node] = field(default_factory=list)
    service: str = SERVICE

    @property
    def url(self) -> str:
        hosts = ",".join(sentinel.address for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}"

    def master_port(self) -> int | None:
        """The master's port, as the first Sentinel that answers says."""
        for sentinel in self.sentinels:
            if not sentinel.alive():
                continue
            try:
                with sentinel.client(socket_timeout=1) as client:
                    address = client.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                continue
            return None if address is None else int(address[1])
        return None

    def master(self) -> Node:
        """The data node the Sentinels name as master now."""
        port = self.master_port()
        return next(node for node in self.nodes if node.port == port)

    def replicas(self) -> list[Node]:
        """Live data nodes that follow the current master, their link up."""
        port = self.master_port()
        found = []
        for node in self.nodes:
            if node.alive() and node.answers():
                info = node.info("replication")
                if info.get("role") == "slave" and info.get("master_port") == port \
                        and info.get("master_link_status") == "up":
                    found.append(node)
        return found

    def settled(self) -> bool:
        """Every Sentinel names the same live master, knows the other Sentinels and every
        live replica, and every replica has synced: a failover can happen now."""
        want_replicas = sum(node.alive() for node in self.nodes) - 1
        seen = set()
        for sentinel in self.sentinels:
            try:
                with sentinel.client(socket_timeout=1, decode_responses=True) as client:
                    raw = client.execute_command("SENTINEL", "MASTER", self.service)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                return False
            state = dict(zip(raw[::2], raw[1::2], strict=True)) if isinstance(raw, list) \
                else raw
            if state["flags"] != "master" \
                    or int(state["num-other-sentinels"]) != len(self.sentinels) - 1 \
                    or int(state["num-slaves"]) < want_replicas:
                return False
            seen.add(int(state["port"]))
        return len(seen) == 1 and len(self.replicas()) == want_replicas

    def stop(self) -> None:
        """The Sentinels first: a master that stops must not set off a failover."""
        for node in [*self.sentinels, *self.nodes]:
            node.stop()


def start_sentinel(directory: Path, master: Node, quorum: int) -> Node:
    """`redis-server sentinel.conf --sentinel`: the file must be writable (a Sentinel
    keeps what it learns in it)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = directory / "sentinel.conf"
    conf.write_text("\n".join([
        f"port {port}",
        "bind 127.0.0.1",
        f"dir {directory}",
        f"logfile {directory / 'sentinel.log'}",
        f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} {quorum}",
        f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
        f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}",
        "",
    ]))
    command = [find_redis_server(), str(conf), "--sentinel"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
    sentinel = Node(port, process, directory, command)
    try:
        wait_until(sentinel.answers, what=f"the Sentinel on {port} to answer")
    except BaseException:
        sentinel.kill()
        raise
    return sentinel


def start_sentinels(directory: Path, replicas: int = 1, sentinels: int = 3) -> Sentinels:
    """A master, `replicas` replicas of it and `sentinels` Sentinels (quorum: a
    majority); waits until the Sentinels know each other and every replica has synced."""
    master = start_node(directory / "node0")
    deployment = Sentinels([master])
    try:
        for number in range(1, replicas + 1):
            deployment.nodes.append(start_node(
                directory / f"node{number}", "--replicaof", "127.0.0.1", str(master.port)))
        for number in range(sentinels):
            deployment.sentinels.append(
                start_sentinel(directory / f"sentinel{number}", master, sentinels // 2 + 1))
        # The Sentinels find each other through the master's hello channel (every 2 s).
        wait_until(deployment.settled, timeout=30,
                   what="the Sentinels to know each other and the replicas to sync")
    except BaseException:
        deployment.stop()
        raise
    return deployment
