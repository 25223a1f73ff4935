"""The shipped nginx config in front of a real `gateway serve`, over loopback, with a
generated CA: the right partner certificate passes, a wrong or missing one is refused, and a
certificate of one partner on a message signed by another is refused by the gateway."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from adapters.simulation import free_port
from tests.support.deploytools import (
    CertAuthority,
    Issued,
    nginx_command,
    render_nginx,
    require_tool,
    subject_rfc2253,
)
from tests.support.partners import TestPartner
from tests.support.processes import Server, gateway_env

pytestmark = pytest.mark.e2e

BPJS = ("BPJS Ketenagakerjaan", "ID")
MOPHRD = ("Ministry of Overseas Pakistanis", "PK")


class Proxy:
    """nginx in the foreground on a loopback port; stopped with SIGTERM."""

    def __init__(self, nginx: str, conf: Path, port: int) -> None:
        self.port, self.log = port, conf.parent / "logs" / "px-error.log"
        self.proc = subprocess.Popen(nginx_command(nginx, conf), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self._log()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx not listening: {self._log()}")

    def _log(self) -> str:
        return self.log.read_text()[-2000:] if self.log.exists() else "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, object]:
    folder = tmp_path / "pki"
    hub = CertAuthority(folder, "PX Test Hub CA", "PERKESO", "MY")
    bpjs_ca = CertAuthority(folder, "BPJS Ketenagakerjaan Partner CA", *BPJS)
    pk_ca = CertAuthority(folder, "MOPHRD Partner CA", *MOPHRD)
    rogue = CertAuthority(folder, "Rogue CA", *BPJS)  # same names, not in partners-ca.pem
    return {
        "hub": hub, "cas": [bpjs_ca, pk_ca],
        "server": hub.issue("localhost", "PERKESO", "MY", server=True),
        "bpjs": bpjs_ca.issue("ID-BPJSTK", *BPJS),
        "pk": pk_ca.issue("PK-MOPHRD", *MOPHRD),
        # MOPHRD's CA issuing a certificate in BPJS's name: verifies, but maps to nobody.
        "forged": pk_ca.issue("ID-BPJSTK", *BPJS),
        "rogue": rogue.issue("ID-BPJSTK", *BPJS),
        "map": (f'"SUCCESS|{bpjs_ca.rfc2253()}|{subject_rfc2253("ID-BPJSTK", *BPJS)}" '
                f"ID-BPJSTK;\n"
                f'"SUCCESS|{pk_ca.rfc2253()}|{subject_rfc2253("PK-MOPHRD", *MOPHRD)}" '
                f"PK-MOPHRD;\n"),
    }


@pytest.fixture
def stack(instance: Path, db_url: str, pki: dict, tmp_path: Path) -> Iterator[str]:
    nginx = require_tool("nginx", "nginx-light")
    registry = instance / "partners.toml"
    registry.write_text(registry.read_text().replace(
        "[partners.ID-BPJSTK]\n", "[partners.ID-BPJSTK]\nrequire_client_certificate = true\n"))
    env = gateway_env(instance, db_url, GATEWAY_DISPATCH_IN_SERVE="false",
                      GATEWAY_CLIENT_IDENTITY_HEADER="X-PX-Client-Partner")
    server = Server(env, instance)
    port = free_port()
    try:
        conf = render_nginx(tmp_path / "nginx", port=port, upstreams=[server.port],
                            server=pki["server"], partner_cas=pki["cas"],
                            partners_map=pki["map"])
        proxy = Proxy(nginx, conf, port)
        try:
            yield f"https://127.0.0.1:{port}"
        finally:
            proxy.stop()
    finally:
        server.stop()


def _client(url: str, hub_ca: CertAuthority, cert: Issued | None) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(hub_ca.pem))
    if cert is not None:
        ctx.load_cert_chain(str(cert.cert), str(cert.key))
    return httpx.Client(base_url=url, verify=ctx, timeout=10)


def _send(url: str, pki: dict, cert: Issued | None, partner: TestPartner,
          **headers: str) -> httpx.Response:
    body, signed = partner.signed(partner.envelope(sent_at=datetime.now(UTC)))
    with _client(url, pki["hub"], cert) as http:
        return http.post("/v1/messages", content=body, headers={**signed, **headers})


def test_partner_certificates_through_the_proxy(stack: str, pki: dict, instance: Path) -> None:
    bpjstk = TestPartner.from_registry(instance / "partners.toml", "ID-BPJSTK")

    ok = _send(stack, pki, pki["bpjs"], bpjstk)
    assert ok.status_code == 202, ok.text

    # No certificate, and a made-up identity header: the proxy replaces it with nothing.
    missing = _send(stack, pki, None, bpjstk, **{"X-PX-Client-Partner": "ID-BPJSTK"})
    assert missing.status_code == 403 and missing.json()["code"] == "client_certificate_required"

    # A certificate no partner CA issued never reaches the gateway.
    rogue = _send(stack, pki, pki["rogue"], bpjstk)
    assert rogue.status_code == 400 and "certificate" in rogue.text.lower()

    # Another partner's CA vouching for BPJS's name: verified, but it is nobody's.
    forged = _send(stack, pki, pki["forged"], bpjstk)
    assert forged.status_code == 403 and forged.json()["code"] == "client_certificate_required"

    # MOPHRD's own certificate carrying a message BPJS signed.
    crossed = _send(stack, pki, pki["pk"], bpjstk)
    assert crossed.status_code == 403 and crossed.json()["code"] == "client_identity_mismatch"
    # And the right one still passes afterwards (nothing above poisoned the connection pool).
    assert _send(stack, pki, pki["bpjs"], bpjstk).status_code == 202
