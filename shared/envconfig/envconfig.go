package envconfig

import (
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Parse fills cfg, a pointer to a struct with `env` tags, from getenv. An
// empty value counts as unset, so defaults apply.
func Parse(cfg any, getenv func(string) string) error {
	params, err := env.GetFieldParams(cfg)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	vars := make(map[string]string, len(params))
	for _, p := range params {
		if v := getenv(p.Key); v != "" {
			vars[p.Key] = v
		}
	}
	if err := env.ParseWithOptions(cfg, env.Options{Environment: vars}); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// Names lists the environment variables cfg reads, sorted.
func Names(cfg any) ([]string, error) {
	params, err := env.GetFieldParams(cfg)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(params))
	for _, p := range params {
		names = append(names, p.Key)
	}
	sort.Strings(names)
	return names, nil
}

// LogValue renders cfg for a log line: every field by its variable name, with
// fields tagged `secret:"true"` shown only as set or unset.
func LogValue(cfg any) slog.Value {
	v := reflect.Indirect(reflect.ValueOf(cfg))
	var attrs []slog.Attr
	collect(v, &attrs)
	return slog.GroupValue(attrs...)
}

func collect(v reflect.Value, attrs *[]slog.Attr) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Tag.Get("env")
		if name == "" {
			if fv.Kind() == reflect.Struct {
				collect(fv, attrs)
			}
			continue
		}
		name, _, _ = strings.Cut(name, ",")
		if f.Tag.Get("secret") == "true" {
			*attrs = append(*attrs, slog.String(name, redact(fv)))
			continue
		}
		*attrs = append(*attrs, slog.Any(name, fv.Interface()))
	}
}

func redact(v reflect.Value) string {
	if v.IsZero() {
		return "(unset)"
	}
	if v.Kind() == reflect.Map {
		return fmt.Sprintf("(%d set)", v.Len())
	}
	return "(set)"
}
