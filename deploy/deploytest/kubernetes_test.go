package deploytest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/sigfollow/media/shared/job"
	"github.com/sigfollow/media/shared/queue"
)

// kustomization mirrors the fields of kustomization.yaml this directory uses;
// decoding it strictly rejects anything else.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images"`
}

// scaledObject mirrors the fields of KEDA's ScaledObject (keda.sh/v1alpha1)
// that worker.yaml uses; decoding it strictly rejects a misspelt field.
type scaledObject struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		PollingInterval *int32 `json:"pollingInterval,omitempty"`
		CooldownPeriod  *int32 `json:"cooldownPeriod,omitempty"`
		MinReplicaCount *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount *int32 `json:"maxReplicaCount,omitempty"`
		Advanced        *struct {
			HorizontalPodAutoscalerConfig *struct {
				Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
			} `json:"horizontalPodAutoscalerConfig,omitempty"`
		} `json:"advanced,omitempty"`
		Triggers []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// natsJetStreamParams are the trigger metadata keys KEDA's nats-jetstream
// scaler knows.
var natsJetStreamParams = []string{"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold", "activationLagThreshold", "useHttps"}

// natsValues mirrors the parts of the NATS Helm chart's values that
// nats-values.yaml sets.
type natsValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool `json:"enabled"`
			Replicas int  `json:"replicas"`
		} `json:"cluster"`
		JetStream struct {
			Enabled   bool `json:"enabled"`
			FileStore struct {
				Enabled bool   `json:"enabled"`
				Dir     string `json:"dir"`
				PVC     struct {
					Enabled bool              `json:"enabled"`
					Size    resource.Quantity `json:"size"`
				} `json:"pvc"`
			} `json:"fileStore"`
			MemoryStore struct {
				Enabled bool `json:"enabled"`
			} `json:"memoryStore"`
		} `json:"jetstream"`
		Monitor struct {
			Enabled bool `json:"enabled"`
			Port    int  `json:"port"`
		} `json:"monitor"`
	} `json:"config"`
	Container struct {
		Env   map[string]string `json:"env"`
		Merge struct {
			Resources corev1.ResourceRequirements `json:"resources"`
		} `json:"merge"`
	} `json:"container"`
	PodTemplate struct {
		TopologySpreadConstraints map[string]struct {
			MaxSkew           int    `json:"maxSkew"`
			WhenUnsatisfiable string `json:"whenUnsatisfiable"`
		} `json:"topologySpreadConstraints"`
	} `json:"podTemplate"`
	PodDisruptionBudget struct {
		Enabled bool `json:"enabled"`
	} `json:"podDisruptionBudget"`
}

// manifests is everything deploy/kubernetes declares, decoded.
type manifests struct {
	kustomization kustomization
	deployments   map[string]*appsv1.Deployment
	services      map[string]*corev1.Service
	hpas          []*autoscalingv2.HorizontalPodAutoscaler
	pdbs          []*policyv1.PodDisruptionBudget
	configMaps    map[string]*corev1.ConfigMap
	secrets       map[string]*corev1.Secret
	namespaces    []*corev1.Namespace
	scaledObjects []scaledObject
	natsValues    natsValues
}

func kubeDir(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(repoRoot(tb), "deploy", "kubernetes")
}

// decodeStrict decodes YAML into v, failing on unknown or duplicate fields.
func decodeStrict(tb testing.TB, what string, data []byte, v any) {
	tb.Helper()
	if err := yaml.UnmarshalStrict(data, v); err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// yamlDocs splits a multi-document YAML file.
func yamlDocs(tb testing.TB, path string) [][]byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			docs = append(docs, doc)
		}
	}
}

