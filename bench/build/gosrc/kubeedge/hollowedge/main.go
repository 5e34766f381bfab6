// Command hollowedge is edgebench's variant of KubeEdge's edgemark (hollow
// edgecore): edged runs a real (lite) kubelet against a fake CRI runtime,
// fake cadvisor and stub container manager, talking to cloudcore through
// edgehub, with metamanager's SQLite store. Unlike the stock edgemark it makes
// every per-instance path and port configurable, so that many hollow nodes can
// run side by side on one host.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	oteltrace "go.opentelemetry.io/otel/trace"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/cli/globalflag"
	"k8s.io/component-base/featuregate"
	"k8s.io/klog/v2"
	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"
	kubeletoptions "k8s.io/kubernetes/cmd/kubelet/app/options"
	"k8s.io/kubernetes/pkg/kubelet"
	cadvisortest "k8s.io/kubernetes/pkg/kubelet/cadvisor/testing"
	"k8s.io/kubernetes/pkg/kubelet/cm"
	containertest "k8s.io/kubernetes/pkg/kubelet/container/testing"
	"k8s.io/kubernetes/pkg/kubelet/cri/remote"
	fakeremote "k8s.io/kubernetes/pkg/kubelet/cri/remote/fake"
	kubeletutil "k8s.io/kubernetes/pkg/kubelet/util"
	"k8s.io/kubernetes/pkg/util/oom"
	"k8s.io/kubernetes/pkg/volume"
	"k8s.io/kubernetes/pkg/volume/configmap"
	"k8s.io/kubernetes/pkg/volume/downwardapi"
	"k8s.io/kubernetes/pkg/volume/emptydir"
	"k8s.io/kubernetes/pkg/volume/projected"
	"k8s.io/kubernetes/pkg/volume/secret"
	"k8s.io/kubernetes/pkg/volume/util/hostutil"
	"k8s.io/kubernetes/pkg/volume/util/subpath"
	"k8s.io/mount-utils"

	"github.com/kubeedge/api/apis/componentconfig/edgecore/v1alpha2"
	"github.com/kubeedge/beehive/pkg/core"
	"github.com/kubeedge/kubeedge/edge/pkg/common/dbm"
	"github.com/kubeedge/kubeedge/edge/pkg/edged"
	"github.com/kubeedge/kubeedge/edge/pkg/edgehub"
	"github.com/kubeedge/kubeedge/edge/pkg/metamanager"
)

type options struct {
	configFile      string
	token           string
	nodeName        string
	websocketServer string
	httpServer      string
	nodeLabels      map[string]string
	dataDir         string
	readOnlyPort    int32
	nodeIP          string
	printConfig     bool
}

func main() {
	o := &options{nodeLabels: map[string]string{}}
	cmd := &cobra.Command{
		Use:   "hollowedge",
		Short: "hollow KubeEdge edge node (edgecore with fake CRI runtime) for benchmarks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := buildConfig(o)
			if err != nil {
				return err
			}
			if o.printConfig {
				out, _ := yamlOf(c)
				fmt.Print(out)
				return nil
			}
			run(c)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.AddGoFlagSet(flag.CommandLine)
	globalflag.AddGlobalFlags(fs, cmd.Name())
	addFlags(fs, o)
	if err := cmd.Execute(); err != nil {
		os.Exit(1)
	}
}

func addFlags(fs *pflag.FlagSet, o *options) {
	fs.StringVar(&o.configFile, "config", "", "optional EdgeCoreConfig YAML (v1alpha2) applied over the defaults; the flags below override it")
	fs.StringVar(&o.token, "token", "", "join token (the 'tokendata' of secret kubeedge/tokensecret)")
	fs.StringVar(&o.nodeName, "name", "hollow-edge-0", "node name")
	fs.StringVar(&o.websocketServer, "websocket-server", "", "cloudhub websocket host:port (e.g. 127.0.0.1:20000)")
	fs.StringVar(&o.httpServer, "http-server", "", "cloudhub https URL for certificate requests (e.g. https://127.0.0.1:20002)")
	fs.Var(cliflag.NewMapStringString(&o.nodeLabels), "node-labels", "additional node labels k=v,...")
	fs.StringVar(&o.dataDir, "data-dir", "", "per-instance directory (db, certs, kubelet root, manifests, logs); required")
	fs.Int32Var(&o.readOnlyPort, "readonly-port", 10350, "kubelet read-only port on 127.0.0.1 (edged health check); distinct per instance")
	fs.StringVar(&o.nodeIP, "node-ip", "127.0.0.1", "node InternalIP reported to the API server")
	fs.BoolVar(&o.printConfig, "print-config", false, "print the effective EdgeCoreConfig and exit")
}

func buildConfig(o *options) (*v1alpha2.EdgeCoreConfig, error) {
	if o.dataDir == "" {
		return nil, fmt.Errorf("--data-dir is required")
	}
	dir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return nil, err
	}
	c := v1alpha2.NewDefaultEdgeCoreConfig()
	if o.configFile != "" {
		if err := c.Parse(o.configFile); err != nil {
			return nil, err
		}
	}
	f, t := false, true
	c.DataBase.DataSource = filepath.Join(dir, "edgecore.db")

	hub := c.Modules.EdgeHub
	hub.Token = o.token
	if o.httpServer != "" {
		hub.HTTPServer = o.httpServer
	}
	if o.websocketServer != "" {
		hub.WebSocket.Server = o.websocketServer
	}
	hub.TLSCAFile = filepath.Join(dir, "ca", "rootCA.crt")
	hub.TLSCertFile = filepath.Join(dir, "certs", "server.crt")
	hub.TLSPrivateKeyFile = filepath.Join(dir, "certs", "server.key")

	e := c.Modules.Edged
	e.HostnameOverride = o.nodeName
	e.NodeIP = o.nodeIP
	for k, v := range o.nodeLabels {
		if e.NodeLabels == nil {
			e.NodeLabels = map[string]string{}
		}
		e.NodeLabels[k] = v
	}
	e.RootDirectory = filepath.Join(dir, "kubelet")
	k := e.TailoredKubeletConfig
	k.StaticPodPath = filepath.Join(dir, "manifests")
	k.PodLogsDir = filepath.Join(dir, "pod-logs")
	k.VolumePluginDir = filepath.Join(dir, "volume-plugins")
	k.Address = "127.0.0.1"
	k.ReadOnlyPort = o.readOnlyPort
	k.RegisterNode = &t
	k.CgroupsPerQOS = &f
	k.EnableControllerAttachDetach = &f
	k.ProtectKernelDefaults = false
	k.MakeIPTablesUtilChains = &f

	mm := c.Modules.MetaManager
	mm.MetaServer.Enable = false
	return c, nil
}

