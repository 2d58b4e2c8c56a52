"""The deployment files (issue 9): the Dockerfile, docker-compose.yml, deploy/nginx.conf,
and that nothing in the repository points outside it.

No Docker engine runs here, so what can be checked without one is: the Dockerfile's
stages, user and health check as written, its build stage replayed (its COPY lines on a
copy of the build context, then its RUN line) and its health check command run against a
real server; the compose file against the Compose Specification's JSON schema and against
the repository (files it mounts, the apps nginx.conf names); deploy/nginx.conf served for
real by Debian's nginx in front of two `liveblog serve` on one Redis, with only addresses,
certificate, pid, log and temp paths and the user changed.
"""

from __future__ import annotations

import asyncio
import copy
import fnmatch
import grp
import json
import os
import pwd
import re
import shlex
import shutil
import ssl
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from tests.processes import Processes, Served
from tests.sse import Reader
from tests.support import Tokens, UvicornThread, free_port, wait_until

ROOT = Path(__file__).parent.parent
NGINX = "/usr/sbin/nginx"
SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"


# --- Dockerfile -------------------------------------------------------------------------

def dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, (NAME, arguments), grouped by stage (each FROM starts
    one). Continuation lines are joined; comments dropped, as Docker does."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            name, _, args = pending.strip().partition(" ")
            instructions.append((name.upper(), " ".join(args.split())))
            pending = ""
    stages: list[list[tuple[str, str]]] = []
    for instruction in instructions:
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def args_of(stage: list[tuple[str, str]], name: str) -> list[str]:
    return [args for instruction, args in stage if instruction == name]


def read_dockerfile() -> list[list[tuple[str, str]]]:
    return dockerfile_stages((ROOT / "Dockerfile").read_text())


def test_the_dockerfile_builds_a_wheel_then_runs_only_it_as_a_fixed_non_root_user() -> None:
    build, final = read_dockerfile()
    assert re.fullmatch(r"python:3\.11-slim AS build", args_of(build, "FROM")[0], re.I)
    assert args_of(final, "FROM") == ["python:3.11-slim"]
    assert any(run.startswith("pip wheel") for run in args_of(build, "RUN"))

    # Into the image goes the wheel, nothing else of the repository.
    copies = args_of(final, "COPY")
    assert copies and all(copy_.startswith("--from=build ") for copy_ in copies), copies
    assert any(re.search(r"pip install .*liveblog-\*\.whl", run) for run in args_of(final, "RUN"))

    [user] = args_of(final, "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, user
    assert any(f"--uid {uid}" in run for run in args_of(final, "RUN")), "the uid is made here"

    [healthcheck] = args_of(final, "HEALTHCHECK")
    assert "/healthz" in healthcheck and "curl" not in healthcheck
    assert args_of(final, "EXPOSE") == ["8000"]
    assert json.loads(args_of(final, "CMD")[0])[:2] == ["liveblog", "serve"]


def dockerignored(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.split("/")[0], pattern)
               for pattern in patterns)


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_build_context_leaves_out_local_state() -> None:
    patterns = dockerignore()
    for path in (".venv", "var", ".git", "bench/lighthouse/node_modules", "deploy/tls"):
        assert dockerignored(path, patterns), path
    assert not dockerignored("liveblog", patterns)


def test_the_build_stage_replayed_on_its_context_makes_a_wheel_with_every_page_file(
        tmp_path: Path) -> None:
    """Stage 1 as Docker would run it: its COPY lines (from the repository, less what
    .dockerignore leaves out) into a directory standing for WORKDIR, then its RUN line with
    this Python's pip. The wheel must be the one stage 2 installs and carry the templates
    and every static file (tests/test_packaging.py serves every page from such a wheel)."""
    build, final = read_dockerfile()
    [workdir] = args_of(build, "WORKDIR")
    context, wheels = tmp_path / "context", tmp_path / "wheels"
    work = context / workdir.lstrip("/")
    work.mkdir(parents=True)
    patterns = dockerignore()
    for line in args_of(build, "COPY"):
        *sources, destination = line.split()
        for source in sources:
            assert not dockerignored(source, patterns), f"{source} is not in the context"
            target = (work / destination / Path(source).name if destination.endswith("/")
                      else work / destination)
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, symlinks=True,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, target)
    [run] = [run for run in args_of(build, "RUN") if run.startswith("pip wheel")]
    command = [sys.executable, "-m", *shlex.split(run.replace("/wheels", str(wheels)))]
    subprocess.run(command, cwd=work, check=True, timeout=300, capture_output=True)

    [wheel] = wheels.iterdir()
    [installs] = [run for run in args_of(final, "RUN") if "pip install" in run]
    assert any(fnmatch.fnmatch(f"/wheels/{wheel.name}", word) for word in installs.split())
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"liveblog/static/{p.relative_to(ROOT / 'static')}"
              for p in (ROOT / "static").rglob("*") if p.is_file()}
    wanted |= {f"liveblog/templates/{p.name}" for p in (ROOT / "liveblog/templates").iterdir()}
    assert wanted - names == set()