// loadManifests decodes every resource the kustomization lists, the Secret
// templates and the NATS chart values. Kubernetes objects go through the
// API machinery's strict decoder for their registered types, which rejects
// an unknown kind or apiVersion, a misspelt or misplaced field, a duplicate
// field and a malformed quantity.
func loadManifests(tb testing.TB) *manifests {
	tb.Helper()
	dir := kubeDir(tb)
	m := &manifests{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
	}
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	decodeStrict(tb, "kustomization.yaml", data, &m.kustomization)

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			tb.Fatal(err)
		}
	}
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()

	files := append(slices.Clone(m.kustomization.Resources), "secrets.example.yaml")
	for _, file := range files {
		for i, doc := range yamlDocs(tb, filepath.Join(dir, file)) {
			what := file + " document " + strconv.Itoa(i+1)
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				tb.Fatalf("%s: %v", what, err)
			}
			if meta.Kind == "ScaledObject" {
				var so scaledObject
				decodeStrict(tb, what, doc, &so)
				if so.APIVersion != "keda.sh/v1alpha1" {
					tb.Errorf("%s: ScaledObject apiVersion %q, want keda.sh/v1alpha1", what, so.APIVersion)
				}
				m.scaledObjects = append(m.scaledObjects, so)
				continue
			}
			obj, _, err := decoder.Decode(doc, nil, nil)
			if err != nil {
				tb.Fatalf("%s: %v", what, err)
			}
			switch o := obj.(type) {
			case *appsv1.Deployment:
				m.deployments[o.Name] = o
			case *corev1.Service:
				m.services[o.Name] = o
			case *autoscalingv2.HorizontalPodAutoscaler:
				m.hpas = append(m.hpas, o)
			case *policyv1.PodDisruptionBudget:
				m.pdbs = append(m.pdbs, o)
			case *corev1.ConfigMap:
				m.configMaps[o.Name] = o
			case *corev1.Secret:
				m.secrets[o.Name] = o
			case *corev1.Namespace:
				m.namespaces = append(m.namespaces, o)
			default:
				tb.Fatalf("%s: unexpected %T", what, obj)
			}
		}
	}

	data, err = os.ReadFile(filepath.Join(dir, "nats-values.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	decodeStrict(tb, "nats-values.yaml", data, &m.natsValues)
	return m
}

// podEnv returns the environment a Deployment's container gets, with
// envFrom resolved against the ConfigMaps and Secrets, and the names of
// sources it could not find.
func (m *manifests) podEnv(c corev1.Container) (env map[string]string, missing []string) {
	env = map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, ok := m.configMaps[from.ConfigMapRef.Name]
			if !ok {
				missing = append(missing, "ConfigMap "+from.ConfigMapRef.Name)
				continue
			}
			maps.Copy(env, cm.Data)
		case from.SecretRef != nil:
			s, ok := m.secrets[from.SecretRef.Name]
			if !ok {
				missing = append(missing, "Secret "+from.SecretRef.Name)
				continue
			}
			for k, v := range s.StringData {
				env[k] = v
			}
			for k, v := range s.Data {
				env[k] = string(v)
			}
		}
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env, missing
}

func (m *manifests) deployment(tb testing.TB, name string) (*appsv1.Deployment, corev1.Container) {
	tb.Helper()
	d, ok := m.deployments[name]
	if !ok {
		tb.Fatalf("no Deployment %q in deploy/kubernetes (have %v)", name, slices.Sorted(maps.Keys(m.deployments)))
	}
	cs := d.Spec.Template.Spec.Containers
	i := slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 {
		tb.Fatalf("Deployment %s has no container %q", name, name)
	}
	return d, cs[i]
}

