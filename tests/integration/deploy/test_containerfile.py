"""deploy/Containerfile parsed with dockerfile-parse, and deploy/requirements.lock checked
against pyproject. (Building the image needs base images from a registry this machine cannot
reach: docs/operations.md says so.)"""

from __future__ import annotations

import json
import re
import tomllib

from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.deploytools import DEPLOY, ROOT


def _parsed() -> DockerfileParser:
    parser = DockerfileParser(fileobj=open(DEPLOY / "Containerfile", "rb"))  # noqa: SIM115
    return parser


def _stages(instructions: list[dict]) -> list[list[dict]]:
    stages: list[list[dict]] = []
    for ins in instructions:
        if ins["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def test_multi_stage_with_pinned_bases() -> None:
    parsed = _parsed()
    stages = _stages(parsed.structure)
    assert len(stages) >= 2
    assert len(_parsed().parent_images) == len(stages)
    for base in _parsed().parent_images:
        assert re.search(r"@sha256:[0-9a-f]{64}$", base), f"base {base} is not pinned by digest"
    runtime = stages[-1]
    copies = [i["value"] for i in runtime if i["instruction"] == "COPY"]
    assert copies and all(c.startswith("--from=") for c in copies), \
        "the runtime stage takes only the build stage's output"


def test_runtime_user_is_not_root() -> None:
    runtime = _stages(_parsed().structure)[-1]
    users = [i["value"].strip() for i in runtime if i["instruction"] == "USER"]
    assert users, "no USER in the runtime stage"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_no_remote_add_and_a_livez_healthcheck() -> None:
    parsed = _parsed()
    for ins in parsed.structure:
        if ins["instruction"] == "ADD":
            assert not re.search(r"https?://", ins["value"]), ins["value"]
    checks = [i["value"] for i in parsed.structure if i["instruction"] == "HEALTHCHECK"]
    assert len(checks) == 1 and "/livez" in checks[0]
    # Read-only root: the only writable place is a declared volume.
    volumes = [i["value"] for i in parsed.structure if i["instruction"] == "VOLUME"]
    assert volumes and json.loads(volumes[0]) == ["/tmp"]
    envs = parsed.envs
    assert envs["GATEWAY_SIGNING_KEY_FILE"].startswith("/run/secrets/")
    assert envs["PYTHONDONTWRITEBYTECODE"] == "1"  # nothing to write into the read-only venv


def test_the_lock_pins_every_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins: dict[str, str] = {}
    for line in (DEPLOY / "requirements.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#", "-")):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pins[canonicalize_name(name)] = version.split()[0]
    # The image can trace (GATEWAY_OTEL_ENABLED): the otel extra is locked too.
    for spec in [*project["dependencies"], *project["optional-dependencies"]["otel"]]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in deploy/requirements.lock (re-run pip-compile)"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"{req.name}=={pins[name]} does not satisfy {req.specifier}"