func run(c *v1alpha2.EdgeCoreConfig) {
	for _, d := range []string{filepath.Dir(c.DataBase.DataSource), c.Modules.Edged.RootDirectory} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			klog.Exit(err)
		}
	}
	criSocket = filepath.Join(filepath.Dir(c.DataBase.DataSource), "fake-cri.sock")
	edged.DefaultKubeletDeps = fakeKubeletDeps
	edged.DefaultRunLiteKubelet = func(_ context.Context, s *kubeletoptions.KubeletServer,
		deps *kubelet.Dependencies, _ featuregate.FeatureGate) error {
		return kubeletapp.RunKubelet(s, deps, false)
	}
	edged.Register(c.Modules.Edged)
	edgehub.Register(c.Modules.EdgeHub, c.Modules.Edged.HostnameOverride)
	metamanager.Register(c.Modules.MetaManager)
	dbm.InitDBConfig(c.DataBase.DriverName, c.DataBase.AliasName, c.DataBase.DataSource)
	core.Run()
}

// criSocket is the fake CRI runtime's socket (set from --data-dir).
var criSocket string

func fakeKubeletDeps(s *kubeletoptions.KubeletServer, _ featuregate.FeatureGate) (*kubelet.Dependencies, error) {
	endpoint := "unix://" + criSocket
	if len(criSocket) > 100 { // unix socket path limit; fall back to /tmp/kubelet_remote_<rand>.sock
		var err error
		if endpoint, err = fakeremote.GenerateEndpoint(); err != nil {
			return nil, err
		}
	}
	_ = os.Remove(criSocket)
	rt := fakeremote.NewFakeRemoteRuntime()
	if err := rt.Start(endpoint); err != nil {
		return nil, fmt.Errorf("start fake CRI runtime: %w", err)
	}
	rs, err := remote.NewRemoteRuntimeService(endpoint, 15*time.Second, oteltrace.NewNoopTracerProvider())
	if err != nil {
		return nil, err
	}
	return &kubelet.Dependencies{
		RemoteRuntimeService: rs,
		RemoteImageService:   rt.ImageService,
		CAdvisorInterface:    &cadvisortest.Fake{NodeName: s.HostnameOverride},
		OSInterface:          &containertest.FakeOS{},
		ContainerManager:     cm.NewStubContainerManager(),
		VolumePlugins:        volumePlugins(),
		OOMAdjuster:          oom.NewFakeOOMAdjuster(),
		Mounter:              &mount.FakeMounter{},
		Subpather:            &subpath.FakeSubpath{},
		HostUtil:             hostutil.NewFakeHostUtil(nil),
		// the stock edgemark (v1.20.0) leaves these nil: kubelet.RunKubelet
		// then panics in NewMainKubelet (kubelet.go:446, nil TracerProvider);
		// kubelet's own run() would have filled them in.
		TracerProvider:            oteltrace.NewNoopTracerProvider(),
		PodStartupLatencyTracker:  kubeletutil.NewPodStartupLatencyTracker(),
		NodeStartupLatencyTracker: kubeletutil.NewNodeStartupLatencyTracker(),
	}, nil
}

func volumePlugins() []volume.VolumePlugin {
	var p []volume.VolumePlugin
	p = append(p, emptydir.ProbeVolumePlugins()...)
	p = append(p, secret.ProbeVolumePlugins()...)
	p = append(p, configmap.ProbeVolumePlugins()...)
	p = append(p, downwardapi.ProbeVolumePlugins()...)
	p = append(p, projected.ProbeVolumePlugins()...)
	return p
}