func selects(tb testing.TB, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	tb.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		tb.Fatalf("selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}

// containerPort resolves a probe's or Service's port to a container port.
func containerPort(c corev1.Container, port intstr.IntOrString) (int32, bool) {
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

func TestKubernetesKustomization(t *testing.T) {
	m := loadManifests(t)
	k := m.kustomization
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml is %s %s", k.APIVersion, k.Kind)
	}
	if len(m.namespaces) != 1 || m.namespaces[0].Name != k.Namespace {
		t.Errorf("kustomization namespace %q is not the Namespace the manifests create", k.Namespace)
	}
	files, err := filepath.Glob(filepath.Join(kubeDir(t), "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		base := filepath.Base(f)
		if !slices.Contains(k.Resources, base) && !slices.Contains([]string{"kustomization.yaml", "nats-values.yaml", "secrets.example.yaml"}, base) {
			t.Errorf("%s is not listed in kustomization.yaml: kubectl apply -k would leave it out", base)
		}
	}
	for _, s := range m.secrets {
		if s.Namespace != k.Namespace {
			t.Errorf("Secret %s is applied outside kustomize, so it needs namespace %q, not %q", s.Name, k.Namespace, s.Namespace)
		}
	}
	var images []string
	for _, img := range k.Images {
		images = append(images, img.Name)
	}
	for name := range m.deployments {
		_, c := m.deployment(t, name)
		if !slices.Contains(images, c.Image) {
			t.Errorf("Deployment %s runs image %q, which kustomization images (%v) cannot retag", name, c.Image, images)
		}
	}
}

// TestKubernetesDeployments checks what each Deployment needs to run and be
// managed safely: probes on the endpoints the binary serves, resources for
// scheduling and autoscaling, the restricted security profile, writable
// scratch space, and only settings the binary reads.
func TestKubernetesDeployments(t *testing.T) {
	m := loadManifests(t)
	tests := []struct {
		name, listenVar, shutdownVar string
	}{
		{"ingest", "INGEST_ADDR", "SHUTDOWN_TIMEOUT"},
		{"worker", "WORKER_METRICS_ADDR", "WORKER_SHUTDOWN_TIMEOUT"},
	}
	if len(m.deployments) != len(tests) {
		t.Errorf("Deployments %v, want one per test case", slices.Sorted(maps.Keys(m.deployments)))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, c := m.deployment(t, tt.name)
			pod := d.Spec.Template
			if !selects(t, d.Spec.Selector, pod.Labels) {
				t.Errorf("selector %v does not match the pod labels %v", d.Spec.Selector, pod.Labels)
			}

			env, missing := m.podEnv(c)
			for _, src := range missing {
				t.Errorf("envFrom names %s, which no manifest declares", src)
			}
			assertReads(t, tt.name, "Deployment "+tt.name, slices.Sorted(maps.Keys(env)))
			if env["NATS_REPLICAS"] != "3" {
				t.Errorf("NATS_REPLICAS = %q, want 3 on the three-node cluster", env["NATS_REPLICAS"])
			}

			host, listenPort, err := net.SplitHostPort(env[tt.listenVar])
			if err != nil || host != "0.0.0.0" {
				t.Fatalf("%s = %q, want 0.0.0.0:PORT so the kubelet and Service reach it", tt.listenVar, env[tt.listenVar])
			}
			for _, probe := range []struct {
				kind  string
				p     *corev1.Probe
				paths []string
			}{
				{"liveness", c.LivenessProbe, []string{"/healthz"}},
				{"readiness", c.ReadinessProbe, []string{"/readyz"}},
				{"startup", c.StartupProbe, []string{"/healthz", ""}},
			} {
				if probe.p == nil {
					if probe.kind != "startup" {
						t.Errorf("no %s probe", probe.kind)
					}
					continue
				}
				if probe.p.HTTPGet == nil || !slices.Contains(probe.paths, probe.p.HTTPGet.Path) {
					t.Errorf("%s probe %+v, want GET %s", probe.kind, probe.p.ProbeHandler, probe.paths[0])
					continue
				}
				port, ok := containerPort(c, probe.p.HTTPGet.Port)
				if !ok || strconv.Itoa(int(port)) != listenPort {
					t.Errorf("%s probe port %s is not %s's port %s", probe.kind, probe.p.HTTPGet.Port.String(), tt.listenVar, listenPort)
				}
			}

			if p, ok := pod.Annotations["prometheus.io/port"]; ok && p != listenPort {
				t.Errorf("prometheus.io/port %s is not %s's port %s: metrics would not be scraped", p, tt.listenVar, listenPort)
			}

			req, lim := c.Resources.Requests, c.Resources.Limits
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q, ok := req[r]; !ok || q.IsZero() {
					t.Errorf("no %s request: the scheduler and autoscaler cannot size it", r)
				}
			}
			if l, ok := lim[corev1.ResourceMemory]; !ok || l.Cmp(req[corev1.ResourceMemory]) < 0 {
				t.Errorf("memory limit %v below request %v", lim.Memory(), req.Memory())
			}

			assertRestricted(t, pod.Spec, c)
			tmp := slices.IndexFunc(c.VolumeMounts, func(v corev1.VolumeMount) bool { return v.MountPath == "/tmp" })
			if tmp < 0 {
				t.Fatal("nothing mounted at /tmp on a read-only root file system")
			}
			vol := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[tmp].Name })
			if vol < 0 || pod.Spec.Volumes[vol].EmptyDir == nil || pod.Spec.Volumes[vol].EmptyDir.SizeLimit == nil {
				t.Errorf("/tmp is not a size-limited emptyDir")
			}
			if dir, ok := env["SPOOL_DIR"]; ok && dir != "/tmp" {
				t.Errorf("SPOOL_DIR = %q, not the emptyDir at /tmp", dir)
			}

			shutdown, err := time.ParseDuration(env[tt.shutdownVar])
			if err != nil {
				t.Fatalf("%s = %q: %v (set it, so the grace period can be checked against it)", tt.shutdownVar, env[tt.shutdownVar], err)
			}
			grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
			if grace <= shutdown {
				t.Errorf("terminationGracePeriodSeconds %v is not above %s %v: the pod is killed mid-shutdown", grace, tt.shutdownVar, shutdown)
			}
		})
	}
}

