package deploytest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// binaryPackages are the commands the images ship, by binary name (which is
// also the Dockerfile target that builds each image).
var binaryPackages = map[string]string{
	"ingest":    "./ingest",
	"worker":    "./worker",
	"fakegraph": "./deploy/fakegraph",
}

// binDir is where TestMain builds the binaries, once, on first use.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deploytest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot returns the repository's root directory.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		tb.Fatalf("repository root not found above the test directory: %v", err)
	}
	return root
}

var buildOnce = sync.OnceValue(func() error {
	args := []string{"build", "-o", binDir + string(filepath.Separator)}
	for _, name := range slices.Sorted(maps.Keys(binaryPackages)) {
		args = append(args, binaryPackages[name])
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
})

// binary returns the path of the named binary, built from the working tree.
func binary(tb testing.TB, name string) string {
	tb.Helper()
	if _, ok := binaryPackages[name]; !ok {
		tb.Fatalf("no binary called %q (known: %v)", name, slices.Sorted(maps.Keys(binaryPackages)))
	}
	if err := buildOnce(); err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(binDir, name)
}

// runBinary runs a built binary with exactly env as its environment (an
// empty, non-nil env for none at all).
func runBinary(tb testing.TB, name string, env []string, args ...string) (stdout, stderr string, err error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(tb, name), args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

var envName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// envNames returns the environment variables a binary reads, from the first
// word of each line `<binary> env` prints. It skips the test if the binary
// has no env subcommand.
func envNames(tb testing.TB, name string) map[string]bool {
	tb.Helper()
	out, errOut, err := runBinary(tb, name, []string{}, "env")
	if err != nil {
		if strings.Contains(errOut, "unknown command") {
			tb.Skipf("%s has no env subcommand, so the variables it reads are unknown: %s", name, errOut)
		}
		tb.Fatalf("%s env: %v\n%s", name, err, errOut)
	}
	names := map[string]bool{}
	for line := range strings.Lines(out) {
		fields := strings.Fields(line)
		if len(fields) > 0 && envName.MatchString(fields[0]) {
			names[fields[0]] = true
		}
	}
	if len(names) == 0 {
		tb.Fatalf("%s env printed no variable names:\n%s", name, out)
	}
	return names
}

// assertReads fails for every name in set that binary does not read.
func assertReads(tb testing.TB, binary, where string, set []string) {
	tb.Helper()
	reads := envNames(tb, binary)
	for _, name := range set {
		if !reads[name] {
			tb.Errorf("%s sets %s, which %s does not read (it reads %v)", where, name, binary, slices.Sorted(maps.Keys(reads)))
		}
	}
}
