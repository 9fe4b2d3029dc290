"""The cloud emulators remote tiers are tested against, started by the tests on 127.0.0.1:
Azurite (Microsoft's Azure Storage emulator, npm `azurite`, installed by tests/run.sh into
tests/azurite) and gcp-storage-emulator (PyPI, in the test venv). Each helper creates the bucket (container) a tier needs
and lists what is in it, speaking the services' own HTTP APIs."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
AZURITE_BIN = REPO_ROOT / "tests" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (public, documented by Microsoft).
AZURE_ACCOUNT = "devstoreaccount1"
AZURE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURE_VERSION = "2021-08-06"


def _wait_port(url: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # answering, even if with an error
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def _stop(proc: subprocess.Popen | None) -> None:
    """Ends an emulator process (killed if it does not stop within 10 s)."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


class Azurite:
    def __init__(self, workdir: Path, port: int):
        self.workdir = workdir
        self.port = port
        self.proc: subprocess.Popen | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURE_ACCOUNT}"

    def start(self) -> "Azurite":
        log = open(self.workdir / "azurite.log", "ab")
        self.proc = subprocess.Popen(
            [str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
             "--location", str(self.workdir / "data"), "--skipApiVersionCheck", "--silent"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        _wait_port(f"http://127.0.0.1:{self.port}/")
        return self

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None

    def _request(self, method: str, path: str, query: dict[str, str]) -> bytes:
        """A SharedKey-signed request (Azure's scheme, as Azurite checks it)."""
        date = email.utils.formatdate(usegmt=True)
        headers = {"x-ms-date": date, "x-ms-version": AZURE_VERSION}
        canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
        resource = f"/{AZURE_ACCOUNT}/{AZURE_ACCOUNT}{path}" + "".join(
            f"\n{k}:{v}" for k, v in sorted(query.items()))
        content_type = "application/octet-stream" if method == "PUT" else ""
        # VERB, Content-Encoding, -Language, -Length (empty for 0), -MD5, -Type, Date,
        # If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since, Range.
        to_sign = f"{method}\n\n\n\n\n{content_type}\n\n\n\n\n\n\n{canonical_headers}{resource}"
        signature = base64.b64encode(hmac.new(base64.b64decode(AZURE_KEY), to_sign.encode(),
                                              hashlib.sha256).digest()).decode()
        headers["Authorization"] = f"SharedKey {AZURE_ACCOUNT}:{signature}"
        if content_type:
            headers["Content-Type"] = content_type
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/{AZURE_ACCOUNT}{path}?{qs}",
                                     method=method, headers=headers, data=b"" if method == "PUT" else None)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read()

    def create_container(self, name: str) -> None:
        self._request("PUT", f"/{name}", {"restype": "container"})

    def blobs(self, container: str) -> list[str]:
        xml = self._request("GET", f"/{container}", {"comp": "list", "restype": "container"}).decode()
        return re.findall(r"<Name>([^<]+)</Name>", xml)


class GcsEmulator:
    """gcp-storage-emulator (PyPI): the XML API object_store speaks for single-request
    uploads and ranged reads. It does not implement the XML API's DELETE (501) nor its
    multipart uploads, so GCS deletes are checked to be journaled and retried only."""

    def __init__(self, workdir: Path, port: int, bucket: str):
        self.binary = Path(sys.executable).parent / "gcp-storage-emulator"
        self.workdir = workdir
        self.port = port
        self.bucket = bucket
        self.proc: subprocess.Popen | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # The service account key object_store reads: no OAuth against the emulator.
    CREDENTIALS = json.dumps({"disable_oauth": True, "client_email": "", "private_key": "",
                              "private_key_id": ""})

    def start(self) -> "GcsEmulator":
        log = open(self.workdir / "gcs-emulator.log", "ab")
        self.proc = subprocess.Popen(
            [str(self.binary), "start", "--host", "127.0.0.1", "--port", str(self.port),
             "--default-bucket", self.bucket, "--in-memory", "--quiet"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        _wait_port(f"{self.endpoint}/storage/v1/b")
        return self

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None

    def objects(self) -> list[str]:
        with urllib.request.urlopen(f"{self.endpoint}/storage/v1/b/{self.bucket}/o", timeout=10) as resp:
            return [o["name"] for o in json.loads(resp.read()).get("items", [])]


__all__ = ["Azurite", "GcsEmulator", "AZURE_ACCOUNT", "AZURE_KEY"]
