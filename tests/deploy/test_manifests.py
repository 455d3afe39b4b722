"""Static checks of every manifest in deploy/: shape, security, secrets, monitoring, AlertManager."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from kubernaut.observability.dashboard import SERVE_SERIES, build_dashboard, metric_names, panel_queries
from kubernaut.observability.metrics import METRICS, exported_series
from tests.deploy.manifests import (
    DEPLOY,
    REPO_ROOT,
    all_objects,
    containers,
    load_docs,
    manifest_files,
    pod_templates,
    ray_container,
    rayservice,
)

NAMESPACE = "kubernaut"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
KNOWN_SERIES = set(exported_series()) | set(SERVE_SERIES)


def _objects(kind: str, root: Path = DEPLOY) -> list[dict]:
    return [doc for _, doc in all_objects(root) if doc["kind"] == kind]


def test_every_manifest_file_is_valid_yaml_of_kubernetes_objects() -> None:
    """`kubectl apply -R -f deploy/` reads every .yaml/.yml/.json: each must hold only Kubernetes objects."""
    files = manifest_files()
    assert len(files) >= 12
    for path in files:
        docs = load_docs(path)
        assert docs, f"{path} is empty"
        for doc in docs:
            assert {"apiVersion", "kind", "metadata"} <= set(doc), f"{path}: not a Kubernetes object"
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"]), path
            if doc["kind"] not in CLUSTER_SCOPED:
                assert doc["metadata"].get("namespace") in (NAMESPACE, "monitoring"), f"{path}: {doc['kind']}"


def test_generator_inputs_are_not_picked_up_by_kubectl() -> None:
    """Templates and snippets use suffixes kubectl ignores, so `kubectl apply -R -f deploy/` works."""
    for path in DEPLOY.rglob("*"):
        if path.is_file() and path.suffix not in (".yaml", ".yml", ".json"):
            assert path.suffix in (".in", ".md", ".example", "") or path.name == "Dockerfile", path


def test_secrets_only_in_the_examples_and_every_referenced_secret_is_documented() -> None:
    example = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in load_docs(DEPLOY / "examples" /
                                                                                           "secrets.yaml")}
    for path, doc in all_objects():
        if doc["kind"] == "Secret":
            assert path.parent.name == "examples", f"{path}: Secrets with values do not belong in deploy/"
    referenced: set[tuple[str, str, str]] = set()

    def walk(node, namespace: str) -> None:
        if isinstance(node, dict):
            ref = node.get("secretKeyRef")
            if isinstance(ref, dict):
                referenced.add((namespace, ref["name"], ref["key"]))
            for value in node.values():
                walk(value, namespace)
        elif isinstance(node, list):
            for value in node:
                walk(value, namespace)

    for path, doc in all_objects():
        if path.parent.name != "examples":
            walk(doc, doc["metadata"].get("namespace", NAMESPACE))
    assert referenced, "nothing references a Secret?"
    for namespace, name, key in referenced:
        secret = example.get((namespace, name))
        assert secret is not None, f"Secret {namespace}/{name} is referenced but not in deploy/examples/secrets.yaml"
        assert key in secret["stringData"], f"{namespace}/{name} has no key {key!r} in the example"
        assert "REPLACE" in secret["stringData"][key], f"{namespace}/{name}.{key}: example values are placeholders"
    # The shapes the environment variables expect: gateway.tokens entries (hash placeholder aside), audit keys.
    (entry,) = json.loads(example[(NAMESPACE, "kubernaut-gateway")]["stringData"]["tokens"])
    assert set(entry) == {"name", "roles", "hash"} and entry["hash"].startswith("sha256:")
    assert isinstance(json.loads(example[(NAMESPACE, "kubernaut-audit")]["stringData"]["keys"]), dict)
    json.loads(example[(NAMESPACE, "kubernaut-notifications")]["stringData"]["urls"])


def test_every_container_is_sized_and_locked_down() -> None:
    seen = 0
    for _, doc in all_objects():
        for where, container in containers(doc):
            seen += 1
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), f"{where}: requests"
            assert "memory" in resources.get("limits", {}), f"{where}: memory limit"
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert ":latest" not in container["image"] and ":" in container["image"], f"{where}: pin the image tag"
            if container["name"] not in ("ray-head", "ray-worker"):
                # Our own datastores: read-only root, probes, non-root pod.
                assert sc["readOnlyRootFilesystem"] is True, where
                assert {"readinessProbe", "livenessProbe"} <= set(container), f"{where}: probes"
                pod = doc["spec"]["template"]["spec"]
                assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
                assert pod["automountServiceAccountToken"] is False, f"{where} never calls the API server"
    assert seen >= 5


def test_postgres_ships_pgvector_and_creates_the_extension_as_superuser() -> None:
    (statefulset,) = [d for d in _objects("StatefulSet") if d["metadata"]["name"] == "kubernaut-postgres"]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("pgvector/pgvector:") and "pg16" in container["image"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "kubernaut-postgres"
    assert env["PGDATA"]["value"].startswith(container["volumeMounts"][0]["mountPath"] + "/")
    (init,) = [d for d in _objects("ConfigMap") if d["metadata"]["name"] == "kubernaut-postgres-init"]
    script = init["data"]["10-kubernaut.sh"]
    assert "CREATE EXTENSION IF NOT EXISTS vector" in script and "OWNER TO kubernaut_owner" in script
    # Two roles (issue 12): the owner migrates; the app role of DATABASE_URL owns nothing.
    assert "CREATE ROLE kubernaut LOGIN" in script and "OWNER TO kubernaut;" not in script
    # The migrations only CREATE EXTENSION IF NOT EXISTS: a no-op for the non-superuser app role.
    migration = (REPO_ROOT / "kubernaut" / "storage" / "migrations" / "0001_initial.sql").read_text()
    assert "CREATE EXTENSION IF NOT EXISTS vector" in migration
    assert "pg_advisory_lock" in (REPO_ROOT / "kubernaut" / "storage" / "migrations.py").read_text()
    # The database URL of the example points at this Service.
    (secret,) = [d for d in load_docs(DEPLOY / "examples" / "secrets.yaml")
                 if d["metadata"]["name"] == "kubernaut-database"]
    assert "@kubernaut-postgres.kubernaut.svc.cluster.local:5432/kubernaut" in secret["stringData"]["url"]


def test_redis_matches_the_rayservice_gcs_fault_tolerance() -> None:
    (service,) = [d for d in _objects("Service") if d["metadata"]["name"] == "kubernaut-redis"]
    address = rayservice("cpu")["spec"]["rayClusterConfig"]["gcsFaultToleranceOptions"]["redisAddress"]
    host, port = address.rsplit(":", 1)
    assert host.split(".")[:2] == [service["metadata"]["name"], service["metadata"]["namespace"]]
    assert int(port) == service["spec"]["ports"][0]["port"]
    (statefulset,) = [d for d in _objects("StatefulSet") if d["metadata"]["name"] == "kubernaut-redis"]
    args = statefulset["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes", "GCS state must survive a Redis restart"
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"


def _policies() -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in _objects("NetworkPolicy")}


def test_network_policies_deny_by_default_and_admit_only_what_is_needed() -> None:
    policies = _policies()
    deny = policies["default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    ports_by_source: dict[str, set[int]] = {}
    for policy in policies.values():
        for rule in policy["spec"].get("ingress", []):
            for peer in rule["from"]:
                source = json.dumps(peer.get("podSelector", {}), sort_keys=True)
                ports_by_source.setdefault(source, set()).update(p["port"] for p in rule.get("ports", []))
    alertmanager = json.dumps({"matchLabels": {"app.kubernetes.io/name": "alertmanager"}}, sort_keys=True)
    prometheus = json.dumps({"matchLabels": {"app.kubernetes.io/name": "prometheus"}}, sort_keys=True)
    assert ports_by_source[alertmanager] == {8000}, "AlertManager reaches the Serve proxies only"
    assert ports_by_source[prometheus] == {8080, 44217, 44227}, "Prometheus reaches metrics ports only"
    # Every Ray container port Prometheus scrapes is admitted.
    head = ray_container(next(t for g, t in pod_templates(rayservice("cpu")) if g == "head"))
    monitor_ports = {e["port"] for d in _objects("PodMonitor", DEPLOY / "monitoring")
                     for e in d["spec"]["podMetricsEndpoints"]}
    head_ports = {p["name"]: p["containerPort"] for p in head["ports"]}
    assert {head_ports[name] for name in monitor_ports} == ports_by_source[prometheus]
    # Datastores accept Ray pods on their own port only.
    assert policies["postgres-from-ray"]["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 5432}]
    assert policies["redis-from-ray"]["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 6379}]


def test_pod_monitors_target_named_ports_of_the_ray_containers() -> None:
    monitors = {d["metadata"]["name"]: d for d in _objects("PodMonitor", DEPLOY / "monitoring")}
    assert set(monitors) == {"kubernaut-ray-head", "kubernaut-ray-workers"}
    ports = {
        group: {p["name"] for p in ray_container(template)["ports"]}
        for group, template in pod_templates(rayservice("llm"))
    }
    for name, monitor in monitors.items():
        node_type = monitor["spec"]["selector"]["matchLabels"]["ray.io/node-type"]
        groups = ["head"] if node_type == "head" else [g for g in ports if g != "head"]
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert endpoint["path"] == "/metrics"
            for group in groups:
                assert endpoint["port"] in ports[group], f"{name}: no port {endpoint['port']} on {group}"


def _rules() -> list[dict]:
    (rule_doc,) = _objects("PrometheusRule", DEPLOY / "monitoring")
    return [rule for group in rule_doc["spec"]["groups"] for rule in group["rules"]]


def test_prometheus_rules_are_complete_and_name_known_metrics() -> None:
    rules = _rules()
    assert len(rules) >= 8
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert re.fullmatch(r"Kubernaut[A-Za-z]+", rule["alert"])
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert re.fullmatch(r"\d+[smh]", rule["for"])
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")"), rule["alert"]
        used = metric_names(expr)
        assert used or "up{" in expr, rule["alert"]
        assert used <= KNOWN_SERIES, f"{rule['alert']}: unknown metric(s) {used - KNOWN_SERIES}"
        for match in re.finditer(r'outcome(?:=~|=)"([^"]+)"', expr):
            for value in match.group(1).split("|"):
                assert any(value in values for spec in METRICS for label, values in spec.label_values
                           if label == "outcome"), f"{rule['alert']}: undocumented outcome {value!r}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package `prometheus`) not installed")
def test_prometheus_rules_pass_promtool(tmp_path: Path) -> None:
    (rule_doc,) = _objects("PrometheusRule", DEPLOY / "monitoring")
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule_doc["spec"]))
    proc = subprocess.run(["promtool", "check", "rules", str(rules_file)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    broken = yaml.safe_load(rules_file.read_text())
    broken["groups"][0]["rules"][0]["expr"] = "sum(rate(ray_kubernaut_alerts_rejected_total[5m]) > 0"
    rules_file.write_text(yaml.safe_dump(broken))
    proc = subprocess.run(["promtool", "check", "rules", str(rules_file)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode != 0, "promtool accepted a broken expression"


def test_dashboard_queries_name_documented_metrics_only() -> None:
    dashboard = build_dashboard()
    queries = panel_queries(dashboard)
    assert len(queries) >= 20
    used: set[str] = set()
    for title, expr in queries:
        names = metric_names(expr)
        assert names, f"panel {title!r} reads no metric"
        assert names <= KNOWN_SERIES, f"panel {title!r}: unknown metric(s) {names - KNOWN_SERIES}"
        assert expr.count("(") == expr.count(")"), title
        used |= names
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    # The panels the issue asks for: ingest rate, p99 latency, funnel, actions + success rate, approvals, LLM.
    titles = " | ".join(p["title"] for p in dashboard["panels"])
    for words in ("Alerts received", "p99", "funnel", "success rate", "Approval queue", "LLM cost", "latency"):
        assert words in titles, words
    # Every application metric is on the dashboard or in an alert rule.
    for rule in _rules():
        used |= metric_names(rule["expr"])
    unused = {spec.name for spec in METRICS if not set(spec.series) & used}
    assert not unused, f"metrics nobody looks at: {unused}"


def test_metric_names_ignore_labels_and_groupings() -> None:
    expr = ('sum by (ray_io_cluster) (rate(ray_kubernaut_actions_total{ray_io_cluster="x"}[5m])) / '
            "ignoring(ray_x) ray_kubernaut_incidents")
    assert metric_names(expr) == {"ray_kubernaut_actions_total", "ray_kubernaut_incidents"}


def _alertmanager_snippet() -> dict:
    return yaml.safe_load((DEPLOY / "monitoring" / "alertmanager-receiver.yml.example").read_text())


def test_alertmanager_receiver_posts_to_the_serve_service_with_a_token_file() -> None:
    config = _alertmanager_snippet()
    (receiver,) = [r for r in config["receivers"] if r["name"] == "kubernaut"]
    (webhook,) = receiver["webhook_configs"]
    # KubeRay names the Serve Service <rayservice>-serve-svc.
    service = rayservice("cpu")["metadata"]
    assert webhook["url"] == (f"http://{service['name']}-serve-svc.{service['namespace']}.svc.cluster.local:8000"
                              "/api/v1/alerts")
    assert webhook["send_resolved"] is True
    auth = webhook["http_config"]["authorization"]
    assert set(auth) == {"type", "credentials_file"}, "the token comes from a mounted Secret, never inline"
    (route,) = [r for r in config["route"]["routes"] if r["receiver"] == "kubernaut"]
    assert 'namespace != "kubernaut"' in route["matchers"], "Kubernaut must not remediate itself"
    # The AlertmanagerConfig variant reads the same token from a Secret key.
    (amc,) = _objects("AlertmanagerConfig", DEPLOY / "monitoring")
    (amc_webhook,) = amc["spec"]["receivers"][0]["webhookConfigs"]
    assert amc_webhook["url"] == webhook["url"]
    assert amc_webhook["httpConfig"]["authorization"]["credentials"] == {"name": "kubernaut-webhook-token",
                                                                         "key": "token"}


def test_alertmanager_examples_bound_groups_to_what_the_gateway_accepts() -> None:
    """AlertManager does not retry a 4xx: an unbounded group (max_alerts 0) can exceed the gateway's limits and
    be lost whole. The examples bound it below max_alerts_per_request, with room for 2 KB alerts in the body."""
    from kubernaut.config.settings import GatewayConfig

    gateway = GatewayConfig()
    (receiver,) = [r for r in _alertmanager_snippet()["receivers"] if r["name"] == "kubernaut"]
    (amc,) = _objects("AlertmanagerConfig", DEPLOY / "monitoring")
    for max_alerts in (receiver["webhook_configs"][0].get("max_alerts", 0),
                       amc["spec"]["receivers"][0]["webhookConfigs"][0].get("maxAlerts", 0)):
        assert 0 < max_alerts <= gateway.max_alerts_per_request
        assert max_alerts * 2048 <= gateway.max_body_bytes


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool (prometheus-alertmanager) not installed")
def test_alertmanager_snippet_passes_amtool(tmp_path: Path) -> None:
    source = DEPLOY / "monitoring" / "alertmanager-receiver.yml.example"
    proc = subprocess.run(["amtool", "check-config", str(source)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    broken = _alertmanager_snippet()
    broken["receivers"][1]["webhook_configs"][0]["http_config"]["bearer_token"] = "inline"
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    proc = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode != 0, "amtool accepted two kinds of credentials at once"


def test_cloudnativepg_alternative_is_complete() -> None:
    (cluster,) = load_docs(DEPLOY / "alternatives" / "cloudnativepg-cluster.yaml")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1" and cluster["kind"] == "Cluster"
    assert cluster["spec"]["instances"] >= 3
    initdb = cluster["spec"]["bootstrap"]["initdb"]
    # Two roles (issue 12): the owner migrates, the app role `kubernaut` may only append to the audit trail.
    assert initdb["database"] == "kubernaut" and initdb["owner"] == "kubernaut_owner"
    assert [r["name"] for r in cluster["spec"]["managed"]["roles"]] == ["kubernaut"]
    assert "CREATE EXTENSION IF NOT EXISTS vector" in initdb["postInitApplicationSQL"]


def test_pod_disruption_budget_selects_the_gateway_workers_only() -> None:
    """The ingress group keeps one pod through a drain; the budget selects no other group (a budget over
    single-pod groups would block drains) and not the head."""
    (pdb,) = _objects("PodDisruptionBudget")
    labels = pdb["spec"]["selector"]["matchLabels"]
    groups = dict(pod_templates(rayservice("cpu")))
    assert labels.items() <= groups.pop("gateway")["metadata"]["labels"].items()
    for name, template in groups.items():
        assert not labels.items() <= template["metadata"]["labels"].items(), name
    gateway = next(g for g in rayservice("cpu")["spec"]["rayClusterConfig"]["workerGroupSpecs"]
                   if g["groupName"] == "gateway")
    assert pdb["spec"]["minAvailable"] == 1 < gateway["minReplicas"]