// assertRestricted checks the parts of the "restricted" Pod Security
// Standard the namespace enforces; a pod that misses one is refused.
func assertRestricted(tb testing.TB, pod corev1.PodSpec, c corev1.Container) {
	tb.Helper()
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || sc == nil {
		tb.Fatal("pod or container securityContext missing")
	}
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		tb.Error("pod does not run as a non-root user")
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		tb.Error("pod seccompProfile is not RuntimeDefault")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		tb.Error("container allows privilege escalation")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		tb.Error("container root file system is writable")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		tb.Error("container does not drop ALL capabilities")
	}
}

func TestKubernetesDisruptionBudgets(t *testing.T) {
	m := loadManifests(t)
	for name, d := range m.deployments {
		t.Run(name, func(t *testing.T) {
			var covering []string
			for _, pdb := range m.pdbs {
				if selects(t, pdb.Spec.Selector, d.Spec.Template.Labels) {
					covering = append(covering, pdb.Name)
				}
			}
			if len(covering) != 1 {
				t.Errorf("%s pods are covered by PodDisruptionBudgets %v, want exactly one", name, covering)
			}
		})
	}
}

func TestKubernetesIngestService(t *testing.T) {
	m := loadManifests(t)
	svc, ok := m.services["ingest"]
	if !ok {
		t.Fatal("no Service ingest")
	}
	for name, d := range m.deployments {
		matches := labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels))
		if matches != (name == "ingest") {
			t.Errorf("Service ingest selects %s pods: %v, want only ingest's", name, matches)
		}
	}
	_, c := m.deployment(t, "ingest")
	for _, p := range svc.Spec.Ports {
		if _, ok := containerPort(c, p.TargetPort); !ok {
			t.Errorf("Service port %s targets %s, which the ingest container does not expose", p.Name, p.TargetPort.String())
		}
	}
}

