"""A real Matrix homeserver for the tests: Synapse (the `matrix-test` extra), started on
127.0.0.1 on a free port with SQLite, from a config written here.

Nothing leaves the machine: the only listener is the client API on 127.0.0.1 (no federation
listener), no key servers are trusted, federation is limited to no domain, URL previews,
stats reporting and metrics are off. Rate limits are lifted so that the tests never wait.
Users are made with the shared-secret admin registration API, as `register_new_matrix_user`
does.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

START_TIMEOUT = 60.0
_NO_LIMIT = "{per_second: 100000, burst_count: 1000000}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(root: Path, port: int, secret: str) -> str:
    return f"""
server_name: localhost
public_baseurl: http://127.0.0.1:{port}/
pid_file: {root}/homeserver.pid
listeners:
  - port: {port}
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: {root}/homeserver.db
log_config: {root}/log.yaml
media_store_path: {root}/media
signing_key_path: {root}/signing.key
registration_shared_secret: "{secret}"
enable_registration: false
report_stats: false
enable_metrics: false
url_preview_enabled: false
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
presence:
  enabled: false
rc_message: {_NO_LIMIT}
rc_registration: {_NO_LIMIT}
rc_admin_redaction: {_NO_LIMIT}
rc_login:
  address: {_NO_LIMIT}
  account: {_NO_LIMIT}
  failed_attempts: {_NO_LIMIT}
rc_joins:
  local: {_NO_LIMIT}
  remote: {_NO_LIMIT}
rc_invites:
  per_room: {_NO_LIMIT}
  per_user: {_NO_LIMIT}
"""


def _log_config(root: Path) -> str:
    return f"""
version: 1
formatters:
  precise: {{format: '%(asctime)s %(name)s %(levelname)s %(message)s'}}
handlers:
  file: {{class: logging.FileHandler, formatter: precise, filename: {root}/homeserver.log}}
root: {{level: WARNING, handlers: [file]}}
disable_existing_loggers: false
"""


@dataclass(frozen=True)
class User:
    user_id: str
    token: str


class Homeserver:
    """One Synapse process; `close()` stops it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._secret = secrets.token_hex(16)
        root.mkdir(parents=True, exist_ok=True)
        (root / "homeserver.yaml").write_text(_config(root, self.port, self._secret))
        (root / "log.yaml").write_text(_log_config(root))
        command = [sys.executable, "-m", "synapse.app.homeserver", "-c", "homeserver.yaml"]
        # --generate-keys writes the signing key (offline) and leaves the config alone.
        subprocess.run([*command, "--generate-keys"], cwd=root, check=True, capture_output=True)
        self._log = (root / "stdout.log").open("wb")
        self.process = subprocess.Popen(command, cwd=root, stdout=self._log, stderr=self._log)
        self.client = httpx.Client(base_url=self.url, timeout=10.0, trust_env=False)
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Synapse exited: {self.log_tail()}")
            try:
                if self.client.get("/_matrix/client/versions").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"Synapse did not start in {START_TIMEOUT} s: {self.log_tail()}")

    def log_tail(self) -> str:
        text = ""
        for name in ("stdout.log", "homeserver.log"):
            path = self.root / name
            if path.exists():
                text += path.read_text(errors="replace")[-3000:]
        return text

    def close(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()

    # -- the client-server API, as a user ---------------------------------------------------
    def register(self, name: str) -> User:
        """A new user through the shared-secret admin API (Synapse's HMAC-SHA1 scheme)."""
        nonce = self.client.get("/_synapse/admin/v1/register").json()["nonce"]
        password = secrets.token_hex(12)
        mac = hmac.new(self._secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), name.encode(), password.encode(), b"notadmin"]))
        answer = self.client.post(
            "/_synapse/admin/v1/register",
            json={
                "nonce": nonce,
                "username": name,
                "password": password,
                "admin": False,
                "mac": mac.hexdigest(),
            },
        )
        answer.raise_for_status()
        data = answer.json()
        return User(data["user_id"], data["access_token"])

    def call(self, user: User, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        answer = self.client.request(
            method,
            f"/_matrix/client/v3{path}",
            headers={"Authorization": f"Bearer {user.token}"},
            **kwargs,
        )
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def create_room(
        self, owner: User, alias: str | None = None, invite: tuple[User, ...] = ()
    ) -> str:
        body: dict[str, Any] = {"preset": "private_chat", "name": "Blog readers"}
        if alias:
            body["room_alias_name"] = alias
        body["invite"] = [user.user_id for user in invite]
        room_id: str = self.call(owner, "POST", "/createRoom", json=body)["room_id"]
        for user in invite:
            self.call(user, "POST", f"/rooms/{quote(room_id, safe='')}/join", json={})
        return room_id

    def messages(self, user: User, room_id: str) -> list[dict[str, Any]]:
        """Every m.room.message event of the room, oldest first, as `user` reads it."""
        events: list[dict[str, Any]] = []
        token = None
        while True:
            params: dict[str, Any] = {"dir": "f", "limit": 100}
            if token:
                params["from"] = token
            page = self.call(
                user, "GET", f"/rooms/{quote(room_id, safe='')}/messages", params=params
            )
            events += [e for e in page.get("chunk", []) if e.get("type") == "m.room.message"]
            token = page.get("end")
            if not page.get("chunk") or not token:
                return events

    def event(self, user: User, room_id: str, event_id: str) -> dict[str, Any]:
        return self.call(
            user, "GET", f"/rooms/{quote(room_id, safe='')}/event/{quote(event_id, safe='')}"
        )