def healthcheck_command(args: str | list[str], port: int) -> list[str]:
    """A HEALTHCHECK's or a compose healthcheck's exec form, to run here on `port`."""
    command = json.loads(args) if isinstance(args, str) else list(args)
    if command[0] == "CMD":
        command = command[1:]
    assert command[0] == "python", command
    return [sys.executable, *(part.replace(":8000/", f":{port}/") for part in command[1:])]


def test_the_health_checks_pass_on_a_healthy_server_and_fail_without_one(
        server: UvicornThread) -> None:
    [dockerfile_check] = args_of(read_dockerfile()[1], "HEALTHCHECK")
    image = dockerfile_check[dockerfile_check.index("CMD ") + 4:]
    compose = read_compose()
    checks = [healthcheck_command(image, server.port)] + [
        healthcheck_command(compose["services"][name]["healthcheck"]["test"], server.port)
        for name in app_services(compose)]
    nobody = free_port()
    for command in checks:
        env = {**os.environ, "LIVEBLOG_PORT": str(server.port)}
        assert subprocess.run(command, env=env, timeout=30).returncode == 0, command
        failing = [part.replace(f":{server.port}/", f":{nobody}/") for part in command]
        env["LIVEBLOG_PORT"] = str(nobody)
        assert subprocess.run(failing, env=env, timeout=30,
                              capture_output=True).returncode != 0, command


# --- docker-compose.yml -----------------------------------------------------------------

def read_compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose


def app_services(compose: dict[str, Any]) -> list[str]:
    return [name for name, service in compose["services"].items()
            if "LIVEBLOG_REDIS_URL" in service.get("environment", {})]


def compose_errors(compose: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text())
    # Its $schema names draft 2019-09 by an address jsonschema does not list (http, "#").
    validator = jsonschema.Draft201909Validator
    validator.check_schema(schema)
    return [f"{list(error.absolute_path)}: {error.message}"
            for error in validator(schema).iter_errors(compose)]


def test_the_compose_file_is_valid_by_the_compose_specification() -> None:
    assert compose_errors(read_compose()) == []


def test_the_schema_check_can_fail() -> None:
    broken = copy.deepcopy(read_compose())
    broken["services"]["nginx"]["port"] = ["80:80"]  # a misspelt key
    broken["services"]["redis"]["restart"] = True
    assert len(compose_errors(broken)) == 2


