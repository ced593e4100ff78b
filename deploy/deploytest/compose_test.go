package deploytest

import (
	"context"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads compose.yaml the way `docker compose` does, with env as
// the whole environment and, if envFile is not empty, that --env-file (whose
// COMPOSE_PROFILES selects profiles, as it does for the CLI).
func loadCompose(tb testing.TB, env map[string]string, envFile string) *types.Project {
	tb.Helper()
	root := repoRoot(tb)
	opts := []cli.ProjectOptionsFn{cli.WithWorkingDirectory(root), cli.WithEnv(environ(env))}
	if envFile != "" {
		opts = append(opts, cli.WithEnvFiles(filepath.Join(root, envFile)), cli.WithDotEnv)
	}
	opts = append(opts, cli.WithDefaultProfiles())
	o, err := cli.NewProjectOptions([]string{filepath.Join(root, "compose.yaml")}, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := o.LoadProject(context.Background())
	if err != nil {
		tb.Fatalf("compose.yaml does not load: %v", err)
	}
	return p
}

func environ(env map[string]string) []string {
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	return list
}

func service(tb testing.TB, p *types.Project, name string) types.ServiceConfig {
	tb.Helper()
	s, ok := p.Services[name]
	if !ok {
		tb.Fatalf("compose.yaml has no service %q (it has %v)", name, p.ServiceNames())
	}
	return s
}

// env returns a service's environment as plain strings.
func env(s types.ServiceConfig) map[string]string {
	m := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			m[k] = *v
		}
	}
	return m
}

func TestComposeProfiles(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		envFile  string
		services []string
	}{
		{"plain up", nil, "", []string{"ingest", "minio", "nats", "worker"}},
		{"dev profile", map[string]string{"COMPOSE_PROFILES": "dev"}, "", []string{"fakegraph", "ingest", "minio", "nats", "worker"}},
		{"dev env file", nil, "deploy/dev.env", []string{"fakegraph", "ingest", "minio", "nats", "worker"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadCompose(t, tt.env, tt.envFile)
			if got := slices.Sorted(slices.Values(p.ServiceNames())); !slices.Equal(got, tt.services) {
				t.Errorf("services = %v, want %v", got, tt.services)
			}
		})
	}
}

