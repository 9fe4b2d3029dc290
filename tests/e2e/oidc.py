"""A real OpenID Connect provider for the tests: `oidc-provider` (npm) run by tests/oidc/provider.mjs.

    op = OidcProvider(tmp_path / "oidc").start()
    try:
        jwt = op.token("reader")                 # RS256 JWT access token, aud https://strata.test
        ...                                      # op.config_url is the discovery document
        op.rotate_keys("k2")                     # same issuer and port, only the new key served
    finally:
        op.stop()

Invariants kept here:
- The provider listens on a free port of 127.0.0.1; its issuer is http://127.0.0.1:PORT, and stays
  the same across `rotate_keys` (the process restarts on the same port).
- Its signing key set is a file in `workdir` (mode 0600) that holds exactly one RS256 key; the
  first key's kid is "k1". `rotate_keys(kid)` replaces it, so the old key is no longer served.
- Node's stdout and stderr go to `workdir/oidc.log` (one line per grant or error; no secrets,
  no tokens). Failures raise RuntimeError with the tail of that log.
- Every provider process started here is stopped by `stop()` (SIGTERM, then SIGKILL after a
  bound), and at interpreter exit if a test forgot to.

Clients (id / secret, HTTP Basic): reader / reader-secret (claim policy "readonly"),
writer / writer-secret ("readwrite"), nobody / nobody-secret (no policy claim), and
groups / groups-secret (policy ["readonly", "writeonly"]). Needs `npm ci` in tests/oidc
(tests/run.sh does it).
"""
from __future__ import annotations

import atexit
import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import requests

from conftest import free_port
from procs import stop_process_group

OIDC_DIR = Path(__file__).resolve().parent.parent / "oidc"
PROVIDER_JS = OIDC_DIR / "provider.mjs"
MAKE_KEYS_JS = OIDC_DIR / "make_keys.mjs"
NODE = shutil.which("node") or "node"
READY_TIMEOUT_SECS = 30
STOP_TIMEOUT_SECS = 10
LOG_TAIL_LINES = 40
DEFAULT_RESOURCE = "https://strata.test"
CLIENT_SECRETS = {c: f"{c}-secret" for c in ("reader", "writer", "nobody", "groups")}

_LIVE: list["OidcProvider"] = []


def decode_jwt(token: str) -> tuple[dict, dict]:
    """(header, payload) of a compact JWS, decoded without verifying anything."""
    def part(s: str) -> dict:
        return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    header, payload, _sig = token.split(".")
    return part(header), part(payload)


def make_keys(path: Path, kid: str) -> None:
    """Writes a private JWKS with one fresh RS256 key `kid` to `path` (replacing it atomically)."""
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    r = subprocess.run([NODE, str(MAKE_KEYS_JS), str(tmp), kid], cwd=OIDC_DIR,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"make_keys.mjs failed (exit {r.returncode}): {r.stderr.strip()}")
    os.replace(tmp, path)


class OidcProvider:
    """One tests/oidc/provider.mjs process on 127.0.0.1."""

    def __init__(self, workdir: Path, ttl_secs: int = 300):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ttl_secs = ttl_secs
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.config_url = self.issuer + "/.well-known/openid-configuration"
        self.keys_path = self.workdir / "oidc-keys.json"
        self.log_path = self.workdir / "oidc.log"
        self.kid = "k1"
        self.proc: subprocess.Popen | None = None
        self.n_starts = 0
        self._http = requests.Session()
        self._http.trust_env = False  # never send loopback requests through a proxy
        make_keys(self.keys_path, self.kid)

    # ------------------------------------------------------------------ process

    def start(self) -> "OidcProvider":
        """Starts node and waits until it prints `ready` (it is then listening)."""
        assert self.proc is None, "provider already running"
        if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError(f"{OIDC_DIR}/node_modules is missing: run `npm ci` there "
                               "(tests/run.sh does)")
        cmd = [NODE, str(PROVIDER_JS), "--port", str(self.port), "--keys", str(self.keys_path),
               "--ttl", str(self.ttl_secs)]
        self.n_starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.n_starts} (kid {self.kid}): {' '.join(cmd)}\n".encode())
            log.flush()
            offset = log.tell()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("NODE_", "DEBUG"))}
            self.proc = subprocess.Popen(cmd, cwd=OIDC_DIR, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        _LIVE.append(self)
        try:
            self._wait_ready(offset)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, offset: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECS
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                if b"ready" in f.read().splitlines():
                    return
            code = self.proc.poll() if self.proc is not None else -1
            if code is not None:
                raise RuntimeError(f"oidc provider exited with code {code} before it was ready\n"
                                   f"{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise RuntimeError(f"oidc provider not ready within {READY_TIMEOUT_SECS}s\n"
                                   f"{self.log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL (the whole process group) if it does not exit in time.
        Safe to call when stopped."""
        proc, self.proc = self.proc, None
        if self in _LIVE:
            _LIVE.remove(self)
        if proc is None:
            return
        stop_process_group(proc, STOP_TIMEOUT_SECS)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rotate_keys(self, kid: str) -> None:
        """Stops the provider, replaces its key set with one fresh key `kid` (the old key is
        gone: tokens it signed no longer verify against jwks_uri), and starts it again on the
        same port, so the issuer is unchanged."""
        self.stop()
        make_keys(self.keys_path, kid)
        self.kid = kid
        self.start()

    def __enter__(self) -> "OidcProvider":
        return self if self.running else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, n: int = LOG_TAIL_LINES) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return f"(no provider log at {self.log_path})"
        return f"--- last {min(n, len(lines))} lines of {self.log_path} ---\n" + "\n".join(lines[-n:])

    # ------------------------------------------------------------------ protocol

    def discovery(self) -> dict:
        r = self._http.get(self.config_url, timeout=10)
        r.raise_for_status()
        return r.json()

    def jwks(self) -> dict:
        """The public key set the provider serves now (from the discovery's jwks_uri)."""
        r = self._http.get(self.discovery()["jwks_uri"], timeout=10)
        r.raise_for_status()
        return r.json()

    def token(self, client: str, resource: str = DEFAULT_RESOURCE, secret: str | None = None,
              scope: str | None = None) -> str:
        """A client_credentials grant for `client` (its own secret unless `secret` is given);
        returns the JWT access token. `resource` is the token's aud (must start with https://)."""
        if secret is None:
            secret = CLIENT_SECRETS.get(client, f"{client}-secret")
        data = {"grant_type": "client_credentials", "resource": resource}
        if scope is not None:
            data["scope"] = scope
        r = self._http.post(self.issuer + "/token", data=data, auth=(client, secret), timeout=10)
        if r.status_code != 200:
            raise RuntimeError(f"token request for client {client!r} failed: "
                               f"HTTP {r.status_code} {r.text}")
        return r.json()["access_token"]


@atexit.register
def _stop_all() -> None:
    for op in list(_LIVE):
        op.stop()
