// Validates custom resources against their projects' CRD schemas, as packaged by the
// kubernetes-models project (each model's validate() checks the CRD's OpenAPI v3 schema).
// Input (stdin): a JSON array of manifests. Output (stdout): a JSON array with, for each custom
// resource, {kind, name, ok, error}. Exits 1 if a resource has no known schema or fails.
import { readFileSync } from "node:fs";

const PACKAGES = {
  "cert-manager.io": "@kubernetes-models/cert-manager",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "gateway.networking.k8s.io": "@kubernetes-models/gateway-api",
  "cloud.google.com": "@kubernetes-models/gke",
};

const docs = JSON.parse(readFileSync(0, "utf8"));
const results = [];
let failed = false;
for (const doc of docs) {
  const [group, version] = doc.apiVersion.includes("/") ? doc.apiVersion.split("/") : ["", doc.apiVersion];
  if (!(group in PACKAGES)) continue;
  const result = { kind: doc.kind, name: doc.metadata?.name, ok: false, error: null };
  try {
    const module = await import(`${PACKAGES[group]}/${group}/${version}/${doc.kind}`);
    const Model = module[doc.kind] ?? module.default;
    new Model(doc).validate();
    result.ok = true;
  } catch (err) {
    result.error = String(err?.message ?? err);
    failed = true;
  }
  results.push(result);
}
process.stdout.write(JSON.stringify(results) + "\n");
process.exit(failed ? 1 : 0);
