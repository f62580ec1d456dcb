"""The Kubernetes manifests, rendered by `kubectl kustomize` and checked by the real tools.

No cluster runs here, so this is as far as they can be proven: they build, they validate against
the Kubernetes schemas (kubernetes-validate --strict) and the Prometheus Operator's (pydantic models
generated from its CRDs), checkov finds nothing that k8s/.checkov.yaml does not waive with a reason,
and the wiring between the objects (selectors, ports, probes, config, secrets) is what it should be.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from deploy_tools import REPO, load_yaml_docs, run, tool

from reward_service.scoring import RewardConfig

pytestmark = pytest.mark.k8s

K8S = REPO / "k8s"
TARGETS = {"dev": K8S / "overlays" / "dev", "prod": K8S / "overlays" / "prod", "trainer": K8S / "trainer"}
SERVER = "reward-service"
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
# The oldest Kubernetes still in upstream support when this was written, and the newest schema known.
K8S_VERSIONS = ("1.32.0", "1.37.0")


def kustomize(path: Path) -> str:
    return run(tool("kubectl"), "kustomize", str(path)).stdout


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each overlay rendered once to a file."""
    out = tmp_path_factory.mktemp("k8s")
    files = {}
    for name, path in TARGETS.items():
        files[name] = out / f"{name}.yaml"
        files[name].write_text(kustomize(path))
    return files


def docs(rendered: dict[str, Path], name: str) -> list[dict[str, Any]]:
    return load_yaml_docs(rendered[name].read_text())


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_every_overlay_builds_with_the_objects_it_needs(rendered: dict[str, Path]) -> None:
    for overlay in ("dev", "prod"):
        kinds = {(o["kind"], o["metadata"]["name"]) for o in docs(rendered, overlay)}
        for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
                     "ServiceMonitor", "PrometheusRule", "ServiceAccount"):
            assert (kind, SERVER) in kinds, (overlay, kind)
        assert any(k == "ConfigMap" and n.startswith("reward-config-") for k, n in kinds), overlay
    assert ("Deployment", "redis") in {(o["kind"], o["metadata"]["name"]) for o in docs(rendered, "dev")}
    assert not any(o["metadata"]["name"] == "redis" for o in docs(rendered, "prod")), "prod uses an external Redis"
    assert {o["kind"] for o in docs(rendered, "trainer")} == {"Job", "ConfigMap", "NetworkPolicy"}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_validate_strict(rendered: dict[str, Path], version: str) -> None:
    validator = tool("kubernetes-validate")
    for name, path in rendered.items():
        proc = run(validator, "--strict", "--kubernetes-version", version, str(path), check=False)
        assert proc.returncode == 0, f"{name}:\n{proc.stdout}{proc.stderr}"
        lines = proc.stdout.splitlines()
        assert sum(line.startswith("INFO") for line in lines) >= 3, proc.stdout
        # Custom resources have no schema in kubernetes-validate: the next test checks them.
        warned = {m.group(1) for line in lines if (m := re.match(r"WARN .* for kind (\w+) ", line))}
        assert warned <= OPERATOR_KINDS, proc.stdout
        assert not [line for line in lines if line.startswith(("ERROR", "FATAL"))]


def test_operator_resources_match_the_operators_crd_schemas(rendered: dict[str, Path]) -> None:
    """ServiceMonitor and PrometheusRule against pydantic models generated from the Prometheus
    Operator's CRDs (cloudcoil-models-prometheus-operator 0.80.1): types, required fields and the
    CRDs' patterns (durations, for instance); a field the schema lacks is dropped on the round trip."""
    models = pytest.importorskip("cloudcoil.models.prometheus_operator.v1", reason="cloudcoil models: dev extra")
    checked = 0
    for overlay in ("dev", "prod"):
        for obj in docs(rendered, overlay):
            if obj["kind"] in OPERATOR_KINDS:
                model = getattr(models, obj["kind"]).model_validate(obj)
                assert model.model_dump(by_alias=True, exclude_unset=True, mode="json") == obj, obj["kind"]
                checked += 1
    assert checked == 4


def test_checkov_finds_nothing_that_is_not_waived_with_a_reason(rendered: dict[str, Path], tmp_path: Path) -> None:
    config = K8S / ".checkov.yaml"
    reason: list[str] = []  # the comment block above the current line
    for line in config.read_text().splitlines():
        if line.lstrip().startswith("#"):
            reason.append(line.lstrip("# "))
        elif match := re.match(r"\s+- (CKV\w+)", line):
            text = " ".join(reason)
            assert text.startswith(match[1]) and len(text) > 60, f"waiver {match[1]} has no reason above it"
            reason = []
        else:
            reason = []
    scan = tmp_path / "rendered"
    scan.mkdir()
    for path in rendered.values():
        shutil.copy(path, scan / path.name)
    proc = run(tool("checkov", "bash deploy/install-tools.sh (a venv of its own: .tools/checkov)"),
               "--config-file", str(config), "--directory", str(scan), "--output", "json", check=False, timeout=300)
    report = json.loads(proc.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0 and failed == [], failed
    assert summary["passed"] > 100 and proc.returncode == 0


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(o["metadata"]["name"], o["spec"]["template"]["spec"]) for o in objects if o["kind"] in ("Deployment", "Job")]


