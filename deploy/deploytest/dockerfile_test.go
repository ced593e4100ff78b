package deploytest

import (
	"bufio"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// stage is one FROM of a Dockerfile, as BuildKit reads it.
type stage = instructions.Stage

// dockerStages parses a Dockerfile with BuildKit's own parser and lint rules
// and returns its stages. Parse errors and lint warnings fail the test.
func dockerStages(tb testing.TB, path string) []stage {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	ast, err := parser.Parse(f)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	for _, w := range ast.Warnings {
		tb.Errorf("%s: %s", path, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		tb.Errorf("%s:%d: lint %s: %s", path, line, rule, msg)
	}})
	stages, _, err := instructions.Parse(ast.AST, lint)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return stages
}

// dockerfiles lists the Dockerfiles in deploy/.
func dockerfiles(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(tb), "deploy", "*Dockerfile*"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatal("no Dockerfile in deploy/")
	}
	return files
}

// imageStages are the stages no other stage builds on: the images.
func imageStages(stages []stage) []stage {
	used := map[string]bool{}
	for _, s := range stages {
		used[strings.ToLower(s.BaseName)] = true
		for _, c := range s.Commands {
			if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
				used[strings.ToLower(cp.From)] = true
			}
		}
	}
	var images []stage
	for _, s := range stages {
		if !used[strings.ToLower(s.Name)] {
			images = append(images, s)
		}
	}
	return images
}

func commands[T instructions.Command](s stage) []T {
	var out []T
	for _, c := range s.Commands {
		if t, ok := c.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// goVersion returns the major.minor Go version go.mod asks for.
func goVersion(tb testing.TB) string {
	tb.Helper()
	f, err := os.Open(filepath.Join(repoRoot(tb), "go.mod"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go "); ok {
			parts := strings.Split(strings.TrimSpace(v), ".")
			return strings.Join(parts[:min(2, len(parts))], ".")
		}
	}
	tb.Fatal("go.mod has no go directive")
	return ""
}

// smallBase matches the base images an image stage may use.
var smallBase = regexp.MustCompile(`^(scratch|gcr\.io/distroless/static(-debian\d+)?:nonroot(@sha256:[0-9a-f]{64})?)$`)

// TestDockerfiles checks how every image is built: a Go builder stage that
// matches go.mod and produces static, trimmed binaries, and small final
// images that run as a non-root user and carry nothing but the binary.
func TestDockerfiles(t *testing.T) {
	wantGo := "golang:" + goVersion(t)
	for _, path := range dockerfiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			stages := dockerStages(t, path)
			if len(stages) < 2 {
				t.Fatalf("%d stage(s); want a multi-stage build", len(stages))
			}
			images := imageStages(stages)
			builders := slices.DeleteFunc(slices.Clone(stages), func(s stage) bool {
				return slices.ContainsFunc(images, func(i stage) bool { return i.Name == s.Name })
			})
			if len(images) == 0 || len(builders) == 0 {
				t.Fatalf("want builder and image stages, got %d builders and %d images", len(builders), len(images))
			}
			for _, b := range builders {
				t.Run("builder "+b.Name, func(t *testing.T) { checkBuilder(t, b, wantGo) })
			}
			for _, img := range images {
				t.Run("image "+img.Name, func(t *testing.T) { checkImage(t, img, stages) })
			}
		})
	}
}

func checkBuilder(t *testing.T, b stage, wantGo string) {
	if !strings.HasPrefix(b.BaseName, wantGo) {
		t.Errorf("builder FROM %s, want %s (the Go version in go.mod)", b.BaseName, wantGo)
	}
	cgoOff := false
	for _, e := range commands[*instructions.EnvCommand](b) {
		for _, kv := range e.Env {
			cgoOff = cgoOff || (kv.Key == "CGO_ENABLED" && kv.Value == "0")
		}
	}
	built := false
	for _, r := range commands[*instructions.RunCommand](b) {
		line := strings.Join(r.CmdLine, " ")
		if !strings.Contains(line, "go build") {
			continue
		}
		built = true
		cgoOff = cgoOff || strings.Contains(line, "CGO_ENABLED=0")
		for _, flag := range []string{"-trimpath", "-s -w"} {
			if !strings.Contains(line, flag) {
				t.Errorf("go build without %s: %s", flag, line)
			}
		}
		// The mounts' values are read when BuildKit expands the command;
		// this Dockerfile has no build arguments in them to substitute.
		if err := r.Expand(func(word string) (string, error) { return word, nil }); err != nil {
			t.Fatalf("RUN --mount: %v", err)
		}
		if !slices.ContainsFunc(instructions.GetMounts(r), func(m *instructions.Mount) bool {
			return m.Type == instructions.MountTypeCache && m.Target == "/go/pkg/mod"
		}) {
			t.Errorf("go build without a cache mount on /go/pkg/mod: every build downloads the modules again")
		}
	}
	if !built {
		t.Error("builder stage runs no go build")
	}
	if !cgoOff {
		t.Error("CGO_ENABLED=0 is not set: the binaries would not be static")
	}
}

