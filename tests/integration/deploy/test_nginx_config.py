"""deploy/nginx/px.conf passes `nginx -t` (rendered into a temp folder with generated
certificates), and keeps the properties the gateway's identity check relies on."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from adapters.simulation import free_port
from tests.support.deploytools import (
    DEPLOY,
    CertAuthority,
    nginx_command,
    render_nginx,
    require_tool,
)


def test_shipped_config_passes_nginx_t(tmp_path: Path) -> None:
    nginx = require_tool("nginx", "nginx-light")
    hub_ca = CertAuthority(tmp_path / "pki", "PX Test Hub CA", "PERKESO", "MY")
    partner_ca = CertAuthority(tmp_path / "pki", "BPJS Ketenagakerjaan Partner CA",
                               "BPJS Ketenagakerjaan", "ID")
    conf = render_nginx(tmp_path / "nginx", port=free_port(), upstreams=[free_port()],
                        server=hub_ca.issue("localhost", "PERKESO", "MY", server=True),
                        partner_cas=[partner_ca],
                        partners_map=(DEPLOY / "nginx" / "partners.map").read_text())
    result = subprocess.run(nginx_command(nginx, conf, "-t"), capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


def test_a_broken_config_fails_nginx_t(tmp_path: Path) -> None:
    """The check above can fail: the same rendering with a directive nginx does not know."""
    nginx = require_tool("nginx", "nginx-light")
    ca = CertAuthority(tmp_path / "pki", "PX Test Hub CA", "PERKESO", "MY")
    conf = render_nginx(tmp_path / "nginx", port=free_port(), upstreams=[free_port()],
                        server=ca.issue("localhost", "PERKESO", "MY", server=True),
                        partner_cas=[ca], partners_map='"x" ID-BPJSTK;\n')
    conf.write_text(conf.read_text().replace("ssl_verify_client optional;",
                                             "ssl_verify_client sometimes;"))
    result = subprocess.run(nginx_command(nginx, conf, "-t"), capture_output=True, text=True,
                            timeout=30)
    assert result.returncode != 0 and "invalid value \"sometimes\"" in result.stderr


def test_identity_header_is_always_set_by_the_proxy() -> None:
    text = (DEPLOY / "nginx" / "px.conf").read_text()
    assert "ssl_verify_client optional;" in text
    assert re.search(r"proxy_set_header X-PX-Client-Partner \$px_client_partner;", text)
    # The map's key includes the verification result, so only a verified certificate counts.
    assert '"$ssl_client_verify|$ssl_client_i_dn|$ssl_client_s_dn"' in text
    for line in (DEPLOY / "nginx" / "partners.map").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r'"SUCCESS\|[^"|]+\|[^"|]+" [A-Z]{2}-[A-Z0-9]{2,32};', line), line
