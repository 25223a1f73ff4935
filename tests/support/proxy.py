"""A loopback nginx reverse proxy in front of several gateways, for end-to-end tests.

The configuration is the least a scale-out deployment needs, generated into a temporary folder:
round robin over the upstreams, keep-alive to them, and ``proxy_next_upstream error timeout``,
so a request that never reached a dead upstream (connection refused) goes to the next one,
while one already sent is never sent twice (nginx does not retry a POST once it was passed).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from adapters.simulation import free_port

__all__ = ["Nginx", "nginx_binary"]


def nginx_binary() -> str | None:
    """The nginx executable on PATH (or in /usr/sbin), if installed."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


_CONFIG = """\
{user}daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream gateways {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://gateways;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
            proxy_read_timeout 30s;
        }}
    }}
}}
"""


class Nginx:
    """nginx on 127.0.0.1 proxying to ``upstreams`` (ports on 127.0.0.1)."""

    def __init__(self, folder: Path, upstreams: list[int]) -> None:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed")
        self.root = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=3s;"
                            for p in upstreams)
        # As root, nginx's workers would switch to "nobody", who cannot read a private
        # temporary folder.
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.config = folder / "nginx.conf"
        self.config.write_text(_CONFIG.format(user=user, root=folder, servers=servers,
                                              port=self.port), encoding="utf-8")
        check = subprocess.run([binary, "-t", "-q", "-p", str(folder), "-e",
                                str(folder / "error.log"), "-c", str(self.config)],
                               capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t refused the test config: {check.stderr}")
        self.proc = subprocess.Popen(
            [binary, "-p", str(folder), "-e", str(folder / "error.log"), "-c",
             str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {(folder / 'error.log').read_text()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start listening")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