func checkImage(t *testing.T, img stage, stages []stage) {
	if !smallBase.MatchString(img.BaseName) {
		t.Errorf("FROM %s; want scratch or distroless static", img.BaseName)
	}
	users := commands[*instructions.UserCommand](img)
	if len(users) == 0 {
		t.Fatal("no USER: the container would run as root")
	}
	user, _, _ := strings.Cut(users[len(users)-1].User, ":")
	if user == "" || user == "0" || user == "root" || strings.Trim(user, "0123456789") != "" {
		t.Errorf("USER %q; want a numeric non-root UID (Kubernetes' runAsNonRoot can only check a number)", users[len(users)-1].User)
	}
	for _, cp := range commands[*instructions.CopyCommand](img) {
		if !slices.ContainsFunc(stages, func(s stage) bool { return strings.EqualFold(s.Name, cp.From) }) {
			t.Errorf("COPY %v comes from the build context, not a builder stage: the image would carry sources", cp.SourcePaths)
		}
	}
	entry := commands[*instructions.EntrypointCommand](img)
	if len(entry) == 0 || entry[0].PrependShell {
		t.Fatal("no exec-form ENTRYPOINT: distroless has no shell to run a shell form")
	}
	bin := filepath.Base(entry[0].CmdLine[0])
	if bin != img.Name {
		t.Errorf("ENTRYPOINT runs %s in image %s; each image runs the binary it is named for", bin, img.Name)
	}
	if len(commands[*instructions.ExposeCommand](img)) == 0 {
		t.Error("no EXPOSE for the port the binary listens on")
	}
	for _, h := range commands[*instructions.HealthCheckCommand](img) {
		if len(h.Health.Test) < 2 || h.Health.Test[0] != "CMD" || h.Health.Test[1] != entry[0].CmdLine[0] {
			t.Errorf("HEALTHCHECK %q; want CMD %s healthcheck (no shell in the image)", h.Health.Test, entry[0].CmdLine[0])
		}
	}
}

// TestDockerignoreKeepsBuildInputs checks that .dockerignore lets through
// every file the images' go build reads, and nothing of the rest.
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	root := repoRoot(t)
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"list", "-deps", "-f", `{{if not .Standard}}{{range .GoFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{end}}`}
	for _, name := range slices.Sorted(maps.Keys(binaryPackages)) {
		args = append(args, binaryPackages[name])
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	inputs := []string{"go.mod", "go.sum"}
	for line := range strings.Lines(string(out)) {
		rel, err := filepath.Rel(root, strings.TrimSpace(line))
		if err == nil && !strings.HasPrefix(rel, "..") {
			inputs = append(inputs, filepath.ToSlash(rel))
		}
	}
	if len(inputs) < 10 {
		t.Fatalf("go list found only %v", inputs)
	}
	for _, path := range inputs {
		if ignored, err := pm.MatchesOrParentMatches(path); err != nil || ignored {
			t.Errorf("%s is needed by the build but .dockerignore leaves it out (err %v)", path, err)
		}
	}
	for _, path := range []string{".git/config", "deploy/deploytest/compose_test.go", "shared/mediatype/testdata/accept/image.png", "compose.yaml"} {
		if ignored, _ := pm.MatchesOrParentMatches(path); !ignored {
			t.Errorf("%s is sent to the image build; want it ignored", path)
		}
	}
}
