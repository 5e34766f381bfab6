"""kubeedge/docker without an engine: which recipe is chosen and why, and the upstream
containers (cloudcore, edgecore with containerd, the DNAT steering) pinned against what issue
12 and KubeEdge's own keink / local-up tooling state. Plus the opt-in upstream run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.build import versions
from bench.distros import driver_class
from bench.distros.docker import crictl, kubeedge, kubeedge_recipe, kubeedge_spec, labels
from bench.distros.docker.spec import PRIVILEGED
from bench.distros.local.controlplane import KUBELET_FAST
from bench.errors import EnvironmentUnavailableError
from bench.model import ClusterSpec

SPEC = ClusterSpec(name="kedev", edge_nodes=2)
ROOT = Path(__file__).resolve().parents[1]


def cloud():  # type: ignore[no-untyped-def]
    return kubeedge_spec.cloudcore_spec(
        SPEC, "run1", "edgebench-kedev", "10.253.7.3", "/state/cloudcore", "/state/pki"
    )


def edge():  # type: ignore[no-untyped-def]
    return kubeedge_spec.edge_spec(
        SPEC, "run1", "edge-1", "edgebench-kedev", "10.253.7.11", "/state/nodes/edge-1"
    )


# --- which recipe runs ---------------------------------------------------------------------


@pytest.fixture
def fresh_choice():  # type: ignore[no-untyped-def]
    kubeedge_recipe.choose_driver.cache_clear()
    yield
    kubeedge_recipe.choose_driver.cache_clear()


def test_without_the_cloudcore_image_the_stand_in_runs_and_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fresh_choice: None
) -> None:
    why = f"image {kubeedge_spec.CLOUDCORE_IMAGE} is not present; {kubeedge_spec.pull_hint()}"
    monkeypatch.setattr(kubeedge_recipe, "upstream_missing", lambda: why)
    cls = driver_class("kubeedge", "docker")
    assert cls is kubeedge.KubeEdgeDocker
    err = capsys.readouterr().err
    assert "running the stand-in" in err and "hollowedge" in err
    assert f"docker pull {kubeedge_spec.CLOUDCORE_IMAGE}" in err
    settings = cls.provider_settings({})
    assert isinstance(settings, kubeedge_recipe.KubeEdgeDockerSettings)
    assert settings.recipe == "hollowedge" and "stand-in for edgecore" in settings.edge_agent
    assert settings.why == why


def test_with_the_cloudcore_image_upstream_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fresh_choice: None
) -> None:
    from bench.distros.docker.kubeedge_upstream import KubeEdgeUpstreamDocker

    monkeypatch.setattr(kubeedge_recipe, "upstream_missing", lambda: None)
    cls = driver_class("kubeedge", "docker")
    assert cls is KubeEdgeUpstreamDocker
    assert (cls.name, cls.provider) == ("kubeedge", "docker")
    assert "running upstream KubeEdge" in capsys.readouterr().err
    settings = cls.provider_settings({})
    assert isinstance(settings, kubeedge_recipe.KubeEdgeDockerSettings)
    assert settings.recipe == "upstream" and settings.edge_agent.startswith("edgecore v1.20.0")
    assert "hollowedge" not in cls.required_binaries()


def test_no_engine_means_the_stand_in_with_the_engine_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    why = kubeedge_recipe.upstream_missing()
    assert why is not None and "no Docker engine answers" in why


# --- the upstream images -------------------------------------------------------------------


def test_images_are_the_pinned_release_and_a_v1_30_kind_node() -> None:
    assert versions.KUBEEDGE == "v1.20.0"
    assert kubeedge_spec.CLOUDCORE_IMAGE == "kubeedge/cloudcore:v1.20.0"
    assert kubeedge_spec.INSTALLATION_IMAGE == "kubeedge/installation-package:v1.20.0"
    # edged is a v1.30 kubelet (KubeEdge v1.20 builds against Kubernetes v1.30.7)
    assert f"kindest/node:{versions.KIND_NODE}" == kubeedge_spec.NODE_BASE_IMAGE
    assert versions.KIND_NODE.startswith("v1.30.")
    assert kubeedge_spec.pull_hint() == (
        "docker pull kubeedge/cloudcore:v1.20.0; "
        "docker pull kubeedge/installation-package:v1.20.0; "
        f"docker pull kindest/node:{versions.KIND_NODE}"
    )


def test_edge_image_is_a_kind_node_with_the_releases_edgecore_and_no_kubelet() -> None:
    dockerfile = kubeedge_spec.edge_dockerfile()
    assert dockerfile.startswith(f"FROM {kubeedge_spec.NODE_BASE_IMAGE}\n")
    assert (
        f"COPY --from={kubeedge_spec.INSTALLATION_IMAGE} /usr/local/bin/edgecore "
        "/usr/local/bin/edgecore"
    ) in dockerfile
    assert "ln -sf /dev/null /etc/systemd/system/kubelet.service" in dockerfile  # masked
    unit = kubeedge_spec.EDGECORE_UNIT
    assert "Requires=containerd.service" in unit
    assert f"ExecStart=/usr/local/bin/edgecore --config={kubeedge_spec.EDGECORE_CONFIG}" in unit
    assert "CHECK_EDGECORE_ENVIRONMENT=false" in unit  # as hack/local-up-kubeedge.sh runs it
    # edgecore starts only after its DNAT rules (the marker is on the tmpfs /run)
    assert f"until [ -e {kubeedge_spec.STEERED_MARKER} ]" in unit
    assert kubeedge_spec.STEERED_MARKER.startswith("/run/")


# --- cloudcore -----------------------------------------------------------------------------


def test_cloudcore_container_runs_the_release_image_with_its_config() -> None:
    c = cloud()
    assert c.image == "kubeedge/cloudcore:v1.20.0"
    assert c.entrypoint == ("cloudcore",)
    assert c.command == ("--config=/etc/kubeedge/config/cloudcore.yaml", "--v=2")
    assert c.binds == {
        "/state/cloudcore": ("/etc/kubeedge/config", "ro"),
        "/state/pki": ("/state/pki", "ro"),  # the kubeconfig names its client certificate
    }
    assert c.environment == {"KUBECONFIG": "/etc/kubeedge/config/kubeconfig"}
    assert c.ip == "10.253.7.3" and c.network == "edgebench-kedev"
    assert c.name == "edgebench-kedev-cloudcore"
    assert c.labels[labels.CLUSTER] == "kedev" and c.labels[labels.MANAGED] == "true"


def test_cloudcore_config_ports_certificates_and_modules() -> None:
    config = kubeedge_spec.cloudcore_config("10.253.7.3")
    assert config["apiVersion"] == "cloudcore.config.kubeedge.io/v1alpha1"
    assert config["kubeAPIConfig"]["kubeConfig"] == "/etc/kubeedge/config/kubeconfig"
    hub = config["modules"]["cloudHub"]
    assert hub["advertiseAddress"] == ["10.253.7.3"]  # its certificate names its address
    assert (hub["websocket"]["port"], hub["https"]["port"]) == (10000, 10002)
    assert hub["websocket"]["enable"] and hub["https"]["enable"]
    assert not hub["quic"]["enable"] and hub["quic"]["port"] == 10001
    stream = config["modules"]["cloudStream"]
    assert (stream["streamPort"], stream["tunnelPort"]) == (10003, 10004)
    assert config["modules"]["iptablesManager"]["enable"] is False
    assert kubeedge_spec.CLOUDCORE_PORTS == (10000, 10001, 10002, 10003, 10004)


# --- edge nodes ----------------------------------------------------------------------------


def test_edge_container_is_a_kind_node() -> None:
    e = edge()
    assert e.image == kubeedge_spec.EDGE_IMAGE
    assert e.command == () and e.entrypoint is None  # kind's entrypoint, then systemd
    assert dict(e.tmpfs) == {"/run": "rw", "/tmp": "rw"}
    assert e.volumes == {"edgebench-kedev-edge-1-var": "/var"}  # containerd off overlayfs
    assert e.binds["/lib/modules"] == ("/lib/modules", "ro")
    # edgecore rewrites its config without the token once it has its certificate
    assert e.binds["/state/nodes/edge-1/edgecore.yaml"] == (
        "/etc/kubeedge/config/edgecore.yaml",
        "rw",
    )
    assert e.binds["/state/nodes/edge-1/cni.conflist"][0].startswith("/etc/cni/net.d/")
    assert e.hostname == "edge-1" and e.ip == "10.253.7.11"
    assert e.labels[f"{labels.PREFIX}.node"] == "edge-1"
    assert e.run_kwargs(PRIVILEGED)["privileged"] is True  # privileged first, then fallback


def test_edgecore_config_dials_cloudcore_and_runs_pods_on_containerd() -> None:
    c = kubeedge_spec.edgecore_config("edge-1", "10.253.7.11", "10.253.7.3", "tok", KUBELET_FAST)
    assert c["apiVersion"] == "edgecore.config.kubeedge.io/v1alpha2"
    hub = c["modules"]["edgeHub"]
    assert hub["token"] == "tok"
    assert hub["httpServer"] == "https://10.253.7.3:10002"
    assert hub["websocket"] == {"enable": True, "server": "10.253.7.3:10000"}
    edged = c["modules"]["edged"]
    assert edged["hostnameOverride"] == "edge-1" and edged["nodeIP"] == "10.253.7.11"
    assert edged["nodeLabels"] == {"edgebench.io/edge": "true"}
    kubelet = edged["tailoredKubeletConfig"]  # v1alpha2: the endpoints are kubelet config
    assert kubelet["containerRuntimeEndpoint"] == "unix:///run/containerd/containerd.sock"
    assert kubelet["imageServiceEndpoint"] == "unix:///run/containerd/containerd.sock"
    assert kubelet["cgroupDriver"] == "systemd"
    assert kubelet["nodeStatusUpdateFrequency"] == "10s"
    assert c["modules"]["eventBus"]["mqttMode"] == 0 and not c["modules"]["eventBus"]["enable"]
    assert not c["modules"]["metaManager"]["metaServer"]["enable"]
    default = kubeedge_spec.edgecore_config("edge-1", "10.253.7.11", "10.253.7.3", "tok", None)
    assert "nodeStatusUpdateFrequency" not in default["modules"]["edged"]["tailoredKubeletConfig"]
    yaml.safe_dump(c)  # plain data


def test_edgecore_config_lands_where_kubeedges_own_types_read_it(tmp_path: Path) -> None:
    """Parsed with KubeEdge v1.20.0's v1alpha2 types over their defaults (as edgecore does),
    through hollowedge's --print-config; a misplaced key would be dropped silently."""
    from bench.build import tools
    from bench.errors import ToolError

    try:
        hollowedge = tools.tool_path("hollowedge")
    except ToolError as exc:
        pytest.skip(str(exc))
    config = kubeedge_spec.edgecore_config(
        "edge-1", "10.253.7.11", "10.253.7.3", "tok", KUBELET_FAST
    )
    path = tmp_path / "edgecore.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [str(hollowedge), f"--config={path}", f"--data-dir={tmp_path}", "--print-config"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    effective = yaml.safe_load(done.stdout)
    hub, edged = effective["modules"]["edgeHub"], effective["modules"]["edged"]
    assert hub["httpServer"] == "https://10.253.7.3:10002"
    assert hub["websocket"]["server"] == "10.253.7.3:10000"
    kubelet = edged["tailoredKubeletConfig"]
    assert kubelet["containerRuntimeEndpoint"] == "unix:///run/containerd/containerd.sock"
    assert kubelet["imageServiceEndpoint"] == "unix:///run/containerd/containerd.sock"
    assert kubelet["cgroupDriver"] == "systemd"
    assert kubelet["nodeStatusUpdateFrequency"] == "10s"
    assert edged["nodeLabels"]["edgebench.io/edge"] == "true"
    assert effective["modules"]["eventBus"]["mqttMode"] == 0


