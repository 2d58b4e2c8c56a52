"""The `liveblog` command as a user runs it: serve on the embedded Redis, manage tokens,
stop, start again with the data intact."""

from __future__ import annotations

import ast
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from liveblog import tokens as minting
from tests.processes import (
    Processes,
    Served,
    children_of,
    cmdline,
    connection_owner,
    first_editor_token,
    group_members,
    live_pids,
    liveblog_env,
    redis_processes_for,
)
from tests.support import Api, Tokens, free_socket, wait_until


def liveblog(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "liveblog", *args], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "var"
    yield directory
    for pid in redis_processes_for(directory):  # never leave a server behind
        os.kill(pid, signal.SIGKILL)


def test_serve_runs_on_an_embedded_redis_that_keeps_its_data(data_dir: Path,
        processes: Processes) -> None:
    served = Served(processes, data_dir)
    assert len(redis_processes_for(data_dir)) == 1

    # A second command, while the server runs, shares its data.
    created = liveblog(served.env, "token", "create", "--name", "rania", "--role", "reporter")
    assert created.returncode == 0, created.stderr
    reporter = created.stdout.strip().splitlines()[-1]
    assert reporter.startswith("lb_")
    listed = liveblog(served.env, "token", "list")
    assert re.findall(r"^(\S+)\t(\S+)\t", listed.stdout, re.M) == \
        [("admin", "editor"), ("rania", "reporter")]
    assert "lb_" not in listed.stdout

    output = served.stop()
    editor = re.search(r"export LIVEBLOG_TOKEN=(\S+)", output)
    assert editor is not None, output
    # Where to go next (issue 10: a new user was shown only the API's addresses).
    for line in (f"home:     {served.url}/", f"console:  {served.url}/newsroom",
                 f"readers:  {served.url}/blogs/<slug>", f"blogs:    {served.url}/api/blogs"):
        assert line in output, output
    assert redis_processes_for(data_dir) == []
    assert (data_dir / "appendonly.aof").exists() or (data_dir / "appendonlydir").exists()

    # Start again: the tokens are still there, and no new editor token is printed.
    served = Served(processes, data_dir)
    auth = {"Authorization": f"Bearer {editor.group(1)}"}
    assert httpx.post(f"{served.url}/api/blogs", headers=auth,
                      json={"slug": "tartus", "title": "Tartus"}).status_code == 201
    posted = httpx.post(f"{served.url}/api/blogs/tartus/entries",
                        headers={"Authorization": f"Bearer {reporter}"}, json={"body": "Blast"})
    assert posted.status_code == 201
    assert "LIVEBLOG_TOKEN" not in served.output()
    # Then a crash, not a stop: kill -9 the redis-server (a SIGTERM would have it write out
    # its append-only file on the way out), then serve. What was acknowledged is on disk
    # already: `appendfsync always` writes and fsyncs it before Redis replies.
    [embedded] = redis_processes_for(data_dir)
    with redis.Redis(unix_socket_path=str(data_dir / "redis.sock")) as client:
        assert client.config_get("append*") == {"appendonly": "yes", "appendfsync": "always",
                                                 "appendfilename": "appendonly.aof",
                                                 "appenddirname": "appendonlydir"}
    os.kill(embedded, signal.SIGKILL)
    served.spawned.close()

    # And once more, to read what the previous run wrote.
    served = Served(processes, data_dir)
    blog = httpx.get(f"{served.url}/api/blogs/tartus").json()
    assert [e["body"] for e in blog["entries"]] == ["Blast"]
    revoked = liveblog(served.env, "token", "revoke", "rania")
    assert revoked.returncode == 0
    again = httpx.post(f"{served.url}/api/blogs/tartus/entries",
                       headers={"Authorization": f"Bearer {reporter}"}, json={"body": "x"})
    assert again.status_code == 401
    served.stop()


def test_token_commands_start_and_stop_their_own_redis_when_none_runs(data_dir: Path) -> None:
    env = liveblog_env(data_dir, 8000)
    created = liveblog(env, "token", "create", "--name", "ed", "--role", "editor")
    assert created.returncode == 0, created.stderr
    assert redis_processes_for(data_dir) == []
    duplicate = liveblog(env, "token", "create", "--name", "ed", "--role", "editor")
    assert duplicate.returncode != 0 and "exists already" in duplicate.stderr
    assert liveblog(env, "token", "revoke", "nobody").returncode != 0
    assert "ed\teditor" in liveblog(env, "token", "list").stdout
    assert redis_processes_for(data_dir) == []


