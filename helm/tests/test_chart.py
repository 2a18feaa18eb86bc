#!/usr/bin/env python3
"""Checks the Sentio Helm chart with the real Helm engine, offline.

- `helm lint --strict` (Helm v4 through helm-python-sdk) with the default values and every
  value set in values/, for Kubernetes 1.30 and 1.33;
- renders each value set and validates every object against the Kubernetes 1.30 and 1.33
  OpenAPI schemas (kubernetes-validate, strict: unknown fields fail; the schemas ship inside
  the package) and the ServiceMonitor against a hand-written subset of its CRD schema;
- asserts what operators rely on: gRPC probes on the right port, a grace period longer than the
  drain, the locked-down securityContext, the headless Service, the config checksum, GPU, TLS,
  API-key and model-volume wiring, the built-in model chosen by licence and the licence the
  install notes state for it;
- checks the Twilio media-stream port and the NATS wiring (an existing NATS, or the chart's
  own) as `--set` lines turn them on, and the install notes' warning without NATS;
- feeds bad values and expects the schema (or the chart's own checks) to refuse them;
- keeps values.yaml, values.schema.json and README.md in step.

Exits non-zero on any failure; the last line is "N passed, M failed".
No network is used: socket connections fail inside this process.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import readme_values  # noqa: E402


def _no_network(*_args: Any, **_kwargs: Any) -> None:
    raise RuntimeError("network access attempted: the chart tests must run offline")


socket.socket.connect = _no_network  # type: ignore[method-assign]
socket.create_connection = _no_network  # type: ignore[assignment]

HERE = Path(__file__).resolve().parent
CHART = HERE.parent / "sentio"
VALUES_DIR = HERE / "values"
KUBE_VERSIONS = ["1.30", "1.33"]
RELEASE = "sentio"
NAMESPACE = "voice"
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): HERE / "schemas" / "servicemonitor-monitoring-v1.json",
}
HEALTH_SERVICE = "sentio.v1.EmotionRecognizer"

# ---------------------------------------------------------------------------------------------
# A tiny runner: each case passes or fails on its own, and the summary counts them.

RESULTS: list[tuple[str, bool, str]] = []


def case(name: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none stops the run
        detail = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, AssertionError):
            detail += "\n" + "".join(traceback.format_exception(exc)[-3:])
        RESULTS.append((name, False, detail))
        print(f"FAIL  {name}\n      {detail.strip()}".replace("\n", "\n      "), flush=True)
    else:
        RESULTS.append((name, True, ""))
        print(f"ok    {name}", flush=True)


# ---------------------------------------------------------------------------------------------
# Rendering helpers.


def load_value_sets() -> dict[str, dict[str, Any]]:
    sets: dict[str, dict[str, Any]] = {"default": {}}
    for path in sorted(VALUES_DIR.glob("*.yaml")):
        sets[path.stem] = yaml.safe_load(path.read_text()) or {}
    return sets


def render(values: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """Objects of a render (NOTES.txt apart) and the rendered NOTES.txt."""
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects: list[dict[str, Any]] = []
    notes = ""
    for template, text in sorted(manifests.items()):
        if template.endswith("NOTES.txt"):
            notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc is None:
                continue
            assert isinstance(doc, dict), f"{template}: a document is not a mapping"
            doc["__template__"] = template
            objects.append(doc)
    return objects, notes


def strip(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "__template__"}


def find(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = find(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


COMPONENT = "app.kubernetes.io/component"


def component(objects: list[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    """Objects of `kind` labelled with component `name` ("server", or "nats" for the chart's NATS)."""
    return [o for o in find(objects, kind) if o["metadata"].get("labels", {}).get(COMPONENT) == name]


def server_deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    found = component(objects, "Deployment", "server")
    assert len(found) == 1, f"expected one server Deployment, found {len(found)}"
    return found[0]


def deployment_parts(objects: list[dict[str, Any]]) -> tuple[dict, dict, dict]:
    dep = server_deployment(objects)
    pod = dep["spec"]["template"]["spec"]
    containers = [c for c in pod["containers"] if c["name"] == "sentio"]
    assert len(containers) == 1, "no container named sentio"
    return dep, pod, containers[0]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def parse_args(container: dict[str, Any]) -> dict[str, str]:
    args = container["args"]
    assert args[0] == "serve", f"first argument is {args[0]!r}, not 'serve'"
    parsed: dict[str, str] = {}
    for arg in args[1:]:
        assert arg.startswith("--") and "=" in arg, f"argument {arg!r} is not --flag=value"
        flag, value = arg.split("=", 1)
        assert flag not in parsed, f"flag {flag} passed twice"
        parsed[flag] = value
    return parsed


def expect_failure(values: dict[str, Any], pattern: str, errors: tuple[type, ...],
                   lint_too: bool = True) -> str:
    """Render (and, for schema errors, lint) must refuse `values` with a message matching
    `pattern`. Helm's lint only logs a template's `fail`, so the chart's own checks are seen by
    the render (as by `helm install`) alone."""
    try:
        render(values)
    except errors as exc:
        message = str(exc)
        assert re.search(pattern, message, re.S), f"error does not match {pattern!r}: {message}"
    else:
        raise AssertionError(f"render accepted bad values {values}")
    if not lint_too:
        return message
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE)
    joined = "\n".join(report["errors"])
    assert report["errors"], f"lint accepted bad values {values}"
    assert re.search(pattern, joined, re.S), f"lint errors do not match {pattern!r}: {joined}"
    return message


