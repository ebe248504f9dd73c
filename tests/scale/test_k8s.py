"""The Helm chart and the KubeRay RayService, validated against the schemas they will meet.

The chart is rendered by Helm's own engine (helm-python-sdk binds Helm's Go SDK; no helm
binary needed). Kubernetes kinds are checked with kubernetes-validate (strict: unknown fields
fail) against Kubernetes 1.37's schemas. A RayService is checked against a trimmed schema of
KubeRay's CRD (deploy/kuberay/rayservice.schema.json), its pod templates against Kubernetes'
PodTemplateSpec, its serveConfigV2 against Ray Serve's own schema, and its builder args by
voxserve's own parser. The container args of the Deployment must parse with ``voxserve serve``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from voxserve.cli import build_parser
from voxserve.scale.options import DEPLOYMENT_NAME, deployment_options, parse_builder_args
from voxserve.server.config import ServerConfig

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "voxserve"
RAYSERVICE = ROOT / "deploy" / "kuberay" / "rayservice.yaml"
RAYSERVICE_SCHEMA = json.loads((ROOT / "deploy" / "kuberay" / "rayservice.schema.json").read_text())
K8S_VERSION = "1.37.0"
REDIS = "redis://redis.tts.svc:6379/0"


@pytest.fixture(scope="module")
def chart():
    with helm.Chart.load(str(CHART)) as c:
        yield c


def render(chart, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The chart's manifests for ``values`` as parsed documents (empty templates dropped)."""
    out = []
    for text in chart.render(values or {}, name="vx", namespace="tts").values():
        out += [d for d in yaml.safe_load_all(text) if d]
    return out


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds = {d["kind"]: d for d in docs}
    assert len(kinds) == len(docs), "one object per kind expected"
    return kinds