def test_a_name_given_again_is_someone_new_and_rotation_keeps_the_identity(
        tmp_path: Path, api: Api, tokens: Tokens, blog: str, redis_url: str) -> None:
    """Revoke rania, create a new rania: the new holder must not own the old entries or the
    old idempotency keys. `token rotate` gives the same identity a new secret."""
    env = liveblog_env(tmp_path / "var", 8000, LIVEBLOG_REDIS_URL=redis_url)
    entries = "/api/blogs/tartus/entries"
    key = {"Idempotency-Key": "first-report"}
    first = api("POST", entries, tokens.reporter, json={"body": "Blast"}, headers=key)
    assert first.status_code == 201
    old_entry = first.json()["entry"]["id"]
    old_id = api("GET", "/api/me", tokens.reporter).json()["id"]

    assert liveblog(env, "token", "revoke", "rania").returncode == 0
    created = liveblog(env, "token", "create", "--name", "rania", "--role", "reporter")
    assert created.returncode == 0, created.stderr
    new_rania = created.stdout.strip().splitlines()[-1]
    me = api("GET", "/api/me", new_rania).json()
    assert me["name"] == "rania" and me["id"] != old_id

    for method, body in (("PATCH", {"body": "Mine now"}), ("DELETE", {"reason": "mine"})):
        refused = api(method, f"{entries}/{old_entry}", new_rania, json=body)
        assert refused.status_code == 403, refused.text
    repeat = api("POST", entries, new_rania, json={"body": "Blast"}, headers=key)
    assert repeat.status_code == 201 and "idempotent-replayed" not in repeat.headers
    assert repeat.json()["entry"]["id"] != old_entry  # a post of its own, not the old answer
    new_entry = repeat.json()["entry"]["id"]
    events = api("GET", "/api/blogs/tartus/events", tokens.editor).json()["events"]
    assert [(e["actor"], e["actor_id"]) for e in events[1:]] == \
        [("rania", old_id), ("rania", me["id"])]

    rotated = liveblog(env, "token", "rotate", "rania")
    assert rotated.returncode == 0, rotated.stderr
    secret = rotated.stdout.strip().splitlines()[-1]
    assert secret.startswith("lb_") and secret != new_rania
    assert api("GET", "/api/me", new_rania).status_code == 401
    assert api("GET", "/api/me", secret).json() == me  # the same identity
    edited = api("PATCH", f"{entries}/{new_entry}", secret, json={"body": "Blasts"})
    assert edited.status_code == 200, edited.text
    again = api("POST", entries, secret, json={"body": "Blast"}, headers=key)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["entry"]["id"] == new_entry
    assert liveblog(env, "token", "rotate", "nobody").returncode != 0
    listed = liveblog(env, "token", "list").stdout
    assert "rania\treporter\tcreated " in listed and f"identity {me['id']}" in listed


