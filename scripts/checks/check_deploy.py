"""Consistency checks of the deployment files that schemas cannot make.

Usage: check_deploy.py RENDERED_DEV.yaml RENDERED_PRODUCTION.yaml
Run by scripts/check-deploy after rendering the overlays; needs PyYAML.
"""
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
def metric_catalog():
    """The metrics the code exports: the catalog in Sources/App/Metrics.swift."""
    text = (ROOT / "Sources" / "App" / "Metrics.swift").read_text()
    found = re.findall(r'Metric\("(faultline_[a-z_]+)", \.(counter|gauge|histogram)', text)
    if not found:
        sys.exit("error: no metric catalog found in Sources/App/Metrics.swift")
    return {name for name, _ in found}, {name for name, kind in found if kind == "histogram"}


METRICS, HISTOGRAMS = metric_catalog()

failures = []


def fail(message):
    failures.append(message)


def duration_seconds(text):
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text.strip())
    if not match:
        return None
    return float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]


def metric_names(expr):
    names = set()
    for name in re.findall(r"\bfaultline_[a-z_]+", expr):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base in HISTOGRAMS:
            name = base
        names.add(name)
    return names


def documented_variables():
    text = (ROOT / "docs" / "configuration.md").read_text()
    return set(re.findall(r"^\| `(FAULTLINE_[A-Z_]+)`", text, re.M))


def check_overlay(path, documented):
    documents = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    by_kind = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
    configs = by_kind.get("ConfigMap", [])
    if len(configs) != 1:
        fail(f"{path}: expected one ConfigMap, found {len(configs)}")
        return
    config = configs[0]["data"]
    for name in config:
        if name.startswith("FAULTLINE_KAFKA_") and name not in documented:
            continue  # passed to librdkafka
        if name not in documented:
            fail(f"{path}: {name} is not a documented Faultline setting (docs/configuration.md)")
    for secret in by_kind.get("Secret", []):
        for name in secret.get("stringData", {}):
            if name not in documented and not name.startswith("FAULTLINE_KAFKA_"):
                fail(f"{path}: Secret key {name} is not a documented Faultline setting")
    grace = duration_seconds(config.get("FAULTLINE_SHUTDOWN_GRACE", "25s"))
    for kind in ("Deployment", "Job"):
        for workload in by_kind.get(kind, []):
            name = workload["metadata"]["name"]
            pod = workload["spec"]["template"]["spec"]
            security = pod.get("securityContext", {})
            if not (security.get("runAsNonRoot") and security.get("runAsUser") == 10001
                    and security.get("seccompProfile", {}).get("type") == "RuntimeDefault"):
                fail(f"{path}: {kind} {name}: pod must run as non-root uid 10001 with RuntimeDefault seccomp")
            if pod.get("automountServiceAccountToken") is not False:
                fail(f"{path}: {kind} {name}: automountServiceAccountToken must be false")
            for container in pod["containers"]:
                context = container.get("securityContext", {})
                if not (context.get("readOnlyRootFilesystem") and context.get("allowPrivilegeEscalation") is False
                        and context.get("capabilities", {}).get("drop") == ["ALL"]):
                    fail(f"{path}: {kind} {name}: container must be read-only, without privilege escalation, dropping ALL")
                if not any(m["mountPath"] == "/tmp" for m in container.get("volumeMounts", [])):
                    fail(f"{path}: {kind} {name}: /tmp must be an emptyDir")
                if "limits" not in container.get("resources", {}) or "requests" not in container.get("resources", {}):
                    fail(f"{path}: {kind} {name}: resources need requests and limits")
            if kind != "Deployment":
                continue
            container = pod["containers"][0]
            args = container.get("args", [])
            if args[:2] != ["serve", "--role"] or not set(args[2].split(",")) <= {"ingest", "api", "analyze"}:
                fail(f"{path}: Deployment {name}: args must be serve --role <ingest,api,analyze>, not {args}")
            stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
            sleep = float(stop[-1]) if len(stop) == 2 and stop[0].endswith("sleep") else 0
            termination = pod.get("terminationGracePeriodSeconds", 30)
            if not sleep:
                fail(f"{path}: Deployment {name}: needs a preStop sleep so endpoints drain")
            if grace is None or sleep + grace >= termination:
                fail(f"{path}: Deployment {name}: preStop {sleep}s + FAULTLINE_SHUTDOWN_GRACE {grace}s "
                     f"must stay below terminationGracePeriodSeconds {termination}")
            probes = {key: container.get(key, {}).get("httpGet", {}).get("path") for key in ("livenessProbe", "readinessProbe")}
            if probes != {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}:
                fail(f"{path}: Deployment {name}: probes must be /healthz (liveness) and /readyz (readiness): {probes}")
    roles = sorted(",".join(sorted(d["spec"]["template"]["spec"]["containers"][0]["args"][2].split(",")))
                   for d in by_kind.get("Deployment", []))
    return roles


def check_rules():
    rules = yaml.safe_load((ROOT / "deploy/prometheus/faultline-rules.yaml").read_text())
    count = 0
    for group in rules["groups"]:
        for rule in group["rules"]:
            count += 1
            unknown = metric_names(rule["expr"]) - METRICS
            if unknown:
                fail(f"faultline-rules.yaml: {rule.get('alert')}: unknown metrics {sorted(unknown)}")
            if "severity" not in rule.get("labels", {}) or "summary" not in rule.get("annotations", {}):
                fail(f"faultline-rules.yaml: {rule.get('alert')}: needs a severity label and a summary")
    return count


def check_dashboard():
    path = ROOT / "deploy/grafana/faultline-dashboard.json"
    dashboard = json.loads(path.read_text())
    if not 36 <= dashboard.get("schemaVersion", 0) <= 41:
        fail(f"{path.name}: schemaVersion {dashboard.get('schemaVersion')} is not a recent one")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    if variables.get("datasource", {}).get("type") != "datasource" or variables["datasource"].get("query") != "prometheus":
        fail(f"{path.name}: needs a Prometheus datasource variable named datasource")
    ids, used = set(), set()
    for panel in dashboard["panels"]:
        if panel["id"] in ids:
            fail(f"{path.name}: panel id {panel['id']} used twice")
        ids.add(panel["id"])
        if panel["type"] == "row":
            continue
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            fail(f"{path.name}: panel {panel['title']!r} does not use the datasource variable")
        for target in panel.get("targets", []):
            names = metric_names(target["expr"])
            if names - METRICS:
                fail(f"{path.name}: panel {panel['title']!r}: unknown metrics {sorted(names - METRICS)}")
            used |= names
    if METRICS - used:
        fail(f"{path.name}: no panel shows {sorted(METRICS - used)}")
    return len(ids)


def main():
    documented = documented_variables()
    if not documented:
        fail("docs/configuration.md lists no FAULTLINE_* variable")
    dev_roles = check_overlay(sys.argv[1], documented)
    production_roles = check_overlay(sys.argv[2], documented)
    if dev_roles != ["analyze,api,ingest"]:
        fail(f"dev overlay: expected one Deployment with every role, found {dev_roles}")
    if production_roles != ["analyze", "api", "ingest"]:
        fail(f"production overlay: expected one Deployment per role, found {production_roles}")
    rules = check_rules()
    panels = check_dashboard()
    for message in failures:
        print(f"FAIL {message}")
    print(f"deploy consistency: {rules} alert rules, {panels} dashboard panels, "
          f"dev {dev_roles}, production {production_roles}: {'ok' if not failures else f'{len(failures)} problem(s)'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