def test_the_compose_file_runs_redis_with_a_replica_two_apps_and_nginx() -> None:
    compose = read_compose()
    services = compose["services"]
    command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in command
    assert re.search(r"--appendfsync (always|everysec)", command)
    assert any(volume.split(":")[0] in compose["volumes"] and volume.split(":")[1] == "/data"
               for volume in services["redis"]["volumes"])
    replicas = [name for name, service in services.items()
                if "--replicaof redis 6379" in " ".join(service.get("command", []))]
    assert replicas

    apps = app_services(compose)
    assert len(apps) >= 2
    for name in apps:
        app = services[name]
        assert app["build"] == "."
        assert app["environment"]["LIVEBLOG_REDIS_URL"].startswith("redis://redis:")
        assert app["environment"]["LIVEBLOG_PUBLIC_URL"]
        assert app["healthcheck"]["test"]
        assert app["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "ports" not in app  # only through nginx

    nginx = services["nginx"]
    assert {port.split(":")[-1] for port in nginx["ports"]} == {"80", "443"}
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    # nginx.conf's upstream is exactly these apps.
    upstreams = re.findall(r"^\s*server\s+(\S+?);", nginx_conf(), re.M)
    assert sorted(upstreams) == sorted(f"{name}:8000" for name in apps)


def test_the_compose_file_mounts_and_builds_only_what_the_repository_has() -> None:
    compose = read_compose()
    named = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = "Dockerfile" if isinstance(build, str) else \
                build.get("dockerfile", "Dockerfile")
            assert inside_repository(ROOT / context / dockerfile), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/", "~")):
                assert not source.startswith(("/", "~")), f"{name} mounts {source}"
                assert inside_repository(ROOT / source), f"{name} mounts {source}"
            else:
                assert source in named, f"{name}: volume {source} is not declared"
        for env_file in ([service["env_file"]] if isinstance(service.get("env_file"), str)
                         else service.get("env_file", [])):
            assert inside_repository(ROOT / env_file), name


def inside_repository(path: Path) -> bool:
    return path.resolve().is_relative_to(ROOT.resolve()) and path.exists()


# --- deploy/nginx.conf ------------------------------------------------------------------

def nginx_conf() -> str:
    return (ROOT / "deploy" / "nginx.conf").read_text()


def replace(text: str, old: str, new: str) -> str:
    """Replace what must change, loudly: a config that no longer has it fails the test
    instead of running unchanged."""
    assert text.count(old) == 1, f"{old!r} appears {text.count(old)} times in nginx.conf"
    return text.replace(old, new)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with openssl."""
    cert, key = directory / "fullchain.pem", directory / "privkey.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class Nginx:
    """deploy/nginx.conf, changed only where this machine needs it, in `directory`."""

    def __init__(self, directory: Path, apps: list[int]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.prefix = directory
        self.http_port, self.https_port = free_port(), free_port()
        self.cert, key = make_certificate(directory)
        user = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        text = nginx_conf()
        for old, new in [
            ("user nginx;", f"user {user} {group};"),
            ("pid /var/run/nginx.pid;", f"pid {directory}/nginx.pid;"),
            ("error_log /var/log/nginx/error.log", f"error_log {directory}/error.log"),
            ("access_log /var/log/nginx/access.log;",
             f"access_log {directory}/access.log;\n" + "".join(
                 f"    {kind}_temp_path {directory}/{kind}_temp;\n"
                 for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))),
            ("server app1:8000;", f"server 127.0.0.1:{apps[0]};"),
            ("server app2:8000;", f"server 127.0.0.1:{apps[1]};"),
            ("listen 80;", f"listen 127.0.0.1:{self.http_port};"),
            ("listen 443 ssl http2;", f"listen 127.0.0.1:{self.https_port} ssl http2;"),
            ("ssl_certificate /etc/nginx/tls/fullchain.pem;", f"ssl_certificate {self.cert};"),
            ("ssl_certificate_key /etc/nginx/tls/privkey.pem;", f"ssl_certificate_key {key};"),
        ]:
            text = replace(text, old, new)
        self.conf = directory / "nginx.conf"
        self.conf.write_text(text)
        self.https = f"https://127.0.0.1:{self.https_port}"

    def command(self, *args: str) -> list[str]:
        return [NGINX, "-p", str(self.prefix), "-c", str(self.conf),
                "-e", str(self.prefix / "error.log"), *args]

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    nginx = Nginx(tmp_path / "nginx", [free_port(), free_port()])
    checked = subprocess.run(nginx.command("-t"), capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def test_the_stream_location_is_unbuffered_and_uncompressed_with_long_timeouts() -> None:
    """The app asks nginx not to buffer its streams (X-Accel-Buffering: no) too, so the
    served test below would pass without these lines: they are checked as written."""
    location = re.search(r"location ~ \^/blogs/\[\^/\]\+/stream\$ \{(.*?)\}", nginx_conf(), re.S)
    assert location is not None
    body = location.group(1)
    for directive in ("proxy_buffering off;", "gzip off;", "proxy_pass http://liveblog;"):
        assert directive in body
    timeout = re.search(r"proxy_read_timeout (\d+)([smh]);", body)
    assert timeout is not None
    seconds = int(timeout.group(1)) * {"s": 1, "m": 60, "h": 3600}[timeout.group(2)]
    assert seconds > 4 * 15  # several heartbeats (LIVEBLOG_HEARTBEAT_SECONDS)
    # The stream's path is the app's.
    from liveblog.web.stream import PATH
    assert PATH.pattern == r"^/blogs/([^/]+)/stream$"


def upstream_connections(ports: list[int]) -> int:
    """ESTABLISHED TCP connections to any of `ports` (from /proc/net/tcp)."""
    wanted = {f":{port:04X}" for port in ports}
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2][-5:] in wanted and fields[3] == "01":
            count += 1
    return count


def test_nginx_in_front_of_two_apps_serves_http2_streams_unbuffered_and_names_the_client(
        tmp_path: Path, processes: Processes, redis_url: str, tokens: Tokens) -> None:
    # The apps' settings are compose's (it trusts X-Forwarded-For from any peer: nginx must
    # replace what a client sends), but for where they listen and the Redis they use.
    compose = read_compose()
    settings = {name: value for name, value
                in compose["services"][app_services(compose)[0]]["environment"].items()
                if name not in ("LIVEBLOG_REDIS_URL", "LIVEBLOG_HOST", "LIVEBLOG_PORT")}
    settings["LIVEBLOG_PUBLIC_URL"] = "https://liveblog.example"  # not the page's origin
    apps = [Served(processes, tmp_path / f"app{n}", LIVEBLOG_REDIS_URL=redis_url, **settings)
            for n in (1, 2)]
    nginx = Nginx(tmp_path / "nginx", [app.port for app in apps])
    running = processes.spawn(nginx.command("-g", "daemon off;"),
                              log=tmp_path / "nginx.out")
    # The client is at 127.0.0.2: nginx must name it to the apps, whatever it claims.
    transport = httpx.HTTPTransport(http2=True, verify=nginx.tls(), local_address="127.0.0.2")
    client = httpx.Client(base_url=nginx.https, transport=transport, timeout=10)

    def answers() -> bool:
        assert running.process.poll() is None, (tmp_path / "nginx" / "error.log").read_text()
        try:
            return client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    wait_until(answers, timeout=20, what="nginx to answer over TLS")

    for _ in range(4):
        response = client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.9"})
        assert (response.status_code, response.http_version) == (200, "HTTP/2")
    # The figures (every blog's audience) are for Prometheus on the inner network only.
    assert client.get("/metrics").status_code == 404
    assert httpx.get(f"{apps[0].url}/metrics").text.startswith("# HELP liveblog_")
    # Kept alive: the connections to the apps stay open after the answers.
    assert upstream_connections([app.port for app in apps]) > 0
    # Both apps answered (round robin), each saw the client's address and not the forgery.
    for app in apps:
        wait_until(lambda app=app: "127.0.0.2:" in app.output(), what="the client's address")
        assert "203.0.113.9" not in app.output()

    # Host and scheme reach the app: a sign-in from the page's own origin is accepted.
    signed_in = client.post("/api/session", json={"token": tokens.editor},
                            headers={"Origin": nginx.https})
    assert signed_in.status_code == 204, signed_in.text
    opened = client.post("/api/blogs", json={"slug": "tartus", "title": "Tartus"},
                         headers={"Authorization": f"Bearer {tokens.editor}"})
    assert opened.status_code == 201, opened.text

    # Pages are compressed; plain HTTP only redirects.
    css = client.get("/static/style.css", headers={"Accept-Encoding": "gzip"})
    assert css.headers.get("content-encoding") == "gzip"
    redirect = httpx.get(f"http://127.0.0.1:{nginx.http_port}/blogs/tartus")
    assert redirect.status_code == 301
    assert redirect.headers["location"].startswith("https://")
    client.close()

    async def read_through_nginx() -> None:
        reader_transport = httpx.AsyncHTTPTransport(http2=True, verify=nginx.tls())
        async with httpx.AsyncClient(base_url=nginx.https, transport=reader_transport,
                                     timeout=10) as readers, \
                readers.stream("GET", "/blogs/tartus/stream",
                               headers={"Accept-Encoding": "gzip"}) as response:
            assert response.status_code == 200
            assert response.http_version == "HTTP/2"
            assert response.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in response.headers
            reader = Reader(response)
            try:
                await reader.wait_for(1)  # the snapshot
                # A post through nginx (HTTP/1.1, like a script), to either app.
                async with httpx.AsyncClient(base_url=nginx.https,
                                             verify=nginx.tls(), timeout=10) as poster:
                    posted = await poster.post(
                        "/api/blogs/tartus/entries", json={"body": "Blast in Tartus"},
                        headers={"Authorization": f"Bearer {tokens.reporter}"})
                    answered = time.monotonic()
                    assert posted.status_code == 201, posted.text
                [_, message] = await reader.wait_for(2, within=5)
                assert message.event == "entry-posted"
                assert message.data["entry"]["body"] == "Blast in Tartus"
                # Promptly: not held back in a buffer until more comes (a buffered stream
                # fails the wait above; this leaves room for a loaded machine).
                assert reader.arrived[1] - answered < 2.0
            finally:
                reader.task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await reader.task

    asyncio.run(read_through_nginx())


# --- nothing points outside the repository ----------------------------------------------

def tracked(*patterns: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z", *patterns], cwd=ROOT, check=True,
                            capture_output=True, timeout=30).stdout
    return [name for name in listed.decode().split("\0") if name]


def points_outside(link: Path, target: str) -> bool:
    """Whether a link at `link` (relative to the repository) to `target` leads outside it
    or to nothing in it."""
    if os.path.isabs(target):
        return True
    resolved = Path(os.path.normpath(ROOT / link.parent / target))
    return not resolved.is_relative_to(ROOT) or not os.path.lexists(resolved)


def outside_symlinks() -> list[str]:
    staged = subprocess.run(["git", "ls-files", "-s", "-z"], cwd=ROOT, check=True,
                            capture_output=True, timeout=30).stdout.decode()
    found = []
    for entry in filter(None, staged.split("\0")):
        meta, path = entry.split("\t", 1)
        mode, blob = meta.split()[:2]
        if mode == "120000":
            target = subprocess.run(["git", "cat-file", "blob", blob], cwd=ROOT, check=True,
                                    capture_output=True, timeout=30).stdout.decode()
            if points_outside(Path(path), target):
                found.append(f"{path} -> {target}")
    return found


def test_no_tracked_symlink_points_outside_the_repository() -> None:
    assert outside_symlinks() == []


def test_the_symlink_check_can_fail() -> None:
    assert points_outside(Path("bench/lighthouse/node_modules"), "/tmp/lh/node_modules")
    assert points_outside(Path("docs/x"), "../../elsewhere")
    assert not points_outside(Path("liveblog/static"), "../static")


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
CODE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def outside_links(path: Path, text: str) -> list[str]:
    """Links of a Markdown file (at `path`, relative to the repository) that lead out of
    the repository, or to nothing: code blocks and spans are not links."""
    text = INLINE_CODE.sub("", CODE.sub("", text))
    found = []
    for target in LINK.findall(text) + REFERENCE.findall(text):
        if target.startswith("#") or (SCHEME.match(target) and not target.startswith("file:")):
            continue  # in the page, or a web address
        local = re.split(r"[#?]", target, maxsplit=1)[0]
        if target.startswith("file:") or points_outside(path, local):
            found.append(target)
    return found


def test_no_markdown_link_points_outside_the_repository() -> None:
    found = {name: outside_links(Path(name), (ROOT / name).read_text())
             for name in tracked("*.md")}
    assert {name: links for name, links in found.items() if links} == {}
    assert "docs/deploy.md" in found


def test_the_link_check_can_fail() -> None:
    text = ("See [the notes](../shared/NOTES.md), [a file](/tmp/spike.md), "
            "[gone](missing.md#top), ![shot](reader-desktop.png), [ok](security.md#who), "
            "[web](https://example.org/a), [here](#settings), `[code](../no.md)` and\n"
            "[ref]: ../../outside.md\n```\n[fenced](../no.md)\n```\n")
    assert outside_links(Path("docs/x.md"), text) == [
        "../shared/NOTES.md", "/tmp/spike.md", "missing.md#top", "../../outside.md"]