def test_every_container_has_probes_resources_and_the_restricted_security_context(rendered: dict[str, Path]) -> None:
    for overlay in rendered:
        for owner, spec in pod_specs(docs(rendered, overlay)):
            pod_security = spec["securityContext"]
            assert pod_security["runAsNonRoot"] is True and pod_security["seccompProfile"]["type"] == "RuntimeDefault"
            assert spec["automountServiceAccountToken"] is False
            for container in spec["containers"]:
                where = f"{overlay}/{owner}/{container['name']}"
                if owner != "grpo-train":  # a Job has nothing to probe: it runs to completion
                    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                        assert probe in container, f"{where}: no {probe}"
                resources = container["resources"]
                for kind in ("cpu", "memory"):
                    assert kind in resources["requests"] and kind in resources["limits"], f"{where}: {kind}"
                security = container["securityContext"]
                assert security["allowPrivilegeEscalation"] is False, where
                assert security["readOnlyRootFilesystem"] is True, where
                assert security["capabilities"]["drop"] == ["ALL"], where
                assert security["runAsNonRoot"] is True and security["runAsUser"] >= 10000, where
                assert security["seccompProfile"]["type"] == "RuntimeDefault", where


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_service_pdb_hpa_monitor_and_policy_select_the_deployments_pods(rendered: dict[str, Path], overlay: str) -> None:
    objects = docs(rendered, overlay)
    deployment = one(objects, "Deployment", SERVER)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert matches(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}

    service = one(objects, "Service", SERVER)
    assert matches(service["spec"]["selector"], pod_labels)
    assert [(p["name"], p["targetPort"]) for p in service["spec"]["ports"]] == [("http", "http")]
    assert "http" in port_names

    assert matches(one(objects, "PodDisruptionBudget", SERVER)["spec"]["selector"]["matchLabels"], pod_labels)
    target = one(objects, "HorizontalPodAutoscaler", SERVER)["spec"]
    assert target["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": SERVER}
    assert target["metrics"][0]["resource"]["name"] == "cpu"
    assert target["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300

    monitor = one(objects, "ServiceMonitor", SERVER)["spec"]
    assert matches(monitor["selector"]["matchLabels"], service["metadata"]["labels"])
    assert [e["port"] for e in monitor["endpoints"]] == ["http"] and monitor["endpoints"][0]["path"] == "/metrics"

    policy = one(objects, "NetworkPolicy", SERVER)["spec"]
    assert matches(policy["podSelector"]["matchLabels"], pod_labels)
    sources = [peer for rule in policy["ingress"] for peer in rule["from"]]
    assert [p["podSelector"]["matchLabels"] for p in sources] == [
        {"reward-service.video-str.io/client": "true"}, {"app.kubernetes.io/name": "prometheus"}]
    assert all(port["port"] == "http" for rule in policy["ingress"] for port in rule["ports"])


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_deployment_lifecycle_workers_and_config(rendered: dict[str, Path], overlay: str) -> None:
    objects = docs(rendered, overlay)
    pod = one(objects, "Deployment", SERVER)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["REWARD_SERVICE_WORKERS"]["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    request_deadline_s = 30  # Settings.request_deadline_s: the longest a request in flight may take
    assert pod["terminationGracePeriodSeconds"] > pre_stop + request_deadline_s
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]] and "emptyDir" in volumes[mounts["/var/cache/numba"]]
    config_map = volumes[mounts["/etc/reward-service"]]["configMap"]["name"]
    assert config_map in {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
    assert env["REWARD_SERVICE_REWARD_CONFIG_FILE"]["value"] == "/etc/reward-service/reward-config.json"
    # Keys (and prod's Redis URL) come from Secrets that are referenced, never rendered with values.
    assert env["REWARD_SERVICE_API_KEYS"]["valueFrom"]["secretKeyRef"]["name"] == "reward-service-api-keys"
    assert not [o for o in objects if o["kind"] == "Secret"]
    redis = env["REWARD_SERVICE_REDIS_URL"]
    if overlay == "prod":
        assert redis["valueFrom"]["secretKeyRef"] == {"name": "reward-service-redis", "key": "url"}
    else:
        assert redis["value"] == "redis://redis:6379/0"
        assert one(objects, "Service", "redis")["spec"]["ports"][0]["port"] == 6379


def test_reward_config_is_valid_and_a_change_rolls_the_pods(tmp_path: Path) -> None:
    RewardConfig.from_file(K8S / "base" / "reward-config.json")  # the service would refuse to start otherwise

    def config_map_name(root: Path) -> str:
        objects = load_yaml_docs(kustomize(root / "overlays" / "prod"))
        pod = one(objects, "Deployment", SERVER)["spec"]["template"]["spec"]
        names: list[str] = [v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v]
        return names[0]

    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    before = config_map_name(copy)
    (copy / "base" / "reward-config.json").write_text('{"weights": {"graph_node": 1.0}}\n')
    assert config_map_name(copy) != before, "a config change must change the pod template"


def test_trainer_job_runs_on_gpus_and_reaches_the_service(rendered: dict[str, Path]) -> None:
    objects = docs(rendered, "trainer")
    pod = one(objects, "Job", "grpo-train")["spec"]["template"]
    spec = pod["spec"]
    container = spec["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == container["resources"]["requests"]["nvidia.com/gpu"]
    assert spec["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    assert container["args"][-2:] == ["--engine", "vllm"]
    env = {e["name"]: e for e in container["env"]}
    prod = docs(rendered, "prod")
    service = one(prod, "Service", SERVER)
    namespace, port = service["metadata"]["namespace"], service["spec"]["ports"][0]["port"]
    assert env["REWARD_SERVICE_URL"]["value"] == f"http://{SERVER}.{namespace}.svc.cluster.local:{port}"
    assert "secretKeyRef" in env["REWARD_SERVICE_API_KEY"]["valueFrom"]
    # The service's NetworkPolicy admits the trainer's pods by their client label.
    policy = one(prod, "NetworkPolicy", SERVER)["spec"]
    client = policy["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert matches(client, pod["metadata"]["labels"])
