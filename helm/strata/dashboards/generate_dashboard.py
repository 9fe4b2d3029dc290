"""Generates helm/strata/dashboards/strata-dashboard.json (run from the repository root:
`python3 helm/strata/dashboards/generate_dashboard.py`). Edit this file, not the JSON. Every expression is
checked against a real Prometheus and the exported metric families by
tests/e2e/test_observability.py."""
import json
DS = {"type": "prometheus", "uid": "${datasource}"}
panels = []
y = 0


def row(title):
    global y
    panels.append({"type": "row", "title": title, "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "id": len(panels) + 1, "panels": []})
    y += 1


def ts(title, targets, unit="short", w=12, x=0, h=8):
    panels.append({
        "type": "timeseries", "title": title, "datasource": DS,
        "id": len(panels) + 1, "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]},
                    "tooltip": {"mode": "multi"}},
        "targets": [{"datasource": DS, "expr": e, "legendFormat": l, "refId": chr(65 + i)}
                    for i, (e, l) in enumerate(targets)],
    })


def stat(title, expr, unit="short", w=6, x=0, thresholds=None):
    panels.append({
        "type": "stat", "title": title, "datasource": DS, "id": len(panels) + 1,
        "gridPos": {"h": 4, "w": w, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": thresholds or {
            "mode": "absolute", "steps": [{"color": "green", "value": None}]}}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "value", "graphMode": "area"},
        "targets": [{"datasource": DS, "expr": expr, "refId": "A"}],
    })


def red_below(v):
    return {"mode": "absolute", "steps": [{"color": "red", "value": None}, {"color": "green", "value": v}]}


J = '{job=~"$job"}'
G = '{job=~"$job", api="GetObject"}'
R = "[$__rate_interval]"

