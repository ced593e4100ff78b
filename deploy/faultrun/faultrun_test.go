package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/sigfollow/media/shared/testenv"
)

// TestShortFaultRun is `make faults -short` inside `make test`: the stack
// as separate processes under load, through worker crashes, a rolling
// restart, NATS and MinIO outages and Meta failures, must lose and leak
// nothing.
func TestShortFaultRun(t *testing.T) {
	minio := testenv.MinIOBinary(t)
	bin := t.TempDir()
	for _, name := range []string{"ingest", "worker"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(bin, name), "../../"+name).CombinedOutput()
		if err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, out)
		}
	}
	env := map[string]string{"SIGFOLLOW_MINIO_BIN": minio, "PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME"), "TMPDIR": os.Getenv("TMPDIR")}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"faultrun", "-short", "-dir", t.TempDir(),
		"-ingest", filepath.Join(bin, "ingest"), "-worker", filepath.Join(bin, "worker")},
		func(k string) string { return env[k] }, &stdout, &stderr)
	t.Log("\n" + stdout.String())
	if err != nil {
		t.Log(stderr.String())
		t.Fatal(err)
	}

	count := func(row string) int {
		t.Helper()
		m := regexp.MustCompile(`(?m)^` + row + `\s+(\d+)`).FindStringSubmatch(stdout.String())
		if m == nil {
			t.Fatalf("report has no %q row", row)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if got := count("accepted"); got != 80 {
		t.Errorf("%d of 80 uploads accepted; every upload must get through once the outages end", got)
	}
	if count("succeeded")+count("failed") != count("accepted") {
		t.Error("accepted uploads without a terminal state")
	}
	if count("lost") != 0 || count("leaked") != 0 {
		t.Error("lost or leaked uploads")
	}
	if count("refused") == 0 {
		t.Error("no upload was refused with 503: the NATS and MinIO outages did not happen")
	}
}
