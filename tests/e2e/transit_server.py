"""A test server speaking HashiCorp Vault's Transit API (the subset Strata uses), because no
Vault or OpenBao server can run here. It is a mock of the service, not a reimplementation of
Vault's cryptography: keys are random 256-bit secrets kept in a JSON state file (so the server
can be stopped and started again, as a KMS outage is simulated), and "encryption" is an
HMAC-SHA256 keystream with an HMAC tag (Python's standard library has no AES), which is enough
to make ciphertexts opaque, authenticated and bound to the key version that made them.

Endpoints (all need `X-Vault-Token`): `POST /v1/transit/keys/NAME` (create),
`GET /v1/transit/keys/NAME`, `GET /v1/transit/keys?list=true`, `POST .../keys/NAME/rotate`,
`POST /v1/transit/datakey/plaintext/NAME`, `POST /v1/transit/decrypt/NAME`,
`POST /v1/transit/rewrap/NAME`. Errors are Vault's `{"errors": [...]}`.

Usage: python transit_server.py PORT STATE_FILE TOKEN
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PORT, STATE, TOKEN = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
LOCK = threading.Lock()


def load() -> dict:
    return json.loads(STATE.read_text()) if STATE.exists() else {}


def save(keys: dict) -> None:
    tmp = STATE.with_suffix(".tmp")
    tmp.write_text(json.dumps(keys))
    tmp.replace(STATE)


KEYS: dict[str, list[str]] = load()


def keystream(key: bytes, nonce: bytes, n: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < n:
        out += hmac.new(key, b"stream" + nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest()
        counter += 1
    return out[:n]


def seal(name: str, plaintext: bytes) -> str:
    versions = KEYS[name]
    key = base64.b64decode(versions[-1])
    nonce = os.urandom(16)
    ct = bytes(a ^ b for a, b in zip(plaintext, keystream(key, nonce, len(plaintext))))
    tag = hmac.new(key, b"tag" + nonce + ct, hashlib.sha256).digest()[:16]
    return f"vault:v{len(versions)}:" + base64.b64encode(nonce + ct + tag).decode()


def unseal(name: str, ciphertext: str) -> bytes | None:
    try:
        _, version, body = ciphertext.split(":", 2)
        key = base64.b64decode(KEYS[name][int(version[1:]) - 1])
        raw = base64.b64decode(body)
    except (ValueError, IndexError, KeyError):
        return None
    nonce, ct, tag = raw[:16], raw[16:-16], raw[-16:]
    if not hmac.compare_digest(tag, hmac.new(key, b"tag" + nonce + ct, hashlib.sha256).digest()[:16]):
        return None
    return bytes(a ^ b for a, b in zip(ct, keystream(key, nonce, len(ct))))


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet
        pass

    def answer(self, status: int, body: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status: int, message: str) -> None:
        self.answer(status, {"errors": [message]})

    def handle_any(self, method: str) -> None:
        if self.headers.get("X-Vault-Token") != TOKEN:
            return self.error(403, "permission denied")
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        path = self.path.split("?")[0]
        parts = path.strip("/").split("/")
        if parts[:2] != ["v1", "transit"]:
            return self.error(404, "no handler for route")
        op, rest = parts[2], parts[3:]
        with LOCK:
            if op == "keys" and not rest and method == "GET":
                if not KEYS:
                    return self.error(404, "")
                return self.answer(200, {"data": {"keys": sorted(KEYS)}})
            if op == "datakey" and rest[:1] == ["plaintext"] and len(rest) == 2 and method == "POST":
                name = rest[1]
                if name not in KEYS:
                    return self.error(400, "encryption key not found")
                bits = int(body.get("bits", 256))
                plain = os.urandom(bits // 8)
                return self.answer(200, {"data": {"plaintext": base64.b64encode(plain).decode(),
                                                  "ciphertext": seal(name, plain)}})
            name = rest[0] if rest else ""
            if op == "keys" and len(rest) == 1 and method == "POST":
                if name not in KEYS:
                    KEYS[name] = [base64.b64encode(os.urandom(32)).decode()]
                    save(KEYS)
                return self.answer(204)
            if name not in KEYS:
                return self.error(400 if op != "keys" else 404, "encryption key not found")
            if op == "keys" and len(rest) == 1 and method == "GET":
                versions = {str(i + 1): 0 for i in range(len(KEYS[name]))}
                return self.answer(200, {"data": {"name": name, "latest_version": len(KEYS[name]),
                                                  "keys": versions, "type": "aes256-gcm96"}})
            if op == "keys" and rest[1:] == ["rotate"] and method == "POST":
                KEYS[name].append(base64.b64encode(os.urandom(32)).decode())
                save(KEYS)
                return self.answer(204)
            if op == "decrypt" and method == "POST":
                plain = unseal(name, body.get("ciphertext", ""))
                if plain is None:
                    return self.error(400, "cipher: message authentication failed")
                return self.answer(200, {"data": {"plaintext": base64.b64encode(plain).decode()}})
            if op == "rewrap" and method == "POST":
                plain = unseal(name, body.get("ciphertext", ""))
                if plain is None:
                    return self.error(400, "cipher: message authentication failed")
                return self.answer(200, {"data": {"ciphertext": seal(name, plain)}})
        return self.error(405, "unsupported operation")

    def do_GET(self) -> None:
        self.handle_any("GET")

    def do_POST(self) -> None:
        self.handle_any("POST")


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print("ready", flush=True)
    server.serve_forever()