row("Overview")
stat("Drives online", f"sum(strata_drive_online{J})", x=0, thresholds=red_below(1))
stat("Drives offline", f"count(strata_drive_online{J} == 0) or vector(0)", x=6,
     thresholds={"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}]})
stat("Write quorum (1 = every set)", f"min(strata_cluster_write_quorum_ok{J})", x=12, thresholds=red_below(1))
stat("Raw capacity used",
     f"1 - sum(strata_cluster_capacity_raw_free_bytes{J}) / sum(strata_cluster_capacity_raw_total_bytes{J})",
     unit="percentunit", x=18)
y += 4
row("S3 requests")
ts("Requests per second by API", [(f"sum by (api) (rate(strata_s3_requests_total{J}{R}))", "{{api}}")], unit="reqps")
ts("Errors per second by S3 code", [(f"sum by (code) (rate(strata_s3_errors_total{J}{R}))", "{{code}}")],
   unit="reqps", x=12)
y += 8
ts("Request latency p99 by API",
   [(f"histogram_quantile(0.99, sum by (le, api) (rate(strata_s3_request_duration_seconds_bucket{J}{R})))",
     "{{api}} p99")], unit="s")
ts("GET time to first byte",
   [(f"histogram_quantile(0.5, sum by (le) (rate(strata_s3_ttfb_seconds_bucket{G}{R})))", "p50"),
    (f"histogram_quantile(0.99, sum by (le) (rate(strata_s3_ttfb_seconds_bucket{G}{R})))", "p99")], unit="s", x=12)
y += 8
ts("Throughput", [(f"sum(rate(strata_s3_received_bytes_total{J}{R}))", "received"),
                  (f"sum(rate(strata_s3_sent_bytes_total{J}{R}))", "sent")], unit="Bps")
ts("Requests in flight", [(f"sum(strata_s3_requests_inflight{J})", "in flight")], x=12)
y += 8
row("Drives and erasure sets")
ts("Drives online", [(f"strata_drive_online{J}", "{{drive}}")])
ts("Erasure sets: drives online vs write quorum",
   [(f"strata_set_drives_online{J}", "pool {{pool}} set {{set}} online"),
    (f"strata_set_write_quorum_drives{J}", "pool {{pool}} set {{set}} write quorum")], x=12)
y += 8
ts("Drive used bytes", [(f"strata_drive_used_bytes{J}", "{{drive}}")], unit="bytes")
ts("Drive I/O errors per second", [(f"rate(strata_drive_io_errors_total{J}{R})", "{{drive}}")], x=12)
y += 8
ts("Bytes per bucket", [(f"strata_bucket_bytes{J}", "{{bucket}}")], unit="bytes")
ts("Objects per bucket", [(f"strata_bucket_objects{J}", "{{bucket}}")], x=12)
y += 8
row("Healing and scanner")
ts("Scanner objects per second", [(f"rate(strata_scanner_objects_scanned_total{J}{R})", "scanned"),
                                  (f"rate(strata_scanner_objects_healed_total{J}{R})", "healed"),
                                  (f"rate(strata_scanner_objects_failed_total{J}{R})", "failed")])
ts("Heal sequence progress", [(f"strata_heal_sequence_objects_scanned{J}", "scanned"),
                              (f"strata_heal_sequence_objects_healed{J}", "healed"),
                              (f"strata_heal_sequence_objects_failed{J}", "failed"),
                              (f"strata_heal_sequence_running{J}", "running")], x=12)
y += 8
row("Internals")
ts("Metadata commit latency",
   [(f"histogram_quantile(0.5, sum by (le) (rate(strata_drive_metadata_commit_seconds_bucket{J}{R})))", "p50"),
    (f"histogram_quantile(0.99, sum by (le) (rate(strata_drive_metadata_commit_seconds_bucket{J}{R})))", "p99")],
   unit="s")
ts("Group-commit batches per transaction",
   [(f"sum(rate(strata_drive_metadata_commit_batches_sum{J}{R})) / "
     f"sum(rate(strata_drive_metadata_commit_batches_count{J}{R}))", "mean")], x=12)
y += 8
ts("Erasure time per block p99",
   [(f"histogram_quantile(0.99, sum by (le, op) (rate(strata_erasure_block_seconds_bucket{J}{R})))", "{{op}} p99")],
   unit="s")
ts("Erasure throughput", [(f"sum by (op) (rate(strata_erasure_bytes_total{J}{R}))", "{{op}}")], unit="Bps", x=12)
y += 8
ts("Audit delivery", [(f"sum by (target) (rate(strata_audit_sent_total{J}{R}))", "{{target}} sent"),
                      (f"sum by (target) (rate(strata_audit_failed_total{J}{R}))", "{{target}} failed"),
                      (f"sum by (target) (rate(strata_audit_dropped_total{J}{R}))", "{{target}} dropped"),
                      (f"sum by (target) (strata_audit_queued{J})", "{{target}} queued")])
ts("Resident memory", [(f"process_resident_memory_bytes{J}", "{{instance}}")], unit="bytes", w=6, x=12)
ts("CPU and file descriptors", [(f"rate(process_cpu_seconds_total{J}{R})", "CPU cores {{instance}}"),
                                (f"process_open_fds{J}", "open fds {{instance}}")], w=6, x=18)
y += 8

dash = {
    "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
                  "pluginId": "prometheus", "pluginName": "Prometheus"}],
    "title": "Strata", "uid": "strata-overview",
    "description": "Strata object store: S3 traffic, drives, erasure sets, healing, internals (scrape /metrics/cluster).",
    "tags": ["strata", "s3", "storage"], "timezone": "", "schemaVersion": 39, "version": 1, "editable": True,
    "refresh": "30s", "time": {"from": "now-1h", "to": "now"},
    "templating": {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0},
        {"name": "job", "label": "Job", "type": "query", "datasource": DS,
         "query": "label_values(strata_s3_requests_inflight, job)", "refresh": 2, "includeAll": True,
         "multi": True, "current": {"text": "All", "value": "$__all"}, "allValue": ".*"},
    ]},
    "annotations": {"list": []},
    "panels": panels,
}
open("helm/strata/dashboards/strata-dashboard.json", "w").write(json.dumps(dash, indent=2) + "\n")
print(len(panels), "panels")
