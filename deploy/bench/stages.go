package main

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// stageTimes is the total time and count of each step of an upload, keyed
// "<process>.<step>", as the processes' stage histograms count them.
type stageTimes map[string]stageTime

type stageTime struct {
	seconds float64
	count   float64
}

// add reads Prometheus' text format from r and adds every
// *_stage_duration_seconds histogram's sum and count under prefix.
func (st stageTimes) add(prefix string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), `_stage_duration_seconds_`)
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		kind, rest, ok := strings.Cut(rest, `{stage="`)
		if !ok || (kind != "sum" && kind != "count") {
			continue
		}
		stage, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		k := prefix + "." + stage
		t := st[k]
		if kind == "sum" {
			t.seconds += v
		} else {
			t.count += v
		}
		st[k] = t
	}
}

// meansSince returns each step's mean in milliseconds over what was
// counted between before and st.
func (st stageTimes) meansSince(before stageTimes) map[string]float64 {
	out := map[string]float64{}
	for k, t := range st {
		b := before[k]
		if n := t.count - b.count; n > 0 {
			out[k] = 1000 * (t.seconds - b.seconds) / n
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