def validate_k8s(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def validate_rayservice(doc: dict[str, Any], env: dict[str, str]) -> list[ServerConfig]:
    """Every check a RayService gets; returns the server configs its applications build."""
    jsonschema.Draft202012Validator(RAYSERVICE_SCHEMA).validate(doc)
    cluster = doc["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster.get("workerGroupSpecs", [])]
    for group in groups:
        validate_k8s(
            {
                "apiVersion": "v1",
                "kind": "PodTemplate",
                "metadata": {"name": "t"},
                "template": group["template"],
            }
        )
    from ray.serve.schema import ServeDeploySchema

    serve_config = ServeDeploySchema.model_validate(yaml.safe_load(doc["spec"]["serveConfigV2"]))
    configs = []
    for app in serve_config.applications:
        assert app.import_path == "voxserve.scale.ray_app:app"
        assert all(d.name == DEPLOYMENT_NAME for d in app.deployments)
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            config, options = parse_builder_args(app.args)
        deployment_options(config, options)  # device and GPU settings hold together
        gpus = options.gpus_for(config)
        if gpus:
            limits = [
                g["template"]["spec"]["containers"][0].get("resources", {}).get("limits", {})
                for g in cluster.get("workerGroupSpecs", [])
            ]
            assert any(float(lim.get("nvidia.com/gpu", 0)) >= gpus for lim in limits), "no worker has a GPU"
        configs.append(config)
    return configs


# --- the Deployment route ---------------------------------------------------------------------------


def test_default_chart_is_valid_kubernetes(chart):
    docs = render(chart)
    assert set(by_kind(docs)) == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    for doc in docs:
        validate_k8s(doc)


def test_deployment_gpu_probes_drain_and_args(chart):
    values = {"redis": {"url": REDIS}, "server": {"preload": ["baker"], "drainTimeoutSeconds": 40}}
    kinds = by_kind(render(chart, values))
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert pod["terminationGracePeriodSeconds"] > 40  # outlasts the server's own drain
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VOXSERVE_REDIS_URL"] == REDIS and env["VOXSERVE_VOICE_STORE"] == "$(VOXSERVE_REDIS_URL)"
    # Kubernetes expands $(VAR) in args; then they must be flags `voxserve serve` accepts.
    args = [a.replace("$(VOXSERVE_REDIS_URL)", REDIS) for a in container["args"]]
    parsed = build_parser().parse_args(args)
    config = ServerConfig.from_args(parsed)
    assert (config.cache, config.device, config.backend, config.ui) == (REDIS, "cuda", "cuda", False)
    assert config.drain_timeout_s == 40 and config.host == "0.0.0.0"
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    assert hpa["metrics"][0]["pods"]["metric"]["name"] == "voxserve_http_speech_in_flight"


def test_cpu_autoscaling_and_fixed_replicas(chart):
    cpu = by_kind(render(chart, {"autoscaling": {"metric": "cpu"}}))
    assert cpu["HorizontalPodAutoscaler"]["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    fixed = by_kind(render(chart, {"autoscaling": {"enabled": False}, "replicaCount": 3}))
    assert "HorizontalPodAutoscaler" not in fixed and fixed["Deployment"]["spec"]["replicas"] == 3
    for doc in [*cpu.values(), *fixed.values()]:
        validate_k8s(doc)


# --- the KubeRay route --------------------------------------------------------------------------


def test_chart_rayservice_mode(chart):
    docs = render(chart, {"mode": "rayservice", "redis": {"existingSecret": "redis-url"}, "replicaCount": 2})
    (doc,) = docs
    assert doc["kind"] == "RayService"
    (config,) = validate_rayservice(doc, {"VOXSERVE_REDIS_URL": REDIS})
    assert config.cache == REDIS and config.device == "cuda"
    args = yaml.safe_load(doc["spec"]["serveConfigV2"])["applications"][0]["args"]
    assert (args["replicas"], args["max_replicas"], args["num_gpus"]) == (2, 8, 1)


def test_standalone_rayservice_manifest():
    (doc,) = [d for d in yaml.safe_load_all(RAYSERVICE.read_text()) if d]
    (config,) = validate_rayservice(doc, {"VOXSERVE_REDIS_URL": REDIS})
    assert config.cache == REDIS


def test_rayservice_redis_url_must_be_set_where_the_app_is_built():
    (doc,) = [d for d in yaml.safe_load_all(RAYSERVICE.read_text()) if d]
    with pytest.raises(Exception, match="VOXSERVE_REDIS_URL"):
        validate_rayservice(doc, {})


# --- broken manifests fail ------------------------------------------------------------------------


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``doc`` with the dotted ``path`` set (``...`` deletes; digits index lists)."""
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node: Any = doc
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    key: Any = int(last) if last.isdigit() else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("spec.template.spec.containers.0.resources.limits.nvidia.com/gpu", {"count": 1}),
        ("spec.template.spec.containers.0.livenessProbe.httpGet.port", ...),
        ("spec.template.spec.containers.0.readinessProbes", {"httpGet": {"path": "/ready", "port": 8000}}),
        ("spec.selector", ...),
        ("spec.replicas", "3"),
    ],
)
def test_broken_deployment_fails(chart, path, value):
    deployment = by_kind(render(chart))["Deployment"]
    validate_k8s(deployment)
    if path.endswith("nvidia.com/gpu"):  # the key holds a dot: set it directly
        broken = copy.deepcopy(deployment)
        broken["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = value
    else:
        broken = _set(deployment, path, value)
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_k8s(broken)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("spec.rayClusterConfig.workerGroupSpecs.0.maxReplicas", ...),
        ("spec.rayClusterConfig.headGroupSpecs", {}),
        ("spec.rayClusterConfig.workerGroupSpecs.0.minReplicas", "1"),
        ("spec.rayClusterConfig.autoscalerOptions.upscalingMode", "Fast"),
        ("spec.rayClusterConfig.headGroupSpec.template.spec.containers.0.ports.3.containerPort", "serve"),
        ("spec.rayClusterConfig.workerGroupSpecs.0.template.spec.containers.0.resources.limits", {"gpu": []}),
        (
            "spec.serveConfigV2",
            "applications:\n  - name: voxserve\n    import_path: voxserve.scale.ray_app:app\n"
            "    args: {voice: baker, replicaz: 2}\n",
        ),
        ("spec.serveConfigV2", "applications:\n  - name: voxserve\n    route_prefix: /\n"),
        (
            "spec.serveConfigV2",
            "applications:\n  - name: voxserve\n    import_path: voxserve.scale.ray_app:app\n"
            "    args: {device: 'cuda:1'}\n",
        ),
        ("apiVersion", "ray.io/v1alpha2"),
    ],
)
def test_broken_rayservice_fails(path, value):
    (doc,) = [d for d in yaml.safe_load_all(RAYSERVICE.read_text()) if d]
    env = {"VOXSERVE_REDIS_URL": REDIS}
    validate_rayservice(doc, env)
    with pytest.raises(Exception) as failure:
        validate_rayservice(_set(doc, path, value), env)
    assert not isinstance(failure.value, (KeyError, IndexError, TypeError)), failure.value  # a real verdict


@pytest.mark.parametrize(
    "values",
    [
        {"mode": "statefulset"},
        {"autoscaling": {"metric": "gpu"}},
        {"server": {"device": "tpu"}},
        {"redis": {"url": "http://not-redis"}},
        {"replicaCount": 0},
    ],
)
def test_bad_values_are_refused_by_the_chart(chart, values):
    with pytest.raises(helm.HelmError):
        render(chart, values)