def test_serve_with_several_workers(data_dir: Path, processes: Processes) -> None:
    served = Served(processes, data_dir, "--workers", "2")
    # Two worker processes, children of the one `serve` started (besides its redis-server).
    workers = [pid for pid in children_of(served.process.pid)
               if "--multiprocessing-fork" in cmdline(pid)]
    assert len(workers) == 2, [cmdline(pid) for pid in children_of(served.process.pid)]
    # And both serve: each connection is accepted by one of them (whichever is free);
    # /proc says which one holds it.
    answered_by: dict[int, int] = {}
    for _ in range(400):
        with socket.create_connection(("127.0.0.1", served.port)) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.recv(4096).startswith(b"HTTP/1.1 200 ")
            owner = connection_owner(conn.getsockname()[1], served.port, workers)
            assert owner is not None
            answered_by[owner] = answered_by.get(owner, 0) + 1
        if len(answered_by) == 2:
            break
    assert set(answered_by) == set(workers), answered_by
    token = liveblog(served.env, "token", "create", "--name", "ed2", "--role", "editor")
    auth = {"Authorization": f"Bearer {token.stdout.strip().splitlines()[-1]}"}
    with httpx.Client(base_url=served.url) as client:
        assert client.post("/api/blogs", headers=auth,
                           json={"slug": "b", "title": "B"}).status_code == 201
        for n in range(20):  # new connections land on either worker; each reads its writes
            with httpx.Client(base_url=served.url) as fresh:
                posted = fresh.post("/api/blogs/b/entries", headers=auth,
                                    json={"body": f"update {n}"})
                assert posted.status_code == 201
                assert fresh.get("/api/blogs/b").json()["version"] == n + 2
    served.stop()
    assert redis_processes_for(data_dir) == []
    assert not any(pid in workers for pid, _ in live_pids())


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("LIVEBLOG_PORT", "eighty", "LIVEBLOG_PORT must be a whole number"),
        ("LIVEBLOG_PORT", "70000", "LIVEBLOG_PORT must be between 1 and 65535"),
        ("LIVEBLOG_REDIS_URL", "http://localhost", "LIVEBLOG_REDIS_URL must start with"),
        ("LIVEBLOG_MAX_BODY_BYTES", "-1", "LIVEBLOG_MAX_BODY_BYTES"),
        ("LIVEBLOG_PUBLIC_URL", "example.org", "LIVEBLOG_PUBLIC_URL must be an http(s) URL"),
    ],
)
def test_a_wrong_setting_fails_with_its_name(tmp_path: Path, setting: str, value: str,
                                             message: str) -> None:
    env = liveblog_env(tmp_path / "var", 8000, **{setting: value})
    result = liveblog(env, "serve")
    assert result.returncode == 2
    assert message in result.stderr


def test_an_unreachable_redis_url_fails_token_commands_clearly(tmp_path: Path) -> None:
    env = liveblog_env(tmp_path / "var", 8000, LIVEBLOG_REDIS_URL="unix:///nonexistent.sock")
    result = liveblog(env, "token", "list")
    assert result.returncode == 2
    assert "cannot reach LIVEBLOG_REDIS_URL (unix:///nonexistent.sock)" in result.stderr


def test_a_redis_password_is_never_printed(tmp_path: Path) -> None:
    env = liveblog_env(tmp_path / "var", 8000,
                       LIVEBLOG_REDIS_URL="redis://ops:s3cret-pw@127.0.0.1:1/0?password=s3cret-q")
    result = liveblog(env, "token", "list")
    assert result.returncode == 2
    assert "cannot reach LIVEBLOG_REDIS_URL (redis://ops:***@127.0.0.1:1/0?password=***)" \
        in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


