// Command ingest is SigFollow's media API: it accepts multipart uploads on
// POST /v1/{phoneNumberId}/media, validates and stages them, and queues them
// for the workers. `ingest keys` manages API keys; `ingest env` lists the
// environment variables it reads.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}