# ---------------------------------------------------------------------------------------------
# Checks that hold for every value set.


def check_kubernetes_schemas(objects: list[dict[str, Any]]) -> None:
    assert objects, "nothing rendered"
    seen = set()
    for obj in objects:
        clean = strip(obj)
        key = (clean["kind"], clean["metadata"]["name"])
        assert key not in seen, f"{key} rendered twice"
        seen.add(key)
        crd = CRD_SCHEMAS.get((clean["apiVersion"], clean["kind"]))
        if crd is not None:
            jsonschema.validate(clean, json.loads(crd.read_text()))
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(clean, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = "/".join(str(p) for p in exc.path)
                raise AssertionError(
                    f"{obj['__template__']}: {clean['kind']} {clean['metadata']['name']} "
                    f"is invalid for Kubernetes {version} at {path}: {exc.message}"
                ) from None


def check_common(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        ns = obj["metadata"].get("namespace")
        assert ns == NAMESPACE, f"{obj['kind']} {obj['metadata']['name']} in namespace {ns!r}"
        assert len(obj["metadata"]["name"]) <= 63, f"name too long: {obj['metadata']['name']}"

    dep, pod, server = deployment_parts(objects)
    args = parse_args(server)
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    grpc_port = ports["grpc"]
    assert args["--grpc-addr"] == f"0.0.0.0:{grpc_port}", args["--grpc-addr"]
    assert args["--metrics-addr"] == f"0.0.0.0:{ports['metrics']}", args["--metrics-addr"]

    # Probes: native gRPC against grpc.health.v1.Health, on the gRPC port, or on the plaintext
    # health-only port when the gRPC port speaks TLS (the kubelet's gRPC probes cannot).
    tls = "--tls-cert" in args
    probe_port = int(args["--health-addr"].rsplit(":", 1)[1]) if tls else grpc_port
    if tls:
        assert ports.get("health") == probe_port, "the health port is not a declared containerPort"
    else:
        assert "--health-addr" not in args, "--health-addr without TLS"
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = server.get(kind)
        assert probe, f"{kind} missing"
        handlers = {"grpc", "httpGet", "tcpSocket", "exec"} & probe.keys()
        assert handlers == {"grpc"}, f"{kind} uses {handlers}, not gRPC"
        assert probe["grpc"]["port"] == probe_port, (
            f"{kind} probes port {probe['grpc']['port']}, expected {probe_port}"
        )
    assert server["readinessProbe"]["grpc"]["service"] == HEALTH_SERVICE

    # Grace period: longer than the preStop sleep plus the server's drain.
    drain = int(args["--drain-timeout-s"])
    pre_stop = server.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > drain + pre_stop, f"grace {grace}s <= drain {drain}s + preStop {pre_stop}s"

    # Security: non-root, read-only root filesystem, nothing to escalate with; in every pod the
    # chart runs (the server's, and the NATS server's with nats.deploy).
    for any_dep in find(objects, "Deployment"):
        any_pod = any_dep["spec"]["template"]["spec"]
        psc = any_pod["securityContext"]
        assert psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0, psc
        assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", psc
        assert any_pod.get("automountServiceAccountToken") is False
        for container in any_pod["containers"] + any_pod.get("initContainers", []):
            sc = container.get("securityContext", {})
            name = container["name"]
            assert sc.get("readOnlyRootFilesystem") is True, f"{name}: root filesystem writable"
            assert sc.get("allowPrivilegeEscalation") is False, f"{name}: privilege escalation"
            assert sc.get("privileged", False) is False, f"{name}: privileged"
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: capabilities kept"
            assert not sc.get("capabilities", {}).get("add"), f"{name}: capabilities added"
            assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{name}: may run as root"

    # Every mount has a volume, and /tmp is writable despite the read-only root.
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in pod["containers"] + pod.get("initContainers", []):
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in volumes, f"{container['name']} mounts unknown {mount['name']}"
    tmp = [m for m in server["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert tmp and "emptyDir" in volumes[tmp[0]["name"]], "/tmp is not a writable emptyDir"

    # Config checksum on the pod template.
    checksum = dep["spec"]["template"]["metadata"]["annotations"].get("checksum/config", "")
    assert re.fullmatch(r"[0-9a-f]{64}", checksum), f"checksum/config is {checksum!r}"

    # Services: the main one and the headless one both select exactly these pods.
    selector = dep["spec"]["selector"]["matchLabels"]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items(), "the selector does not match the pod labels"
    # Every Service selects the pods of a rendered Deployment and targets named ports they
    # declare; the NATS server's pods are never behind the server's Services (nor its PDB).
    for svc in find(objects, "Service"):
        owners = [d for d in find(objects, "Deployment")
                  if svc["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(owners) == 1, f"Service {svc['metadata']['name']} selects {len(owners)} Deployments"
        declared = {p["name"] for c in owners[0]["spec"]["template"]["spec"]["containers"]
                    for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in declared, (
                f"Service {svc['metadata']['name']} targets undeclared port {port['targetPort']}")
    for pdb in find(objects, "PodDisruptionBudget"):
        assert pdb["spec"]["selector"]["matchLabels"] == selector, "the PDB selects other pods"

    services = {s["metadata"]["name"]: s for s in component(objects, "Service", "server")}
    headless = [s for s in services.values() if s["spec"].get("clusterIP") == "None"]
    assert len(headless) == 1, "no headless Service"
    main = [s for s in services.values() if s["spec"].get("clusterIP") != "None"]
    assert len(main) == 1, "no main Service"
    for svc in headless + main:
        assert svc["spec"]["selector"] == selector, f"{svc['metadata']['name']} selects other pods"
        grpc = [p for p in svc["spec"]["ports"] if p["name"] == "grpc"]
        assert grpc and grpc[0]["targetPort"] == "grpc" and grpc[0]["port"] == grpc_port
    assert not headless[0]["spec"].get("publishNotReadyAddresses"), "draining pods stay in DNS"

    # The ServiceAccount the pods use exists unless an external one is named.
    sa_name = pod["serviceAccountName"]
    accounts = [o["metadata"]["name"] for o in find(objects, "ServiceAccount")]
    assert not accounts or accounts == [sa_name], f"ServiceAccounts {accounts} vs {sa_name}"


# ---------------------------------------------------------------------------------------------
# Per value set.

NON_COMMERCIAL = "CC BY-NC-SA 4.0"
CREMA_D_LICENCE = "ODbL 1.0 / DbCL 1.0"


def notes_text(notes: str) -> str:
    """NOTES.txt with its line breaks folded, so phrases can be matched across lines."""
    return " ".join(notes.split())


def check_builtin_licence_notes(notes: str, builtin: str) -> None:
    """The notes name the built-in model and its weights' licence (and no other licence)."""
    text = notes_text(notes)
    assert f'built-in "{builtin}", --model=builtin:{builtin}' in text, notes
    if builtin == "default":
        assert f"{NON_COMMERCIAL}, for non-commercial research use only" in text, notes
        assert "For commercial use, set model.builtin=crema-d" in text, notes
        assert "ODbL" not in text, "the default model's notes state CREMA-D's licence"
    else:
        assert f"under {CREMA_D_LICENCE}, commercial use allowed with attribution to CREMA-D" in text, notes
        assert "6 classes" in text and "trained on CREMA-D only" in text, notes
        assert "NC-SA" not in text and "non-commercial" not in text, (
            "the crema-d notes state the default model's non-commercial licence")


def check_card_licence_notes(notes: str) -> None:
    """A model directory's licence is its card's: the notes point there and state no other."""
    text = notes_text(notes)
    assert "licence in its card's `license`" in text and "sentio-client info" in text, notes
    assert "NC-SA" not in text and "ODbL" not in text, "notes state a licence the card may not"


def check_default(objects: list[dict[str, Any]], notes: str) -> None:
    dep, pod, server = deployment_parts(objects)
    args = parse_args(server)
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert dep["spec"]["replicas"] == 2
    assert args["--device"] == "cpu"
    assert args["--model"] == "builtin:default", "the chart states the built-in model it runs"
    assert "--max-connection-age-s" not in args, "connection age is unset by default"
    assert args["--drain-timeout-s"] == "600" and pod["terminationGracePeriodSeconds"] == 620
    assert server["image"] == f"ghcr.io/sentio-ser/sentio:{chart['appVersion']}", server["image"]
    assert "nvidia.com/gpu" not in json.dumps(pod), "GPU resources on a CPU pod"
    assert server["resources"]["requests"]["cpu"], "no CPU request: the HPA could not work"
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["Deployment", "PodDisruptionBudget", "Service", "Service", "ServiceAccount"], kinds
    assert f"dns:///{RELEASE}-headless.{NAMESPACE}.svc.cluster.local:50051" in notes, notes
    check_builtin_licence_notes(notes, "default")
    check_no_media_streams(objects)
    check_no_nats(objects)
    # Two replicas and no NATS: the notes say WatchStream sees one replica's streams only.
    assert NO_NATS_WARNING in notes_text(notes), notes


# ---------------------------------------------------------------------------------------------
# Media streams (Twilio WebSocket) and NATS.

MEDIA_PORT = "media-ws"
NO_NATS_WARNING = "a WatchStream call only sees the streams of the replica it lands on"


def check_no_media_streams(objects: list[dict[str, Any]]) -> None:
    _, _, server = deployment_parts(objects)
    assert "SENTIO_MEDIA_WS_ADDR" not in env_of(server), "media streams on by default"
    assert MEDIA_PORT not in {p["name"] for p in server["ports"]}, "media-ws container port"
    for svc in find(objects, "Service"):
        assert MEDIA_PORT not in {p["name"] for p in svc["spec"]["ports"]}, svc["metadata"]["name"]


def check_no_nats(objects: list[dict[str, Any]]) -> None:
    _, _, server = deployment_parts(objects)
    nats = [o for o in objects if o["metadata"].get("labels", {}).get(COMPONENT) == "nats"
            or o["metadata"]["name"].endswith("-nats")]
    assert not nats, f"NATS objects rendered: {[(o['kind'], o['metadata']['name']) for o in nats]}"
    assert len(find(objects, "Deployment")) == 1, "a second Deployment"
    assert "SENTIO_NATS_URL" not in env_of(server), "SENTIO_NATS_URL without nats.url/nats.deploy"


def check_media_streams(objects: list[dict[str, Any]], port: int) -> None:
    """SENTIO_MEDIA_WS_ADDR, the named container port and the main Service's port agree."""
    _, _, server = deployment_parts(objects)
    assert env_of(server).get("SENTIO_MEDIA_WS_ADDR") == f"0.0.0.0:{port}", env_of(server)
    container_ports = {p["name"]: p for p in server["ports"]}
    assert container_ports[MEDIA_PORT] == {"name": MEDIA_PORT, "containerPort": port, "protocol": "TCP"}
    (main,) = [s for s in component(objects, "Service", "server") if s["spec"].get("clusterIP") != "None"]
    (svc_port,) = [p for p in main["spec"]["ports"] if p["name"] == MEDIA_PORT]
    assert (svc_port["port"], svc_port["targetPort"], svc_port["protocol"]) == (port, MEDIA_PORT, "TCP")
    (headless,) = [s for s in component(objects, "Service", "server") if s["spec"].get("clusterIP") == "None"]
    assert MEDIA_PORT not in {p["name"] for p in headless["spec"]["ports"]}, "headless exposes media-ws"


def check_chart_nats(objects: list[dict[str, Any]], resources: dict[str, Any] | None = None) -> None:
    """The chart's NATS: one non-root pod, a Service on 4222, and the server pointed at it."""
    _, _, server = deployment_parts(objects)
    name = f"{RELEASE}-nats"
    (dep,) = component(objects, "Deployment", "nats")
    (svc,) = component(objects, "Service", "nats")
    assert dep["metadata"]["name"] == svc["metadata"]["name"] == name
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"] == {"type": "Recreate"}
    pod = dep["spec"]["template"]["spec"]
    (nats,) = pod["containers"]
    assert nats["image"] == "nats:2.10-alpine", nats["image"]
    ports = {p["name"]: p["containerPort"] for p in nats["ports"]}
    assert ports["client"] == 4222, ports
    assert f"--port={ports['client']}" in nats["args"], nats["args"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert nats[probe]["httpGet"] == {"path": "/healthz", "port": "monitor"}, nats[probe]
    wanted = resources or {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
    assert nats["resources"] == wanted, nats["resources"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert nats["securityContext"]["readOnlyRootFilesystem"] is True
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(4222, "client")]
    server_labels = server_deployment(objects)["spec"]["template"]["metadata"]["labels"]
    assert not svc["spec"]["selector"].items() <= server_labels.items(), "the NATS Service selects the server"
    url = env_of(server).get("SENTIO_NATS_URL")
    assert url == f"nats://{name}.{NAMESPACE}.svc:4222", url


def check_media_streams_nats(objects: list[dict[str, Any]], notes: str) -> None:
    check_media_streams(objects, 8090)
    check_chart_nats(objects, {"requests": {"cpu": "200m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}})
    server_labels = server_deployment(objects)["spec"]["template"]["metadata"]["labels"]
    nats_labels = one(component(objects, "Deployment", "nats"), "Deployment")["spec"]["template"]["metadata"]["labels"]

    # The server's NetworkPolicy admits the media port from the Ingress namespace only, and
    # lets the server reach the chart's NATS and DNS; the NATS policy admits the server only.
    (netpol,) = component(objects, "NetworkPolicy", "server")
    rules = {r["ports"][0]["port"]: r for r in netpol["spec"]["ingress"]}
    assert rules[MEDIA_PORT]["from"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "ingress-nginx"}}}], rules[MEDIA_PORT]
    assert "from" not in rules["grpc"], "grpcFrom is empty: any source"
    egress = netpol["spec"]["egress"]
    to_nats = [r for r in egress if r.get("to") and r["ports"] == [{"port": 4222, "protocol": "TCP"}]]
    assert len(to_nats) == 1, egress
    assert to_nats[0]["to"][0]["podSelector"]["matchLabels"].items() <= nats_labels.items(), to_nats
    assert any({p["port"] for p in r["ports"]} == {53} and "to" not in r for r in egress), egress
    (nats_policy,) = component(objects, "NetworkPolicy", "nats")
    assert nats_policy["spec"]["podSelector"]["matchLabels"].items() <= nats_labels.items()
    (rule,) = nats_policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "client", "protocol": "TCP"}], rule
    assert rule["from"][0]["podSelector"]["matchLabels"].items() <= server_labels.items(), rule
    assert nats_policy["spec"]["egress"] == []

    text = notes_text(notes)
    assert f"ws://{RELEASE}.{NAMESPACE}.svc.cluster.local:8090/twilio" in text, notes
    assert "wss://" in text and "the chart creates none" in text, notes
    assert '<Parameter name="apiKey"' in text, "the notes do not say where Twilio puts the API key"
    assert f"through NATS at nats://{RELEASE}-nats.{NAMESPACE}.svc:4222" in text, notes
    assert NO_NATS_WARNING not in text, "the NATS warning with NATS configured"


def check_crema_d_model(objects: list[dict[str, Any]], notes: str) -> None:
    _, pod, server = deployment_parts(objects)
    args = parse_args(server)
    assert args["--model"] == "builtin:crema-d", args.get("--model")
    assert "SENTIO_MODEL" not in {e["name"] for e in server["env"]}, "--model passed twice"
    assert not pod.get("initContainers") and "model" not in {v["name"] for v in pod["volumes"]}
    check_builtin_licence_notes(notes, "crema-d")


def check_gpu(objects: list[dict[str, Any]], notes: str) -> None:
    _, pod, server = deployment_parts(objects)
    args = parse_args(server)
    assert args["--device"] == "cuda:0"
    assert args["--model"] == "/opt/sentio/models/default"
    assert args["--max-batch-size"] == "256" and args["--max-batch-delay-ms"] == "2.5", args
    assert args["--max-streams"] == "8000", args
    assert server["resources"]["limits"]["nvidia.com/gpu"] == 1, server["resources"]
    assert server["resources"]["limits"]["memory"] == "4Gi", "the GPU limit replaced the others"
    assert server["image"].endswith(":0.1.0-cuda"), server["image"]
    assert pod["nodeSelector"] == {
        "kubernetes.io/arch": "amd64",
        "cloud.google.com/gke-accelerator": "nvidia-l4",
    }, pod["nodeSelector"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["runtimeClassName"] == "nvidia"
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env.get("CUDA_CACHE_PATH", "").startswith("/tmp/"), "CUDA cache not on a writable path"
    assert "GPU: cuda:0" in notes
    assert "/opt/sentio/models/default in the image" in notes, notes
    check_card_licence_notes(notes)


def check_autoscaling_monitoring(objects: list[dict[str, Any]], notes: str) -> None:
    dep, pod, server = deployment_parts(objects)
    args = parse_args(server)
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    assert args["--max-connection-age-s"] == "300" and args["--log-format"] == "text"
    assert args["--drain-timeout-s"] == "120"
    assert pod["terminationGracePeriodSeconds"] == 120 + 10 + 15

    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": dep["metadata"]["name"]}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 30)
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    assert metrics["Resource"]["resource"]["target"]["averageUtilization"] == 65
    assert metrics["Pods"]["pods"]["metric"]["name"] == "sentio_active_streams"
    assert metrics["Pods"]["pods"]["target"] == {"type": "AverageValue", "averageValue": "800"}

    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == "10%"
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]

    # The ServiceMonitor scrapes the main Service only (the headless one would double every pod).
    sm = one(objects, "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    wanted = sm["spec"]["selector"]["matchLabels"]
    matching = [s for s in find(objects, "Service") if wanted.items() <= s["metadata"]["labels"].items()]
    assert len(matching) == 1 and matching[0]["spec"].get("clusterIP") != "None", matching
    assert any(p["name"] == "metrics" for p in matching[0]["spec"]["ports"])
    endpoint = sm["spec"]["endpoints"][0]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("metrics", "/metrics", "10s")
    assert sm["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]

    netpol = one(objects, "NetworkPolicy")
    assert netpol["spec"]["podSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert netpol["spec"]["policyTypes"] == ["Ingress", "Egress"] and netpol["spec"]["egress"] == []
    rules = {r["ports"][0]["port"]: r for r in netpol["spec"]["ingress"]}
    assert rules["grpc"]["from"][0]["podSelector"]["matchLabels"] == {"app": "media-server"}
    assert rules["metrics"]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"}
    assert "Autoscaling: 3..30 replicas" in notes


def check_tls_apikeys_pvc(objects: list[dict[str, Any]], notes: str) -> None:
    _, pod, server = deployment_parts(objects)
    args = parse_args(server)
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in server["volumeMounts"]}

    def secret_behind(path: str) -> tuple[str, str]:
        directory, filename = path.rsplit("/", 1)
        mount = mounts[directory]
        assert mount.get("readOnly") is True, f"{directory} is writable"
        secret = volumes[mount["name"]]["secret"]
        items = {i["path"]: i["key"] for i in secret.get("items", [])}
        return secret["secretName"], items.get(filename, filename)

    assert secret_behind(args["--tls-cert"]) == ("sentio-tls", "tls.crt")
    assert secret_behind(args["--tls-key"]) == ("sentio-tls", "tls.key")
    assert secret_behind(args["--tls-client-ca"]) == ("media-clients-ca", "ca.crt")
    assert args["--health-addr"] == "0.0.0.0:50052"
    assert server["readinessProbe"]["grpc"]["port"] == 50052

    secret_name, key = secret_behind(args["--api-keys-file"])
    secret = [s for s in find(objects, "Secret") if s["metadata"]["name"] == secret_name]
    assert len(secret) == 1, f"API-key Secret {secret_name} not rendered"
    keys = base64.b64decode(secret[0]["data"][key]).decode()
    assert keys == "k-3f9a1c2e7b\nk-8d04e6b51a\n", repr(keys)
    annotations = pod_annotations(objects)
    assert re.fullmatch(r"[0-9a-f]{64}", annotations.get("checksum/api-keys", "")), annotations

    model = mounts["/models"]
    assert args["--model"] == "/models"
    assert model["readOnly"] is True and model["subPath"] == "ser-2026-10", model
    assert volumes[model["name"]]["persistentVolumeClaim"] == {"claimName": "sentio-models", "readOnly": True}
    assert pod["terminationGracePeriodSeconds"] == 90
    assert "client certificates required" in notes and "API keys are required" in notes
    assert "pvc at /models" in notes, notes
    check_card_licence_notes(notes)


def check_initcontainer_model(objects: list[dict[str, Any]], notes: str) -> None:
    dep, pod, server = deployment_parts(objects)
    args = parse_args(server)
    assert dep["metadata"]["name"] == "ser"
    assert {s["metadata"]["name"] for s in find(objects, "Service")} == {"ser", "ser-headless"}
    assert not find(objects, "ServiceAccount") and pod["serviceAccountName"] == "voice-workloads"
    assert not find(objects, "Secret"), "an existing Secret was re-created"
    assert args["--api-keys-file"] == "/etc/sentio/api-keys/keys.txt"
    api_volume = [v for v in pod["volumes"] if v["name"] == "api-keys"][0]
    assert api_volume["secret"]["secretName"] == "sentio-api-keys"

    (init,) = pod["initContainers"]
    assert init["image"] == "registry.example.com/voice/ser-model:2026.10"
    assert init["command"] == ["cp", "-R", "/model/.", "/var/lib/sentio/model/"], init["command"]
    init_mount = init["volumeMounts"][0]
    server_mount = [m for m in server["volumeMounts"] if m["name"] == init_mount["name"]][0]
    assert init_mount["mountPath"] == server_mount["mountPath"] == args["--model"] == "/var/lib/sentio/model"
    assert server_mount["readOnly"] is True and not init_mount.get("readOnly")
    model_volume = [v for v in pod["volumes"] if v["name"] == init_mount["name"]][0]
    assert model_volume["emptyDir"] == {"sizeLimit": "512Mi"}

    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["labelSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert one(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == "50%"
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["RUST_LOG"] == "sentio=debug,info"
    assert "dns:///ser-headless.voice.svc.cluster.local:50051" in notes
    assert "initContainer at /var/lib/sentio/model" in notes, notes
    check_card_licence_notes(notes)


def pod_annotations(objects: list[dict[str, Any]]) -> dict[str, str]:
    return server_deployment(objects)["spec"]["template"]["metadata"]["annotations"]


SET_CHECKS: dict[str, Callable[[list[dict[str, Any]], str], None]] = {
    "default": check_default,
    "crema-d-model": check_crema_d_model,
    "gpu": check_gpu,
    "autoscaling-monitoring": check_autoscaling_monitoring,
    "tls-apikeys-pvc": check_tls_apikeys_pvc,
    "initcontainer-model": check_initcontainer_model,
    "media-streams-nats": check_media_streams_nats,
}

# ---------------------------------------------------------------------------------------------
# Values, schema and README in step.


def check_docs() -> None:
    """Every value has a schema entry, a `# --` description and a README row, and back."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(schema_node: dict[str, Any], values_node: dict[str, Any], prefix: str) -> None:
        props = schema_node.get("properties", {})
        for key in values_node:
            assert key in props, f"{prefix}{key} is in values.yaml but not in the schema"
        for key, sub in props.items():
            if key == "global":
                continue
            assert key in values_node, f"{prefix}{key} is in the schema but not in values.yaml"
            if readme_values.is_group(sub):
                walk(sub, values_node[key], f"{prefix}{key}.")

    assert schema.get("additionalProperties") is False, "the schema accepts unknown top-level keys"
    walk(schema, values, "")
    readme = (CHART / "README.md").read_text()
    generated = readme_values.table()
    assert readme_values.replace(readme, generated) == readme, (
        "README.md's values table is stale: run helm/tests/readme_values.py --write")
    for doc in ("../DEPLOYING.md",):
        assert (CHART / doc).exists(), f"{doc} missing"


def check_defaults_valid() -> None:
    with helm.Chart.load(CHART) as chart:
        assert chart.schema is not None, "the chart ships no values.schema.json"
        chart.validate_schema(chart.values)
        for name, values in load_value_sets().items():
            chart.validate_schema(chart.merge_values(values))


# ---------------------------------------------------------------------------------------------


def main() -> int:
    helm.disable_logging()
    print(f"helm {helm.helm_sdk_version()} (helm-python-sdk {helm.__version__}), "
          f"kubernetes-validate {kubernetes_validate.__version__}, Kubernetes {', '.join(KUBE_VERSIONS)}")
    value_sets = load_value_sets()
    missing = set(SET_CHECKS) - set(value_sets)
    assert not missing, f"value sets missing from {VALUES_DIR}: {missing}"

    for name, values in value_sets.items():
        for version in KUBE_VERSIONS:
            def lint(values=values, version=version) -> None:
                report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE,
                                   kube_version=f"v{version}.0")
                problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
                assert report["total_charts_linted"] == 1 and not problems, problems
            case(f"lint --strict [{name}] Kubernetes {version}", lint)

    for name, values in value_sets.items():
        rendered: dict[str, Any] = {}

        def do_render(values=values, rendered=rendered) -> None:
            rendered["objects"], rendered["notes"] = render(values)

        case(f"render [{name}]", do_render)
        if "objects" not in rendered:
            continue
        objects, notes = rendered["objects"], rendered["notes"]
        case(f"Kubernetes {' and '.join(KUBE_VERSIONS)} schemas (strict) [{name}]: "
             f"{len(objects)} objects", lambda objects=objects: check_kubernetes_schemas(objects))
        case(f"probes, grace period, securityContext, services [{name}]",
             lambda objects=objects: check_common(objects))
        if name in SET_CHECKS:
            case(f"value-set specifics [{name}]",
                 lambda objects=objects, notes=notes, fn=SET_CHECKS[name]: fn(objects, notes))

    def checksum_rolls() -> None:
        base = pod_annotations(render({})[0])["checksum/config"]
        changed = pod_annotations(render({"server": {"maxBatchSize": 32}})[0])["checksum/config"]
        unrelated = pod_annotations(render({"replicaCount": 5})[0])["checksum/config"]
        model = pod_annotations(render({"model": {"builtin": "crema-d"}})[0])["checksum/config"]
        assert base != changed, "a server flag change does not change checksum/config"
        assert base != model, "choosing another built-in model does not change checksum/config"
        assert base == unrelated, "replicaCount changes checksum/config (needless rollouts)"

    case("checksum/config changes with server flags only", checksum_rolls)

    # Media streams and NATS, turned on with the `--set` lines of README.md (parsed by Helm's
    # own --set parser). Each render also passes the Kubernetes schemas and the common checks.
    def with_set(expression: str, check: Callable[[list[dict[str, Any]], str], None]) -> Callable[[], None]:
        def run() -> None:
            objects, notes = render(helm.parse_set_string(expression) if expression else {})
            check_kubernetes_schemas(objects)
            check_common(objects)
            check(objects, notes)
        return run

    def default_has_neither(objects: list[dict[str, Any]], notes: str) -> None:
        check_no_media_streams(objects)
        check_no_nats(objects)
        assert not find(objects, "NetworkPolicy")

    def media_streams_on(objects: list[dict[str, Any]], notes: str) -> None:
        check_media_streams(objects, 8081)
        check_no_nats(objects)
        assert "wss://" in notes_text(notes) and "/twilio" in notes, notes

    def media_streams_port(objects: list[dict[str, Any]], notes: str) -> None:
        check_media_streams(objects, 9000)

    def media_streams_netpol(objects: list[dict[str, Any]], notes: str) -> None:
        check_media_streams(objects, 8081)
        (netpol,) = find(objects, "NetworkPolicy")
        ports = [r["ports"][0]["port"] for r in netpol["spec"]["ingress"]]
        assert ports == ["grpc", "metrics", MEDIA_PORT], ports
        assert "from" not in netpol["spec"]["ingress"][2], "mediaStreamsFrom is empty: any source"

    def netpol_without_media(objects: list[dict[str, Any]], notes: str) -> None:
        (netpol,) = find(objects, "NetworkPolicy")
        ports = [r["ports"][0]["port"] for r in netpol["spec"]["ingress"]]
        assert ports == ["grpc", "metrics"], ports
        assert netpol["spec"]["egress"] == [], "egress opened without NATS"

    def nats_deployed(objects: list[dict[str, Any]], notes: str) -> None:
        check_chart_nats(objects)
        check_no_media_streams(objects)
        assert not find(objects, "NetworkPolicy"), "a NATS NetworkPolicy without networkPolicy.enabled"
        text = notes_text(notes)
        assert f"through NATS at nats://{RELEASE}-nats.{NAMESPACE}.svc:4222" in text, notes
        assert NO_NATS_WARNING not in text, notes

    def nats_url(objects: list[dict[str, Any]], notes: str) -> None:
        _, _, server = deployment_parts(objects)
        assert env_of(server).get("SENTIO_NATS_URL") == "nats://nats.nats.svc:4222", env_of(server)
        nats = [o for o in objects if o["metadata"].get("labels", {}).get(COMPONENT) == "nats"]
        assert not nats and len(find(objects, "Deployment")) == 1, "NATS deployed with nats.url"
        kinds = sorted(o["kind"] for o in objects)
        assert kinds == ["Deployment", "PodDisruptionBudget", "Service", "Service", "ServiceAccount"], kinds
        text = notes_text(notes)
        assert "through NATS at nats://nats.nats.svc:4222" in text and NO_NATS_WARNING not in text, notes

    def nats_url_egress(objects: list[dict[str, Any]], notes: str) -> None:
        (netpol,) = find(objects, "NetworkPolicy")
        assert netpol["spec"]["egress"] == [], "an external NATS is the operator's extraEgress"

    def no_warning(objects: list[dict[str, Any]], notes: str) -> None:
        assert NO_NATS_WARNING not in notes_text(notes), notes

    def warning(objects: list[dict[str, Any]], notes: str) -> None:
        text = notes_text(notes)
        assert NO_NATS_WARNING in text and "--set nats.deploy=true" in text, notes

    def otlp_endpoint(objects: list[dict[str, Any]], notes: str) -> None:
        _, _, server = deployment_parts(objects)
        wanted = "http://otel-collector.observability.svc:4317"
        assert env_of(server).get("OTEL_EXPORTER_OTLP_ENDPOINT") == wanted, env_of(server)

    def no_otlp(objects: list[dict[str, Any]], notes: str) -> None:
        _, _, server = deployment_parts(objects)
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env_of(server), "tracing on by default"

    set_cases = [
        ("", no_otlp, "default: no OTLP export"),
        ("tracing.otlpEndpoint=http://otel-collector.observability.svc:4317", otlp_endpoint,
         "OTEL_EXPORTER_OTLP_ENDPOINT for the server"),
        ("", default_has_neither, "default: no NATS objects, no media port"),
        ("mediaStreams.enabled=true", media_streams_on,
         "env SENTIO_MEDIA_WS_ADDR, container port and Service port media-ws"),
        ("mediaStreams.enabled=true,mediaStreams.port=9000", media_streams_port, "media port 9000"),
        ("mediaStreams.enabled=true,networkPolicy.enabled=true", media_streams_netpol,
         "NetworkPolicy admits media-ws"),
        ("networkPolicy.enabled=true,networkPolicy.restrictEgress=true", netpol_without_media,
         "NetworkPolicy without media-ws or NATS egress"),
        ("nats.deploy=true", nats_deployed, "NATS Deployment and Service, SENTIO_NATS_URL at it"),
        ("nats.url=nats://nats.nats.svc:4222", nats_url, "SENTIO_NATS_URL, no NATS deployed"),
        ("nats.url=nats://nats.nats.svc:4222,networkPolicy.enabled=true,networkPolicy.restrictEgress=true",
         nats_url_egress, "external NATS leaves egress to extraEgress"),
        ("replicaCount=1", no_warning, "no NATS warning with one replica"),
        ("replicaCount=1,autoscaling.enabled=true", warning, "NATS warning with autoscaling"),
        ("replicaCount=3", warning, "NATS warning with 3 replicas"),
    ]
    for expression, check, label in set_cases:
        case(f"--set {expression or '(none)'}: {label}", with_set(expression, check))

    values_errors = (helm.HelmValuesError,)
    render_errors = (helm.HelmRenderError, helm.HelmValuesError)
    bad_values = [
        ("OTLP endpoint without a scheme", {"tracing": {"otlpEndpoint": "otel-collector:4317"}},
         r"/tracing/otlpEndpoint"),
        ("misspelled top-level key", {"replicaCont": 3}, r"additional propert.*replicaCont"),
        ("misspelled nested key", {"server": {"maxBatchSise": 8}}, r"additional propert.*maxBatchSise"),
        ("string replicaCount", {"replicaCount": "3"}, r"/replicaCount.*want integer"),
        ("unknown log format", {"server": {"logFormat": "xml"}}, r"/server/logFormat"),
        ("malformed GPU device", {"gpu": {"enabled": True, "device": "gpu0"}}, r"/gpu/device"),
        ("port out of range", {"ports": {"grpc": 70000}}, r"/ports/grpc"),
        ("negative drain", {"server": {"drainTimeoutS": -1}}, r"/server/drainTimeoutS"),
        ("unknown model source", {"model": {"source": "s3"}}, r"/model/source"),
        ("unknown built-in model", {"model": {"builtin": "transformer"}}, r"/model/builtin"),
        ("built-in model given with its prefix", {"model": {"builtin": "builtin:crema-d"}},
         r"/model/builtin"),
        ("media port out of range", {"mediaStreams": {"enabled": True, "port": 0}}, r"/mediaStreams/port"),
        ("NATS URL without a scheme", {"nats": {"url": "nats.nats.svc:4222"}}, r"/nats/url"),
        ("several NATS URLs", {"nats": {"url": "nats://a:4222,nats://b:4222"}}, r"/nats/url"),
        ("string nats.deploy", {"nats": {"deploy": "yes"}}, r"/nats/deploy"),
        ("misspelled nats key", {"nats": {"urls": "nats://a:4222"}}, r"additional propert.*urls"),
    ]
    for label, values, pattern in bad_values:
        case(f"schema rejects {label}",
             lambda values=values, pattern=pattern: expect_failure(values, pattern, values_errors))

    bad_combinations = [
        ("grace period not above the drain", {"terminationGracePeriodSeconds": 35},
         r"terminationGracePeriodSeconds \(35\) must exceed"),
        ("TLS without a Secret", {"tls": {"enabled": True}}, r"tls.secretName"),
        ("API keys without keys", {"apiKeys": {"enabled": True}}, r"apiKeys.existingSecret"),
        ("PVC model without a claim", {"model": {"source": "pvc"}}, r"model.pvc.claimName"),
        ("a built-in model with model.path",
         {"model": {"builtin": "crema-d", "path": "/opt/sentio/models/default"}},
         r"model.builtin=crema-d applies only to model.source=image with model.path empty"),
        ("a built-in model with a PVC model",
         {"model": {"builtin": "crema-d", "source": "pvc", "pvc": {"claimName": "models"}}},
         r"model.builtin=crema-d applies only"),
        ("clashing ports", {"ports": {"grpc": 9464}}, r"must all differ"),
        ("a media port clashing with gRPC", {"mediaStreams": {"enabled": True, "port": 50051}},
         r"mediaStreams.port must all differ"),
        ("both nats.url and nats.deploy", {"nats": {"url": "nats://nats.nats.svc:4222", "deploy": True}},
         r"nats.url \(nats://nats.nats.svc:4222\) and nats.deploy are both set"),
        ("autoscaling without a metric",
         {"autoscaling": {"enabled": True, "targetCPUUtilizationPercentage": None}}, r"needs a metric"),
    ]
    for label, values, pattern in bad_combinations:
        case(f"chart refuses {label}",
             lambda values=values, pattern=pattern: expect_failure(values, pattern, render_errors,
                                                                   lint_too=False))

    case("default values and every value set pass the schema", check_defaults_valid)
    case("values.yaml, values.schema.json and README.md list the same values", check_docs)

    passed = sum(1 for _, ok, _ in RESULTS if ok)
    failed = len(RESULTS) - passed
    print()
    for name, ok, detail in RESULTS:
        if not ok:
            print(f"failed: {name}")
    print(f"chart: {passed} passed, {failed} failed")
    return 1 if failed or not RESULTS else 0


if __name__ == "__main__":
    sys.exit(main())