def test_cni_config_is_node_local() -> None:
    conf = json.loads(kubeedge_spec.cni_conflist(kubeedge_spec.pod_subnet(1)))
    assert [p["type"] for p in conf["plugins"]] == ["ptp", "portmap"]
    assert conf["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]]


def test_dnat_steers_cloudhub_websocket_and_https_to_the_nodes_own_link() -> None:
    rules = kubeedge_spec.dnat_rules(
        "10.253.7.3", {10000: "10.253.7.1:40001", 10002: "10.253.7.1:40002"}
    )
    assert rules == [
        [
            "iptables", "-w", "-t", "nat", "-A", "OUTPUT",
            "-d", "10.253.7.3", "-p", "tcp", "--dport", "10000",
            "-j", "DNAT", "--to-destination", "10.253.7.1:40001",
        ],
        [
            "iptables", "-w", "-t", "nat", "-A", "OUTPUT",
            "-d", "10.253.7.3", "-p", "tcp", "--dport", "10002",
            "-j", "DNAT", "--to-destination", "10.253.7.1:40002",
        ],
    ]  # fmt: skip


def test_workload_image_is_the_preloaded_sandbox_image() -> None:
    dump = '[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "registry.k8s.io/pause:3.9"\n'
    assert kubeedge_spec.sandbox_image(dump) == "registry.k8s.io/pause:3.9"
    assert kubeedge_spec.sandbox_image("") is None


def test_crictl_pods_view() -> None:
    out = json.dumps(
        {
            "items": [
                {"metadata": {"namespace": "ns", "name": "a"}, "state": "SANDBOX_READY"},
                {"metadata": {"namespace": "ns", "name": "b"}, "state": "SANDBOX_NOTREADY"},
            ]
        }
    )
    assert crictl.pods_view(out) == {"ns/a": "Running", "ns/b": "NotReady"}


# --- the opt-in upstream run ---------------------------------------------------------------


def upstream_images_present() -> bool:
    from bench.distros.docker import engine

    try:
        client = engine.connect()
    except EnvironmentUnavailableError:
        return False
    try:
        for image in kubeedge_spec.UPSTREAM_IMAGES:
            engine.require_image(client, image, "")
        return True
    except EnvironmentUnavailableError:
        return False
    finally:
        client.close()


def test_upstream_without_its_images_names_the_pulls() -> None:
    from bench.distros.docker import engine
    from bench.distros.docker.kubeedge_upstream import KubeEdgeUpstreamDocker

    try:
        engine.connect().close()
    except EnvironmentUnavailableError as exc:
        pytest.skip(f"no Docker engine here: {exc}")
    if upstream_images_present():
        pytest.skip("the upstream images are present here")
    with pytest.raises(EnvironmentUnavailableError) as err:
        KubeEdgeUpstreamDocker.check_available()
    assert kubeedge_spec.pull_hint() in str(err.value)


@pytest.mark.integration
@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.skipif(
    not upstream_images_present(),
    reason="opt-in: needs upstream KubeEdge's images on this Docker engine "
    f"({kubeedge_spec.pull_hint()}); no registry is reachable here",
)
def test_upstream_kubeedge_smoke_in_containers(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/", "-m", "smoke", "--distro=kubeedge",
         "--provider=docker", "--cluster-name=t-kubeedge-upstream", f"--results-dir={tmp_path}",
         "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:]
    assert "running upstream KubeEdge" in done.stderr
