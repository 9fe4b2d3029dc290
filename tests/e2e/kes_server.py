"""A test server speaking MinIO KES's key API (the subset Strata uses) over TLS with client
certificates, because no KES server can run here. A mock of the service: keys are random
256-bit secrets in a JSON state file, and sealing is an HMAC-SHA256 keystream with an HMAC
tag over the ciphertext and the context (Python's standard library has no AES).

Endpoints: `POST /v1/key/create/NAME` (409 when it exists), `POST /v1/key/generate/NAME`
(`{"context"}` -> `{"plaintext", "ciphertext"}`), `POST /v1/key/encrypt/NAME`,
`POST /v1/key/decrypt/NAME`, `GET /v1/key/list/*` (`{"names": [...]}`). Errors are
`{"message": ...}`.

Usage: python kes_server.py PORT STATE_FILE CERT KEY CA
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PORT, STATE, CERT, KEY, CA = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
LOCK = threading.Lock()
KEYS: dict[str, str] = json.loads(STATE.read_text()) if STATE.exists() else {}


def save() -> None:
    tmp = STATE.with_suffix(".tmp")
    tmp.write_text(json.dumps(KEYS))
    tmp.replace(STATE)


def stream(key: bytes, nonce: bytes, n: int) -> bytes:
    out, counter = b"", 0
    while len(out) < n:
        out += hmac.new(key, b"stream" + nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest()
        counter += 1
    return out[:n]


def seal(name: str, plain: bytes, context: bytes) -> bytes:
    key = base64.b64decode(KEYS[name])
    nonce = os.urandom(16)
    ct = bytes(a ^ b for a, b in zip(plain, stream(key, nonce, len(plain))))
    tag = hmac.new(key, b"tag" + nonce + ct + context, hashlib.sha256).digest()[:16]
    return nonce + ct + tag


def unseal(name: str, sealed: bytes, context: bytes) -> bytes | None:
    key = base64.b64decode(KEYS[name])
    nonce, ct, tag = sealed[:16], sealed[16:-16], sealed[-16:]
    if len(sealed) < 32 or not hmac.compare_digest(
            tag, hmac.new(key, b"tag" + nonce + ct + context, hashlib.sha256).digest()[:16]):
        return None
    return bytes(a ^ b for a, b in zip(ct, stream(key, nonce, len(ct))))


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def answer(self, status: int, body: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.startswith("/v1/key/list/"):
            with LOCK:
                return self.answer(200, {"names": sorted(KEYS)})
        self.answer(404, {"message": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        parts = self.path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["v1", "key"]:
            return self.answer(404, {"message": "not found"})
        op, name = parts[2], parts[3]
        context = base64.b64decode(body.get("context", "") or "")
        with LOCK:
            if op == "create":
                if name in KEYS:
                    return self.answer(409, {"message": "key already exists"})
                KEYS[name] = base64.b64encode(os.urandom(32)).decode()
                save()
                return self.answer(200)
            if name not in KEYS:
                return self.answer(404, {"message": "key does not exist"})
            if op == "generate":
                plain = os.urandom(32)
                return self.answer(200, {"plaintext": base64.b64encode(plain).decode(),
                                         "ciphertext": base64.b64encode(seal(name, plain, context)).decode()})
            if op == "encrypt":
                plain = base64.b64decode(body.get("plaintext", ""))
                return self.answer(200, {"ciphertext": base64.b64encode(seal(name, plain, context)).decode()})
            if op == "decrypt":
                plain = unseal(name, base64.b64decode(body.get("ciphertext", "")), context)
                if plain is None:
                    return self.answer(400, {"message": "decryption failed: ciphertext is not authentic"})
                return self.answer(200, {"plaintext": base64.b64encode(plain).decode()})
        self.answer(404, {"message": "not found"})


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    ctx.load_verify_locations(CA)
    ctx.verify_mode = ssl.CERT_REQUIRED  # KES identifies clients by certificate
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("ready", flush=True)
    server.serve_forever()
