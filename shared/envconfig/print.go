package envconfig

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/caarlos0/env/v11"
)

// Print writes one line per environment variable cfg reads: its name
// first, then its default, or that it is required.
func Print(w io.Writer, cfg any) error {
	params, err := env.GetFieldParams(cfg)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, p := range params {
		def := "default " + p.DefaultValue
		if p.DefaultValue == "" {
			def = "no default"
		}
		if p.Required {
			def = "required"
		}
		fmt.Fprintf(tw, "%s\t%s\n", p.Key, def)
	}
	return tw.Flush()
}