func TestKubernetesIngestAutoscaler(t *testing.T) {
	m := loadManifests(t)
	if len(m.hpas) != 1 {
		t.Fatalf("%d HorizontalPodAutoscalers, want one for ingest (KEDA makes the worker's)", len(m.hpas))
	}
	h := m.hpas[0]
	ref := h.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != "ingest" {
		t.Errorf("HPA targets %s %s %s, want the ingest Deployment", ref.APIVersion, ref.Kind, ref.Name)
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas <= *h.Spec.MinReplicas {
		t.Errorf("HPA replicas %v..%d; want at least 2 for availability and room to grow", h.Spec.MinReplicas, h.Spec.MaxReplicas)
	}
	cpu := slices.ContainsFunc(h.Spec.Metrics, func(ms autoscalingv2.MetricSpec) bool {
		return ms.Type == autoscalingv2.ResourceMetricSourceType && ms.Resource.Name == corev1.ResourceCPU &&
			ms.Resource.Target.Type == autoscalingv2.UtilizationMetricType && ms.Resource.Target.AverageUtilization != nil
	})
	if !cpu {
		t.Errorf("HPA does not scale on CPU utilization: %+v", h.Spec.Metrics)
	}
}

func TestKubernetesWorkerScaledObject(t *testing.T) {
	m := loadManifests(t)
	if len(m.scaledObjects) != 1 {
		t.Fatalf("%d ScaledObjects, want one for the workers", len(m.scaledObjects))
	}
	so := m.scaledObjects[0].Spec
	ref := so.ScaleTargetRef
	if ref.Name != "worker" || (ref.Kind != "" && ref.Kind != "Deployment") || (ref.APIVersion != "" && ref.APIVersion != "apps/v1") {
		t.Errorf("ScaledObject targets %s %s %s, want the worker Deployment", ref.APIVersion, ref.Kind, ref.Name)
	}
	if d, _ := m.deployment(t, "worker"); d.Spec.Replicas != nil {
		t.Errorf("worker Deployment sets replicas: %d; every kubectl apply would undo KEDA's scaling", *d.Spec.Replicas)
	}
	if so.MinReplicaCount == nil || *so.MinReplicaCount < 1 || so.MaxReplicaCount == nil || *so.MaxReplicaCount <= *so.MinReplicaCount {
		t.Errorf("replica range %v..%v; want at least one worker always (synchronous uploads wait for one) and room to grow", so.MinReplicaCount, so.MaxReplicaCount)
	}
	if len(so.Triggers) != 1 || so.Triggers[0].Type != "nats-jetstream" {
		t.Fatalf("triggers %+v, want one nats-jetstream trigger", so.Triggers)
	}
	md := so.Triggers[0].Metadata
	for k := range md {
		if !slices.Contains(natsJetStreamParams, k) {
			t.Errorf("trigger metadata %q is not a nats-jetstream parameter (%v)", k, natsJetStreamParams)
		}
	}
	want := map[string]string{"account": "$G", "stream": job.Stream, "consumer": queue.Consumer}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("trigger %s = %q, want %q", k, md[k], v)
		}
	}
	if n, err := strconv.Atoi(md["lagThreshold"]); err != nil || n < 1 {
		t.Errorf("lagThreshold %q is not a positive integer", md["lagThreshold"])
	}
	host, port, err := net.SplitHostPort(md["natsServerMonitoringEndpoint"])
	if err != nil || strings.Contains(md["natsServerMonitoringEndpoint"], "://") {
		t.Fatalf("natsServerMonitoringEndpoint %q, want host:port", md["natsServerMonitoringEndpoint"])
	}
	if port != strconv.Itoa(m.natsValues.Config.Monitor.Port) {
		t.Errorf("KEDA reads port %s, but nats-values.yaml serves monitoring on %d", port, m.natsValues.Config.Monitor.Port)
	}
	env, _ := m.podEnv(func() corev1.Container { _, c := m.deployment(t, "worker"); return c }())
	natsURL, err := url.Parse(env["NATS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	// Both name the chart's Services in the same namespace: "nats" for
	// clients, "nats-headless" for per-pod monitoring.
	clientSvc, clientNS, _ := strings.Cut(natsURL.Hostname(), ".")
	monSvc, monNS, _ := strings.Cut(host, ".")
	if monSvc != clientSvc+"-headless" || monNS != clientNS {
		t.Errorf("KEDA watches %s, but the workers use NATS at %s", host, natsURL.Hostname())
	}
}

func TestNATSHelmValues(t *testing.T) {
	v := loadManifests(t).natsValues
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 {
		t.Errorf("cluster enabled=%v replicas=%d; want a three-node cluster", c.Cluster.Enabled, c.Cluster.Replicas)
	}
	fs := c.JetStream.FileStore
	if !c.JetStream.Enabled || !fs.Enabled || !fs.PVC.Enabled {
		t.Errorf("JetStream %v, file store %v, PVC %v; want JetStream on persistent volumes", c.JetStream.Enabled, fs.Enabled, fs.PVC.Enabled)
	}
	if fs.PVC.Size.Cmp(resource.MustParse("1Gi")) < 0 {
		t.Errorf("JetStream volume %v is below 1Gi", fs.PVC.Size.String())
	}
	if !c.Monitor.Enabled || c.Monitor.Port == 0 {
		t.Error("monitoring is off: KEDA has no /jsz to read the consumer lag from")
	}
	if _, ok := v.Container.Merge.Resources.Requests[corev1.ResourceMemory]; !ok {
		t.Error("NATS container has no memory request")
	}
	if !v.PodDisruptionBudget.Enabled {
		t.Error("NATS has no PodDisruptionBudget: a node drain could take two of three nodes")
	}
}
