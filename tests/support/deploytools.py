"""The tools the deploy/ tests lint with (nginx, promtool, systemd-analyze), and the nginx
config rendered into a temp folder with generated certificates.

A missing tool fails the test under CI (``.ci/run`` installs them) and skips it, with the
reason, on a developer's machine.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def require_tool(name: str, package: str) -> str:
    """The tool's path; fail under CI when it is missing, else skip saying how to get it."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None)
    if path:
        return path
    message = f"{name} is not installed (apt-get install {package}; .ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


# --- certificates -------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


def _name(cn: str, org: str, country: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, country),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
           ) -> Issued:
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / f"{stem}.crt", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return Issued(cert_path, key_path)


class CertAuthority:
    """A throwaway CA that issues server and client certificates."""

    def __init__(self, folder: Path, cn: str, org: str, country: str) -> None:
        self.folder, self.key = folder, ec.generate_private_key(ec.SECP256R1())
        self.name = _name(cn, org, country)
        now = dt.datetime.now(dt.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(minutes=5))
                     .not_valid_after(now + dt.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                                  False, False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.stem = re.sub(r"\W+", "-", cn).strip("-").lower()
        self.pem = _write(folder, self.stem, self.cert, self.key).cert

    def rfc2253(self) -> str:
        return self.name.rfc4514_string()

    def issue(self, cn: str, org: str, country: str, *, server: bool = False) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (x509.CertificateBuilder().subject_name(_name(cn, org, country))
                   .issuer_name(self.name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                             x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return _write(self.folder, f"{self.stem}-{cn.lower()}", cert, key)


def subject_rfc2253(cn: str, org: str, country: str) -> str:
    return _name(cn, org, country).rfc4514_string()


# --- nginx --------------------------------------------------------------------------------


def render_nginx(folder: Path, *, port: int, upstreams: list[int], server: Issued,
                 partner_cas: list[CertAuthority], partners_map: str) -> Path:
    """deploy/nginx/px.conf with its paths, port and upstreams moved into ``folder``.

    Every replacement must match: a change to the shipped file that this rendering no longer
    understands fails the test instead of testing something else.
    """
    text = (DEPLOY / "nginx" / "px.conf").read_text()
    px, logs = folder / "px", folder / "logs"
    px.mkdir(parents=True, exist_ok=True)
    logs.mkdir(exist_ok=True)
    shutil.copy(server.cert, px / "server.crt")
    shutil.copy(server.key, px / "server.key")
    (px / "partners-ca.pem").write_text("".join(ca.pem.read_text() for ca in partner_cas))
    (px / "partners.map").write_text(partners_map)
    # Root in a test container: workers as root too, since the temp folder is root's alone.
    user = "user root;" if os.geteuid() == 0 else ""
    servers = "\n".join(f"        server 127.0.0.1:{p};" for p in upstreams)
    replacements: list[tuple[str, str]] = [
        (r"(?m)^user www-data;$", user),
        (r"(?m)^worker_processes auto;$", "worker_processes 1;\ndaemon off;"),
        (r"/run/px-nginx\.pid", str(folder / "nginx.pid")),
        (r"/var/log/nginx/", f"{logs}/"),
        (r"/etc/nginx/px/", f"{px}/"),
        (r"listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        (r"(?m)(^\s*server 127\.0\.0\.1:\d+ [^\n]*\n)+", servers + "\n"),
    ]
    for pattern, value in replacements:
        text, n = re.subn(pattern, value, text)
        assert n, f"deploy/nginx/px.conf no longer has {pattern!r}"
    conf = folder / "nginx.conf"
    conf.write_text(text)
    return conf


def nginx_command(nginx: str, conf: Path, *args: str) -> list[str]:
    return [nginx, "-p", f"{conf.parent}/", "-e", str(conf.parent / "logs" / "startup.log"),
            "-c", str(conf), *args]
