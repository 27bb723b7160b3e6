"""What schema validation cannot see in the rendered chart: that objects refer to each other correctly (selectors,
named ports, Secret keys, HPA targets) and that every service carries probes, resources, a PDB and the security
settings the chart promises: secrets only as files, and NetworkPolicies on every pod that admit and reach only what
each component needs. Run by scripts/chart-lint.sh on the output of `helm template`."""

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
    # Secrets only as files: no Secret value in the environment, and each X_FILE names a key of a mounted Secret.
    for source in container.get("envFrom", []):
        expect("secretRef" not in source, f"{where}: a whole Secret in the environment (envFrom)")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"].rstrip("/"): volumes.get(m["name"], {}) for m in container.get("volumeMounts", [])}
    for env in container.get("env", []):
        expect("secretKeyRef" not in env.get("valueFrom", {}),
               f"{where}: {env['name']} takes a Secret's value as an environment variable, not as a file")
        if not env["name"].endswith("_FILE"):
            continue
        directory, _, file = env.get("value", "").rpartition("/")
        secret = mounts.get(directory, {}).get("secret")
        if not secret:
            expect(False, f"{where}: {env['name']} names {env.get('value')}, in no mounted Secret")
            continue
        items = {i["path"]: i["key"] for i in secret.get("items", [])}
        expect(file in items, f"{where}: {env['name']}: the Secret volume has no file {file}")
        if secret["secretName"] in secrets and file in items:
            expect(items[file] in secrets[secret["secretName"]],
                   f"{where}: Secret {secret['secretName']} has no key {items[file]}")


# The settings each workload reads from the connection Secret (as X_FILE); optional ones may be absent.
SECRET_FILES = {
    "idgen": {"ZOOKEEPER_CONNECT_FILE"},
    "shortener": {"DATABASE_URL_FILE", "REDIS_URL_FILE", "ZOOKEEPER_CONNECT_FILE"},
    "redirect": {"DATABASE_URL_FILE", "REDIS_URL_FILE"},
    "migrate": {"DATABASE_URL_FILE"},
    "cleanup": {"DATABASE_URL_FILE", "REDIS_URL_FILE"},
}
# The key behind compact codes goes to these and no other workload; the snowflake values set has no key at all.
CODE_KEY_READERS = {"shortener", "redirect"}

# What each component's NetworkPolicy lets it reach: (port, protocol) pairs.
DNS = {(53, "UDP"), (53, "TCP")}
EGRESS = {
    "idgen": DNS | {(2181, "TCP")},
    "shortener": DNS | {(5432, "TCP"), (6379, "TCP"), (2181, "TCP")},
    "redirect": DNS | {(5432, "TCP"), (6379, "TCP")},
    "migrate": DNS | {(5432, "TCP"), (6379, "TCP")},
    "cleanup": DNS | {(5432, "TCP"), (6379, "TCP")},
}


def selects_pod(selector, labels):
    """A label selector with matchLabels and matchExpressions (In only, as the chart writes them)."""
    match = selector.get("matchLabels", {})
    expressions = selector.get("matchExpressions", [])
    return bool(match or expressions) and all(labels.get(k) == v for k, v in match.items()) and all(
        e["operator"] == "In" and labels.get(e["key"]) in e["values"] for e in expressions)


def check_network_policies(policies, pods, pod_ports):
    """Every pod behind exactly one policy that restricts both directions; the defaults' peers and ports."""
    for name, pod in pods.items():
        mine = [p for p in policies if selects_pod(p["spec"]["podSelector"], pod["metadata"]["labels"])]
        expect(len(mine) == 1, f"{name}: selected by {len(mine)} NetworkPolicies, not one")
        if len(mine) != 1:
            continue
        spec = mine[0]["spec"]
        expect(set(spec.get("policyTypes", [])) == {"Ingress", "Egress"}, f"{name}: NetworkPolicy not both ways")
        reach = set()
        for rule in spec.get("egress", []):
            expect(rule.get("ports"), f"{name}: an egress rule open on every port")
            ports = {(p["port"], p.get("protocol", "TCP")) for p in rule.get("ports", [])}
            reach |= ports
            if ports <= DNS:
                expect(rule.get("to"), f"{name}: DNS reachable at any address")
        expect(reach == EGRESS[name], f"{name}: egress to {sorted(reach)}, not {sorted(EGRESS[name])}")
        ingress = spec.get("ingress", [])
        if name in ("migrate", "cleanup"):
            expect(not ingress, f"{name}: a Job's pods take connections")
            continue
        ports = pod_ports(spec["podSelector"]["matchLabels"])[1]
        for rule in ingress:
            expect(all(p["port"] in ports for p in rule["ports"]), f"{name}: NetworkPolicy names an unknown port")
            expect(rule.get("from"), f"{name}: port {rule['ports'][0]['port']} open to every source")
        by_port = {r["ports"][0]["port"]: r.get("from", []) for r in ingress}
        namespaces = lambda peers: [p.get("namespaceSelector", {}).get("matchLabels", {}).get(
            "kubernetes.io/metadata.name") for p in peers]
        expect(namespaces(by_port.get("admin", [])) == ["monitoring"],
               f"{name}: admin port not only from the monitoring namespace")
        if name == "idgen":
            clients = [p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
                       for p in by_port.get("api", [])]
            expect(clients == ["shortener"], f"idgen: API port open to {by_port.get('api')}, not the shortener only")
        else:
            expect(namespaces(by_port.get("api", [])) == ["ingress-nginx"],
                   f"{name}: API port not only from the ingress controller's namespace")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("rendered")
    parser.add_argument("--values-set", choices=("default", "all-on", "snowflake"), required=True)
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

    job_pods = {}
    for kind in ("Job", "CronJob"):
        for job in by_kind.get(kind, []):
            spec = job["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else job["spec"]
            job_pods[component(spec["template"])] = spec["template"]
            for container in spec["template"]["spec"]["containers"]:
                check_container(f"{kind} {job['metadata']['name']}", spec["template"]["spec"], container, secrets)

    code_style = "snowflake" if args.values_set == "snowflake" else "compact"
    for name, pod in {**pods, **job_pods}.items():
        names = {e["name"] for c in pod["spec"]["containers"] for e in c.get("env", [])}
        reads_code_key = code_style == "compact" and name in CODE_KEY_READERS
        wanted = SECRET_FILES[name] | ({"CODE_KEY_FILE"} if reads_code_key else set())
        expect(wanted <= names, f"{name}: no {sorted(wanted - names)}")
        expect("CODE_KEY_FILE" not in names or "CODE_KEY_FILE" in wanted,
               f"{name}: CODE_KEY_FILE, although {name} has no use for the code key here")

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
            static = [p["backend"]["service"]["name"] for p in rule["http"]["paths"] if p["path"] == "/static/"]
            expect(len(static) == 1 and static[0].endswith("-shortener"),
                   f"Ingress {rule['host']}: /static/ (the web page's assets) not to the shortener")

    # On by default (and in all-on): the policies are checked for both values sets.
    expect(by_kind.get("NetworkPolicy"), "no NetworkPolicy")
    check_network_policies(by_kind.get("NetworkPolicy", []), {**pods, **job_pods}, pod_ports)

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
    expect(shortener_env.get("CODE_STYLE") == code_style, f"the shortener's CODE_STYLE is not {code_style}")
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