def test_demo_tells_the_story_live_then_stops_cleanly(data_dir: Path,
                                                    processes: Processes) -> None:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = liveblog_env(data_dir, port)
    log = data_dir.parent / "demo.log"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    process = processes.spawn([sys.executable, "-m", "liveblog", "demo", "--pace", "0.05"],
                              env=env, log=log).process
    wait_until(lambda: "The story is told" in log.read_text() or process.poll() is not None,
               timeout=60, what="the demo to finish its story")
    output = log.read_text()
    assert f"Reader page:   http://127.0.0.1:{port}/blogs/tartus-jableh" in output, output
    blog = httpx.get(f"http://127.0.0.1:{port}/api/blogs/tartus-jableh").json()
    assert blog["total_entries"] == 11 and len(blog["facts"]) == 2
    assert blog["pinned"]["title"] == "Toll rises to 121, monitor says"
    photos = [e["image"] for e in blog["entries"] if e["image"]]
    assert {p["credit"] for p in photos} == {"Stringer / AFP / Getty Images",
                                             "Sana News / Reuters"}
    pictures = ["/static/demo/jableh.svg", "/static/demo/tartus.svg"]
    assert sorted(p["url"] for p in photos) == pictures
    # Bylines are people's names, not token names (issue 10).
    assert {e["author_name"] for e in blog["entries"]} <= {"Rania Haddad", "Omar Saleh",
                                                            "Lina Nasser"}
    assert "Rania Haddad" in {e["author_name"] for e in blog["entries"]}
    corrected = [e for e in blog["entries"] if e["title"] == "Bus station hit in Tartus"]
    assert corrected[0]["revision"] == 2 and "suicide bomber" in corrected[0]["body"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert redis_processes_for(data_dir) == []

    # Issue 9: the log names the pictures by path, not by the host and port the demo ran on
    # (they used to be http://127.0.0.1:PORT/static/demo/...).
    exported = liveblog(env, "export", "tartus-jableh")
    assert exported.returncode == 0, exported.stderr
    assert all(f'"url":"{p}"' in exported.stdout for p in pictures)
    assert "127.0.0.1" not in exported.stdout and f":{port}/" not in exported.stdout
    # So the same blog, served on another port under a public URL, shows them all.
    served = Served(processes, data_dir, LIVEBLOG_PUBLIC_URL="https://news.example")
    assert served.port != port
    page = httpx.get(f"{served.url}/blogs/tartus-jableh").text
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert sorted(sources) == pictures
    for source in sources:
        picture = httpx.get(served.url + source)
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/svg+xml"
    assert re.search(r'<meta property="og:image" content="https://news\.example/static/demo/'
                     r'(tartus|jableh)\.svg">', page), page[:2000]
    served.stop()

    # Issue 10: the demo made its three tokens once, and a second run reuses them (it used to
    # add desk2, rania2, omar2 on every run), tells how to revoke them, and posts fine.
    kept = data_dir / "demo-tokens.json"
    assert kept.stat().st_mode & 0o777 == 0o600
    for name in ("desk", "rania", "omar"):
        assert f"liveblog token revoke {name}\n" in output
    again = data_dir.parent / "demo-again.log"
    process = processes.spawn([sys.executable, "-m", "liveblog", "demo", "--pace", "0.05"],
                              env=env, log=again).process
    wait_until(lambda: "The story is told" in again.read_text() or process.poll() is not None,
               timeout=60, what="the second demo to finish its story")
    assert "The story is told" in again.read_text(), again.read_text()
    second = httpx.get(f"http://127.0.0.1:{port}/api/blogs/tartus-jableh-2").json()
    assert second["total_entries"] == 11
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    listed = liveblog(env, "token", "list")
    assert listed.returncode == 0, listed.stderr
    names = sorted(line.split("\t")[0] for line in listed.stdout.splitlines())
    assert names == ["desk", "omar", "rania"], listed.stdout


def test_serve_logs_requests_but_not_each_reader_stream(data_dir: Path,
        processes: Processes) -> None:
    # As in a terminal (test_logs.py reads the JSON lines of a served process).
    served = Served(processes, data_dir, LIVEBLOG_LOG_FORMAT="text")
    editor = re.search(r"export LIVEBLOG_TOKEN=(\S+)", served.output())
    assert editor is not None
    auth = {"Authorization": f"Bearer {editor.group(1)}"}
    assert httpx.post(f"{served.url}/api/blogs", headers=auth,
                      json={"slug": "tartus", "title": "Tartus"}).status_code == 201
    with httpx.stream("GET", f"{served.url}/blogs/tartus/stream", timeout=10) as stream:
        assert stream.status_code == 200
        assert any(line.startswith("event: snapshot") for line in _first_lines(stream))
    assert httpx.get(f"{served.url}/api/blogs/tartus").status_code == 200
    output = served.stop()
    assert '"GET /api/blogs/tartus HTTP/1.1" 200' in output
    assert "/stream" not in output


def _first_lines(stream: httpx.Response) -> Iterator[str]:
    for n, line in enumerate(stream.iter_lines()):
        yield line
        if n > 3:
            return


def test_a_test_that_fails_half_way_leaves_no_process_behind(tmp_path: Path) -> None:
    """A test run in a pytest of its own starts `liveblog serve --workers 2` (four
    processes with its redis-server) and fails on purpose: none of them outlives it."""
    record = tmp_path / "group"
    inner = tmp_path / "test_fails_on_purpose.py"
    inner.write_text(f'''
from pathlib import Path

from tests.conftest import processes  # noqa: F401 - the fixture under test
from tests.processes import Served, group_members


def test_fails_half_way(processes, tmp_path):
    served = Served(processes, tmp_path / "var", "--workers", "2")
    pgid = served.spawned.pgid
    Path({str(record)!r}).write_text(f"{{pgid}} {{len(group_members(pgid))}} {{tmp_path}}")
    raise AssertionError("failing on purpose")
''')
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(inner)],
        cwd=Path(__file__).parent.parent, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "failing on purpose" in result.stdout, result.stdout
    pgid, members, inner_tmp = record.read_text().split()
    assert int(members) >= 4  # serve, two workers, redis-server (and any helper of theirs)
    assert group_members(int(pgid)) == []
    assert redis_processes_for(Path(inner_tmp)) == []


