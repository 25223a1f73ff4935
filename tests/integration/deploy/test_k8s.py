"""deploy/k8s validated against the Kubernetes schemas that kubernetes-validate bundles (no
network), strictly (an unknown field is an error), plus the properties the issue asks for."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
import yaml

from tests.support.deploytools import DEPLOY

K8S = DEPLOY / "k8s"
VERSION = "1.30.0"


def _docs() -> list[dict]:
    return [d for path in sorted(K8S.glob("*.yaml"))
            for d in yaml.safe_load_all(path.read_text()) if d]


def _kinds() -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in _docs()}


def test_every_manifest_validates_strictly() -> None:
    docs = _docs()
    assert len(docs) >= 15
    for doc in docs:
        kubernetes_validate.validate(doc, VERSION, strict=True)


def test_a_wrong_field_is_caught() -> None:
    """The check above can fail: a misspelt field in a container."""
    doc = copy.deepcopy(_kinds()[("Deployment", "px-gateway")])
    doc["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, VERSION, strict=True)


@pytest.mark.parametrize("name", ["px-gateway", "px-dispatcher", "px-scheduler"])
def test_deployments_are_probed_limited_and_locked_down(name: str) -> None:
    kinds = _kinds()
    deployment = kinds[("Deployment", name)]
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] >= 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] in {"/readyz", "/livez"}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    env = {e["name"]: e for e in container["env"]}
    assert "secretKeyRef" in env["GATEWAY_DATABASE_URL"]["valueFrom"]
    assert env["GATEWAY_SIGNING_KEY_FILE"]["value"].startswith("/run/secrets/px/")
    assert ("PodDisruptionBudget", name) in kinds and ("NetworkPolicy", name) in kinds
    assert ("Service", name) in kinds
    assert kinds[("Deployment", "px-gateway")]["spec"]["template"]["spec"]["containers"][0][
        "readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_secrets_hold_no_secret() -> None:
    for doc in _docs():
        if doc["kind"] == "Secret":
            assert "data" not in doc
            assert all(v.startswith("REPLACE") for v in doc["stringData"].values())
