"""What schema validation cannot see in the rendered chart: that objects refer to each other correctly (selectors,
named ports, Secret keys, HPA targets) and that every service carries probes, resources, a PDB and the security
settings the chart promises. Run by scripts/chart-lint.sh on the output of `helm template`."""

import argparse
import json
import pathlib
import sys

import yaml

SERVICES = ("idgen", "shortener", "redirect")
problems = []


def expect(condition, message):
    if not condition:
        problems.append(message)


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def component(obj):
    return obj["metadata"]["labels"].get("app.kubernetes.io/component")


def check_probes(where, container):
    ports = {p["name"] for p in container.get("ports", [])}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container.get(probe, {}).get("httpGet", {})
        expect(get.get("path") == path and get.get("port") == "admin" and "admin" in ports,
               f"{where}: {probe} is not GET {path} on the admin port")


def check_container(where, pod, container, secrets):
    """Resources, security and Secret references: what every container needs, one-shot Jobs included."""
    resources = container.get("resources", {})
    for kind in ("requests", "limits"):
        expect({"cpu", "memory"} <= set(resources.get(kind, {})), f"{where}: no {kind} for cpu and memory")
    sc = container.get("securityContext", {})
    expect(sc.get("readOnlyRootFilesystem") is True, f"{where}: root filesystem is writable")
    expect(sc.get("allowPrivilegeEscalation") is False, f"{where}: privilege escalation allowed")
    expect(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities not all dropped")
    expect(pod.get("securityContext", {}).get("runAsNonRoot") is True, f"{where}: may run as root")
    for env in container.get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref and ref["name"] in secrets and not ref.get("optional"):
            expect(ref["key"] in secrets[ref["name"]], f"{where}: Secret {ref['name']} has no key {ref['key']}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("rendered")
    parser.add_argument("--values-set", choices=("default", "all-on"), required=True)
    args = parser.parse_args()
    with open(args.rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    secrets = {s["metadata"]["name"]: set(s.get("stringData", {})) | set(s.get("data", {}))
               for s in by_kind.get("Secret", [])}
    deployments = {component(d): d for d in by_kind.get("Deployment", [])}
    expect(set(deployments) == set(SERVICES), f"Deployments: {sorted(deployments)}")

    pods = {}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]
        pods[name] = pod
        expect(selects(deployment["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"]),
               f"{name}: Deployment selector does not match its pods")
        for container in pod["spec"]["containers"]:
            check_probes(f"Deployment {name}", container)
            check_container(f"Deployment {name}", pod["spec"], container, secrets)

    for kind in ("Job", "CronJob"):
        for job in by_kind.get(kind, []):
            spec = job["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else job["spec"]
            for container in spec["template"]["spec"]["containers"]:
                check_container(f"{kind} {job['metadata']['name']}", spec["template"]["spec"], container, secrets)

    def pod_ports(selector):
        matched = [n for n, p in pods.items() if selects(selector, p["metadata"]["labels"])]
        expect(len(matched) == 1, f"selector {selector} matches {matched}, not one Deployment")
        return matched[0] if matched else None, {
            p["name"] for n in matched for c in pods[n]["spec"]["containers"] for p in c.get("ports", [])}

    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    for name, service in services.items():
        _, ports = pod_ports(service["spec"]["selector"])
        for port in service["spec"]["ports"]:
            expect(port["targetPort"] in ports, f"Service {name}: targetPort {port['targetPort']} not on the pods")

    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in by_kind.get("HorizontalPodAutoscaler", [])}
    pdbs = [p["spec"]["selector"]["matchLabels"] for p in by_kind.get("PodDisruptionBudget", [])]
    for name, deployment in deployments.items():
        labels = pods[name]["metadata"]["labels"]
        expect(sum(selects(s, labels) for s in pdbs) == 1, f"{name}: not exactly one PodDisruptionBudget")
        hpa = hpas.get(deployment["metadata"]["name"])
        if args.values_set == "all-on" or name == "redirect":
            expect(hpa is not None, f"{name}: no HorizontalPodAutoscaler")
            expect(hpa is None or "replicas" not in deployment["spec"], f"{name}: replicas fixed under an HPA")
    redirect_hpa = hpas.get(deployments["redirect"]["metadata"]["name"], {}).get("spec", {})
    if args.values_set == "default":
        expect((redirect_hpa.get("minReplicas"), redirect_hpa.get("maxReplicas")) == (2, 20), "redirect HPA not 2..20")
        expect(redirect_hpa.get("metrics", [{}])[0].get("resource", {}).get("target", {}).get("averageUtilization") == 70,
               "redirect HPA does not target 70% CPU")
        expect(redirect_hpa.get("behavior", {}).get("scaleDown", {}).get("stabilizationWindowSeconds", 0) > 0,
               "redirect HPA scales down without stabilisation")
        expect(pods["redirect"]["spec"].get("topologySpreadConstraints"), "redirect is not spread across zones/nodes")

    for ingress in by_kind.get("Ingress", []):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = services.get(backend["name"])
                expect(service and backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]},
                       f"Ingress path {path['path']}: no Service {backend['name']} port {backend['port']}")
                expect(not backend["name"].endswith("-admin"), "Ingress exposes an admin Service")

    for policy in by_kind.get("NetworkPolicy", []):
        _, ports = pod_ports(policy["spec"]["podSelector"]["matchLabels"])
        for rule in policy["spec"]["ingress"]:
            expect(all(p["port"] in ports for p in rule["ports"]), f"NetworkPolicy {policy['metadata']['name']}: unknown port")

    for monitor in by_kind.get("ServiceMonitor", []):
        selected = [s for s in services.values() if selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
        expect(sorted(s["metadata"]["name"] for s in selected) == sorted(s for s in services if s.endswith("-admin")),
               "ServiceMonitor does not select exactly the admin Services")
        for endpoint in monitor["spec"]["endpoints"]:
            expect(all(endpoint["port"] in {p["name"] for p in s["spec"]["ports"]} for s in selected),
                   f"ServiceMonitor port {endpoint['port']} missing on a selected Service")

    rules_file = pathlib.Path(__file__).resolve().parent.parent / "charts/snowlink/alerts/rules.yaml"
    for rule in by_kind.get("PrometheusRule", []):
        # promtool tests the file; this proves what it tested is what a cluster gets.
        expect(rule["spec"]["groups"] == yaml.safe_load(rules_file.read_text())["groups"],
               "PrometheusRule groups differ from charts/snowlink/alerts/rules.yaml")

    for config_map in by_kind.get("ConfigMap", []):
        for key, text in config_map.get("data", {}).items():
            if key.endswith(".json"):
                dashboard = json.loads(text)
                expect(dashboard.get("panels") and all(p.get("targets") for p in dashboard["panels"]),
                       f"dashboard {key}: a panel without queries")

    shortener_env = {e["name"]: e.get("value") for e in pods["shortener"]["spec"]["containers"][0]["env"]}
    cron_jobs = by_kind.get("CronJob", [])
    expect(shortener_env.get("SHORTENER_CLEANUP") == ("off" if cron_jobs else "on"),
           "in-process cleanup and the CronJob are not exclusive")
    for cron in cron_jobs:
        args_ = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
        expect(args_ == ["cleanup", "--once"], f"CronJob runs {args_}")
    # The shortener migrates at start only when no migration Job has run before it.
    migrate_first = any("pre-install" in job["metadata"].get("annotations", {}).get("helm.sh/hook", "")
                        for job in by_kind.get("Job", []))
    expect(shortener_env.get("SHORTENER_MIGRATE") == ("skip" if migrate_first else "auto"),
           "the shortener migrates at start although the migrate Job runs before it, or the other way round")
    # A pod told to stop serves on for its drain delay; its grace period must outlast that (the template checks
    # the whole sum; this checks that the delay the pods get is the one it checked).
    for name, pod in pods.items():
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        delay_ms = int(env.get("DRAIN_DELAY_MS", "-1"))
        expect(0 <= delay_ms < 1000 * pod["spec"]["terminationGracePeriodSeconds"],
               f"{name}: DRAIN_DELAY_MS {delay_ms} missing or not within terminationGracePeriodSeconds")
    if args.values_set == "all-on":
        present = set(by_kind)
        wanted = {"Ingress", "NetworkPolicy", "ServiceMonitor", "PrometheusRule", "ConfigMap", "CronJob", "Job", "Secret"}
        expect(wanted <= present, f"all-on values do not render {sorted(wanted - present)}")

    for problem in problems:
        print(f"chart_check: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