// TestComposeDevEnvFile checks that deploy/dev.env gives a stack that works
// without Meta: workers upload to the fake Graph API with the token it
// expects, and ingest accepts a development key.
func TestComposeDevEnvFile(t *testing.T) {
	p := loadCompose(t, nil, "deploy/dev.env")
	worker, fake, ingest := env(service(t, p, "worker")), env(service(t, p, "fakegraph")), env(service(t, p, "ingest"))

	base, err := url.Parse(worker["META_BASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	_, fakePort, _ := net.SplitHostPort(fake["FAKEGRAPH_ADDR"])
	if base.Hostname() != "fakegraph" || base.Port() != fakePort {
		t.Errorf("worker META_BASE_URL = %q, want the fakegraph service on port %s (FAKEGRAPH_ADDR %q)", worker["META_BASE_URL"], fakePort, fake["FAKEGRAPH_ADDR"])
	}
	if worker["META_ACCESS_TOKEN"] == "" || worker["META_ACCESS_TOKEN"] != fake["META_ACCESS_TOKEN"] {
		t.Errorf("worker token %q does not match the fake's %q: every upload would be refused", worker["META_ACCESS_TOKEN"], fake["META_ACCESS_TOKEN"])
	}
	if ingest["SIGFOLLOW_DEV_API_KEY"] == "" {
		t.Error("ingest has no SIGFOLLOW_DEV_API_KEY in the dev setup: a developer has no key to call the API with")
	}
}

// TestComposeWiring checks what `docker compose up` needs to work: each
// binary finds NATS and MinIO by service name, starts after they are healthy,
// and is reachable where the port mappings say.
func TestComposeWiring(t *testing.T) {
	p := loadCompose(t, nil, "")
	minio := env(service(t, p, "minio"))

	for _, name := range []string{"ingest", "worker"} {
		t.Run(name, func(t *testing.T) {
			s := service(t, p, name)
			e := env(s)
			assertServiceURL(t, p, e, "NATS_URL", "nats", "4222")
			assertServiceURL(t, p, e, "S3_ENDPOINT", "minio", "9000")
			if e["S3_ACCESS_KEY"] != minio["MINIO_ROOT_USER"] || e["S3_SECRET_KEY"] != minio["MINIO_ROOT_PASSWORD"] {
				t.Errorf("S3 credentials %q/%q differ from MinIO's root user %q/%q", e["S3_ACCESS_KEY"], e["S3_SECRET_KEY"], minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"])
			}
			if e["NATS_REPLICAS"] != "1" {
				t.Errorf("NATS_REPLICAS = %q on a single NATS server, want 1", e["NATS_REPLICAS"])
			}
			for _, dep := range []string{"nats", "minio"} {
				if d, ok := s.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
					t.Errorf("depends_on %s = %+v, want condition %s", dep, d, types.ServiceConditionHealthy)
				}
			}
			if !s.ReadOnly {
				t.Error("root file system is writable; want read_only: true")
			}
		})
	}

	t.Run("ingest port", func(t *testing.T) {
		s := service(t, p, "ingest")
		host, port, err := net.SplitHostPort(env(s)["INGEST_ADDR"])
		if err != nil || host != "0.0.0.0" {
			t.Fatalf("INGEST_ADDR = %q, want 0.0.0.0:PORT so the published port reaches it", env(s)["INGEST_ADDR"])
		}
		if !slices.ContainsFunc(s.Ports, func(pc types.ServicePortConfig) bool {
			return strconv.FormatUint(uint64(pc.Target), 10) == port && pc.Published != ""
		}) {
			t.Errorf("no published port targets INGEST_ADDR's port %s: %+v", port, s.Ports)
		}
		if env(s)["SPOOL_DIR"] == "" || !slices.ContainsFunc(s.Tmpfs, func(m string) bool { return strings.HasPrefix(m, env(s)["SPOOL_DIR"]) }) {
			t.Errorf("SPOOL_DIR %q is not a tmpfs (%v): large uploads cannot spool on a read-only root", env(s)["SPOOL_DIR"], s.Tmpfs)
		}
	})

	t.Run("worker replicas", func(t *testing.T) {
		s := service(t, p, "worker")
		if got := s.GetScale(); got != 3 {
			t.Errorf("worker replicas = %d, want 3", got)
		}
		if env(s)["WORKER_METRICS_ADDR"] == "" {
			t.Error("WORKER_METRICS_ADDR is empty: the worker serves no /healthz for its health check")
		}
	})

	t.Run("nats jetstream on a volume", func(t *testing.T) {
		s := service(t, p, "nats")
		i := slices.Index(s.Command, "-sd")
		if !slices.Contains(s.Command, "-js") || i < 0 || i+1 >= len(s.Command) {
			t.Fatalf("nats command %v does not enable JetStream (-js) with a store directory (-sd DIR)", s.Command)
		}
		assertVolumeAt(t, p, s, s.Command[i+1])
	})

	t.Run("minio on a volume", func(t *testing.T) {
		s := service(t, p, "minio")
		if len(s.Command) < 2 || s.Command[0] != "server" {
			t.Fatalf("minio command %v, want server DIR", s.Command)
		}
		assertVolumeAt(t, p, s, s.Command[1])
	})

	// Every service of a plain `up`; the dev profile's fake Graph API has no
	// health endpoint and nothing waits for it.
	t.Run("health checks", func(t *testing.T) {
		for _, s := range p.Services {
			if s.HealthCheck == nil || len(s.HealthCheck.Test) < 2 || s.HealthCheck.Disable {
				t.Errorf("%s has no health check", s.Name)
			}
		}
	})
}

// assertServiceURL checks that variable key is a URL on service host, at
// port.
func assertServiceURL(tb testing.TB, p *types.Project, e map[string]string, key, host, port string) {
	tb.Helper()
	u, err := url.Parse(e[key])
	if err != nil || u.Hostname() != host || u.Port() != port {
		tb.Errorf("%s = %q, want the %s service on port %s", key, e[key], host, port)
	}
	if _, ok := p.Services[host]; !ok {
		tb.Errorf("%s points at %q, which is not a service", key, host)
	}
}

// assertVolumeAt checks that dir is on a named volume the project declares,
// so the data outlives the container.
func assertVolumeAt(tb testing.TB, p *types.Project, s types.ServiceConfig, dir string) {
	tb.Helper()
	for _, v := range s.Volumes {
		if v.Target == dir {
			if _, ok := p.Volumes[v.Source]; v.Type != types.VolumeTypeVolume || !ok {
				tb.Errorf("%s: %s is on %s %q, want a named volume declared under volumes:", s.Name, dir, v.Type, v.Source)
			}
			return
		}
	}
	tb.Errorf("%s keeps its data in %s, which is on no volume (volumes: %+v)", s.Name, dir, s.Volumes)
}

// TestComposeBuilds checks that each project image is built from the
// Dockerfile in deploy/, at a target that Dockerfile has, with the whole
// repository as its context.
func TestComposeBuilds(t *testing.T) {
	root := repoRoot(t)
	p := loadCompose(t, map[string]string{"COMPOSE_PROFILES": "dev"}, "")
	built := 0
	for _, s := range p.Services {
		if s.Build == nil {
			continue
		}
		built++
		t.Run(s.Name, func(t *testing.T) {
			if s.Build.Context != root {
				t.Errorf("build context %q, want the repository root %q", s.Build.Context, root)
			}
			dockerfile := s.Build.Dockerfile
			if !filepath.IsAbs(dockerfile) {
				dockerfile = filepath.Join(s.Build.Context, dockerfile)
			}
			if rel, err := filepath.Rel(filepath.Join(root, "deploy"), dockerfile); err != nil || strings.Contains(rel, "..") || strings.Contains(rel, string(filepath.Separator)) {
				t.Errorf("dockerfile %q is not in deploy/", s.Build.Dockerfile)
			}
			stages := dockerStages(t, dockerfile)
			if !slices.ContainsFunc(stages, func(st stage) bool { return st.Name == s.Build.Target }) {
				t.Errorf("target %q is not a stage of %s", s.Build.Target, dockerfile)
			}
			if _, ok := binaryPackages[s.Build.Target]; !ok {
				t.Errorf("target %q is not one of the binaries", s.Build.Target)
			}
		})
	}
	if built != len(binaryPackages) {
		t.Errorf("%d services are built from source, want one per binary (%d)", built, len(binaryPackages))
	}
}

// TestComposeEnvironmentIsRead checks that every variable compose.yaml sets
// for a project service is one its binary reads.
func TestComposeEnvironmentIsRead(t *testing.T) {
	p := loadCompose(t, map[string]string{"COMPOSE_PROFILES": "dev"}, "")
	for _, s := range p.Services {
		if s.Build == nil {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			assertReads(t, s.Build.Target, "compose service "+s.Name, slices.Sorted(maps.Keys(env(s))))
		})
	}
}

// secretVars hold credentials; compose.yaml must take them from the
// environment, never as literal values.
var secretVars = []string{"S3_ACCESS_KEY", "S3_SECRET_KEY", "META_ACCESS_TOKEN", "META_PHONE_TOKENS", "SIGFOLLOW_DEV_API_KEY", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"}

func TestComposeSecretsComeFromEnvironment(t *testing.T) {
	p := loadCompose(t, map[string]string{
		"COMPOSE_PROFILES": "dev", "S3_ACCESS_KEY": "ak-from-env", "S3_SECRET_KEY": "sk-from-env",
		"META_ACCESS_TOKEN": "token-from-env", "META_PHONE_TOKENS": "1:phone-token-from-env", "SIGFOLLOW_DEV_API_KEY": "key-from-env",
	}, "")
	want := map[string]string{
		"S3_ACCESS_KEY": "ak-from-env", "S3_SECRET_KEY": "sk-from-env", "MINIO_ROOT_USER": "ak-from-env", "MINIO_ROOT_PASSWORD": "sk-from-env",
		"META_ACCESS_TOKEN": "token-from-env", "META_PHONE_TOKENS": "1:phone-token-from-env", "SIGFOLLOW_DEV_API_KEY": "key-from-env",
	}
	for _, s := range p.Services {
		for k, v := range env(s) {
			if slices.Contains(secretVars, k) && v != want[k] {
				t.Errorf("%s: %s = %q with %s=%q in the environment: the secret is not taken from it", s.Name, k, v, k, want[k])
			}
		}
	}
}

// TestComposeHealthChecks runs each project service's health check command
// against a stand-in for the service's health endpoint: it must pass while
// /healthz answers 200 and fail once it answers 503, or compose would keep a
// broken container or never see a working one as healthy.
func TestComposeHealthChecks(t *testing.T) {
	// The dev setup, so that every binary has the settings it requires.
	p := loadCompose(t, nil, "deploy/dev.env")
	for _, s := range p.Services {
		if s.Build == nil || s.HealthCheck == nil {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			test := s.HealthCheck.Test
			if len(test) < 2 || test[0] != "CMD" {
				t.Fatalf("health check %q is not exec form (CMD ...): the image has no shell", test)
			}
			if filepath.Base(test[1]) != s.Build.Target {
				t.Fatalf("health check runs %s, not the service's own binary %s", test[1], s.Build.Target)
			}
			var status, hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/healthz" {
					hits.Add(1)
				}
				w.WriteHeader(int(status.Load()))
			}))
			t.Cleanup(srv.Close)
			_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
			var cenv []string
			listens := false
			for k, v := range env(s) {
				if host, _, err := net.SplitHostPort(v); err == nil && host == "0.0.0.0" {
					v, listens = net.JoinHostPort(host, port), true
				}
				cenv = append(cenv, k+"="+v)
			}
			if !listens {
				t.Fatalf("no variable of %s sets a 0.0.0.0:PORT listening address for the health check to probe", s.Name)
			}
			for _, code := range []int{http.StatusOK, http.StatusServiceUnavailable} {
				status.Store(int32(code))
				before := hits.Load()
				_, errOut, err := runBinary(t, s.Build.Target, cenv, test[2:]...)
				if strings.Contains(errOut, "unknown command") {
					t.Fatalf("%s has no %q subcommand, so this health check can never pass: %s", s.Build.Target, strings.Join(test[2:], " "), errOut)
				}
				if (err == nil) != (code == http.StatusOK) {
					t.Errorf("%q with /healthz answering %d: err = %v, want success only on 200\n%s", test[1:], code, err, errOut)
				}
				if hits.Load() == before {
					t.Errorf("%q did not GET /healthz on the service's port%s", test[1:], "\n"+errOut)
				}
			}
		})
	}
}
