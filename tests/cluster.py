"""Real Redis Clusters and Sentinels for tests: redis-server processes on private ports of
127.0.0.1, in a temporary directory, ended with everything they started.

A cluster is 3 masters and 3 replicas made by `redis-cli --cluster create`, with a node
timeout of a second so that a killed master's replica takes over within a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
import redis.cluster
from redis.crc import key_slot

from liveblog.embedded import find_redis_server
from tests.support import free_port, wait_until

NODE_TIMEOUT_MS = 1000


@dataclass
class Node:
    port: int
    process: subprocess.Popen[bytes]
    directory: Path
    command: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)  # type: ignore[arg-type]

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """kill -9: no goodbye to its clients or to the cluster."""
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def restart(self) -> None:
        """Start it again on its port and files (a cluster node rejoins from nodes.conf)."""
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL,
                                        start_new_session=True)
        wait_until(self.answers, what=f"redis-server on {self.port} to answer again")

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def info(self, section: str) -> dict[str, object]:
        with self.client(socket_timeout=2) as client:
            return dict(client.info(section))

    def answers(self) -> bool:
        try:
            with self.client(socket_timeout=1) as client:
                return bool(client.ping())
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            return False


def start_node(directory: Path, *extra: str) -> Node:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1",
               "--dir", str(directory), "--save", "", "--appendonly", "yes",
               "--appendfsync", "everysec", "--logfile", str(directory / "redis.log"), *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
    node = Node(port, process, directory, command)
    try:
        wait_until(node.answers, what=f"redis-server on {port} to answer")
    except BaseException:
        node.kill()
        raise
    return node


@dataclass
class Cluster:
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        """One node is enough: the client learns the others from it."""
        return f"redis://{self.nodes[0].address}"

    def client(self) -> redis.cluster.RedisCluster:
        return redis.cluster.RedisCluster.from_url(self.url)

    def live_nodes(self) -> list[Node]:
        return [node for node in self.nodes if node.alive()]

    def masters(self) -> list[Node]:
        return [node for node in self.live_nodes()
                if node.info("replication").get("role") == "master"]

    def master_of(self, key: str) -> Node:
        """The node that serves `key`'s slot as its master, as the live masters see it."""
        slot = key_slot(key.encode())
        for node in self.masters():
            with node.client(socket_timeout=2) as client:
                # CLUSTER SLOTS: [start, end, [host, port, id], replicas...], master first.
                for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                    if start <= slot <= end and int(master[1]) == node.port:
                        return node
        raise AssertionError(f"no master serves slot {slot}")

    def replicas_of(self, master: Node) -> list[Node]:
        found = []
        for node in self.live_nodes():
            info = node.info("replication")
            if info.get("role") == "slave" and info.get("master_port") == master.port:
                found.append(node)
        return found

    def flush(self) -> None:
        """Empty every master (FLUSHALL replicates to its replicas)."""
        for node in self.masters():
            with node.client() as client:
                client.flushall()
                # Replicas follow, so a test's first read of a replica sees it empty.
                client.execute_command("WAIT", 1, 2000)

    def healthy(self) -> bool:
        """Every live node says cluster_state:ok and sees every slot served."""
        for node in self.live_nodes():
            try:
                with node.client(socket_timeout=1) as client:
                    info = client.execute_command("CLUSTER", "INFO")
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                return False
            text = info.decode() if isinstance(info, bytes) else str(info)
            if "cluster_state:ok" not in text or "cluster_slots_ok:16384" not in text:
                return False
        return True

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_cluster(directory: Path, masters: int = 3, replicas: int = 1) -> Cluster:
    """masters * (1 + replicas) nodes made one cluster; waits until every node says ok and
    every replica has synced."""
    cluster = Cluster()
    try:
        for number in range(masters * (1 + replicas)):
            node_dir = directory / f"node{number}"
            cluster.nodes.append(start_node(
                node_dir, "--cluster-enabled", "yes",
                "--cluster-config-file", str(node_dir / "nodes.conf"),
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                # A replica may take over whatever its last contact with the master was:
                # the tests kill masters on purpose.
                "--cluster-replica-validity-factor", "0",
            ))
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(node.address for node in cluster.nodes),
             "--cluster-replicas", str(replicas), "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
        )
        wait_until(cluster.healthy, timeout=30, what="cluster_state:ok on every node")
        wait_until(lambda: all(
            node.info("replication").get("master_link_status") == "up"
            for node in cluster.nodes if node.info("replication").get("role") == "slave"
        ), timeout=30, what="every replica to sync with its master")
    except BaseException:
        cluster.stop()
        raise
    return cluster


async def post_until_acknowledged(
        http: httpx.AsyncClient, reporter: str, number: int,
        when_refused: Callable[[], None]) -> tuple[str, int]:
    """Post update `number` with its own Idempotency-Key until it is acknowledged (201),
    through a failover: a 503 or a broken connection means "retry with the same key", and
    calls `when_refused` (which may restart a node). The event id and the refusals."""
    key = f"post-{number}"
    headers = {"Authorization": f"Bearer {reporter}", "Idempotency-Key": key}
    deadline = time.monotonic() + 30
    answer = None
    refused = 0
    while True:
        assert time.monotonic() < deadline, f"{key} never acknowledged: {answer and answer.text}"
        try:
            answer = await http.post("/api/blogs/tartus/entries", headers=headers,
                                     json={"body": f"Update {number}"})
        except httpx.TransportError:
            answer = None
        if answer is not None and answer.status_code == 201:
            return answer.json()["event_id"], refused
        assert answer is None or answer.status_code == 503, answer.text
        refused += 1
        when_refused()
        await asyncio.sleep(0.2)
