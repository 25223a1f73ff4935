"""deploy/k8s validated against the Kubernetes schemas that kubernetes-validate bundles (no
network), strictly (an unknown field is an error), plus the properties the issue asks for."""

from __future__ import annotations

import copy
import stat

import kubernetes_validate
import pytest
import yaml

from gateway.secretfiles import secret_file_refusal
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


def _pods_with_secret_volumes() -> list[tuple[str, dict, dict]]:
    found = []
    for doc in _docs():
        pod = doc.get("spec", {}).get("template", {}).get("spec")
        for volume in (pod or {}).get("volumes", []):
            if "secret" in volume:
                found.append((doc["metadata"]["name"], pod, volume["secret"]))
    return found


def test_every_pod_can_start_on_its_secret_files() -> None:
    """The kubelet makes a secret volume's files root's, of group fsGroup, and adds group read
    (read-only volume); the gateway must accept what the pod is given, and the manifest should
    say it: defaultMode 0440, not 0400 (a file root's own the app user could not read)."""
    pods = _pods_with_secret_volumes()
    assert {name for name, _, _ in pods} == {"px-gateway", "px-dispatcher", "px-scheduler",
                                              "px-migrate"}
    for name, pod, secret in pods:
        context = pod["securityContext"]
        uid, gid, fs_group = context["runAsUser"], context["runAsGroup"], context["fsGroup"]
        assert secret["defaultMode"] == 0o440, name
        mode = secret["defaultMode"] | 0o440
        assert secret_file_refusal("/run/secrets/px/hub.jwk.json", stat.S_IFREG | mode, 0,
                                   fs_group, euid=uid, egid=gid, groups=(gid, fs_group)) is None