def test_flags_reach_every_worker(data_dir: Path, processes: Processes) -> None:
    """Issue 9: `serve --port P` listened on P while the pages' links said :8000 (the app
    read its settings from the environment, where the flag was not)."""
    with free_socket() as sock:
        port = sock.getsockname()[1]
    env = liveblog_env(data_dir, 8000)
    del env["LIVEBLOG_PORT"]  # the flag alone says where
    spawned = processes.spawn(
        [sys.executable, "-m", "liveblog", "serve", "--port", str(port), "--workers", "2"],
        env=env, log=data_dir.parent / "flags.log")
    base = f"http://127.0.0.1:{port}"
    token = first_editor_token(spawned, base, timeout=30)
    assert httpx.post(f"{base}/api/blogs", json={"slug": "b", "title": "B"},
                      headers={"Authorization": f"Bearer {token}"}).status_code == 201
    for _ in range(10):  # new connections, so both workers answer some
        with httpx.Client() as fresh:
            page = fresh.get(f"{base}/blogs/b").text
        assert f'<link rel="canonical" href="{base}/blogs/b">' in page
        assert ":8000" not in page


# -- the command line as a package (issue 9) ----------------------------------------------

PACKAGE = Path(minting.__file__).parent
WEB_STACK = ("starlette", "uvicorn", "sse_starlette", "liveblog.web")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["liveblog", *path.relative_to(PACKAGE).with_suffix("").parts]
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Which liveblog modules each one imports, at the top or inside a function alike (an
    import in a function only puts the cycle off until the function runs)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and \
                    node.module in modules:
                for alias in node.names:  # a submodule, or a name of the module itself
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
        graph[name] = targets - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle's modules (the strongly connected components with more than one)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in order:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], order[target])
        if low[node] == order[node]:
            component = [stack.pop()]
            while component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in order:
            visit(node)
    return found


def test_no_module_of_liveblog_imports_one_that_imports_it_back() -> None:
    """cli.py imported demo.py, which imported cli.py (inside a function, to dodge the
    cycle at import time). The check itself finds such a cycle."""
    graph = import_graph()
    assert {"liveblog.cli.serve", "liveblog.cli.tokens", "liveblog.cli.newsroom",
            "liveblog.cli.log", "liveblog.cli.demo"} <= graph["liveblog.cli"]
    assert cycles(graph) == []
    assert cycles({**graph, "liveblog.cli.demo": graph["liveblog.cli.demo"] | {"liveblog.cli"}}) \
        == [["liveblog.cli", "liveblog.cli.demo"]]


def test_each_command_module_imports_first_in_a_fresh_interpreter() -> None:
    names = sorted(name for name in _modules() if name.startswith("liveblog.cli"))
    assert len(names) >= 7
    for name in names:
        result = subprocess.run([sys.executable, "-c", f"import {name}"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (name, result.stderr)


@pytest.mark.parametrize("args", [["--help"], ["token", "list", "--help"],
                                  ["serve", "--help"], ["demo", "--help"]])
def test_commands_that_do_not_serve_do_not_load_the_web_stack(args: list[str]) -> None:
    """What a process loads, from Python's own account (-X importtime)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "liveblog", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Usage:" in result.stdout, result.stderr
    loaded = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
              if line.startswith("import time:") and "|" in line}
    assert {"liveblog.cli", "liveblog.cli.tokens", "click"} <= loaded
    assert sorted(m for m in loaded if m.split(".")[0] in WEB_STACK
                  or m.startswith("liveblog.web")) == []


def test_token_minting_is_in_one_place() -> None:
    """The first editor's token, `token create` and `rotate`, and the demo's, all from
    liveblog.tokens.new_token."""
    minted = [name for name, path in _modules().items()
              if "token_urlsafe" in path.read_text() or '"lb_"' in path.read_text()]
    assert minted == [minting.__name__]
    assert minting.new_token().startswith("lb_") and minting.new_token() != minting.new_token()
