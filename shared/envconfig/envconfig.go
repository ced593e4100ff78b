package envconfig

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"sort"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Parse fills cfg, a pointer to a struct with `env` tags, from getenv. An
// empty value counts as unset, so defaults apply. An invalid value is
// reported by its variable name, and never shown if the field is secret.
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
		return fmt.Errorf("config: %w", explain(err, cfg))
	}
	return nil
}

// explain rewrites env's parse errors, which name the Go field and quote
// the value, to name the variable instead, and to leave a secret's value out.
func explain(err error, cfg any) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	byField := map[string][]setting{}
	for _, s := range settings(reflect.Indirect(reflect.ValueOf(cfg)), "", nil) {
		byField[s.field.Name] = append(byField[s.field.Name], s)
	}
	out := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) || len(byField[pe.Name]) == 0 {
			out = append(out, e)
			continue
		}
		var keys []string
		secret := false
		for _, s := range byField[pe.Name] {
			keys = append(keys, s.key)
			secret = secret || s.secret()
		}
		name := strings.Join(keys, " or ")
		if secret {
			out = append(out, fmt.Errorf("%s: not a valid %s (the value is secret and not shown)", name, pe.Type))
			continue
		}
		out = append(out, fmt.Errorf("%s: invalid value: %w", name, pe.Err))
	}
	return errors.Join(out...)
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

// LogValue renders cfg for a log line: every field by its variable name
// (with the prefixes of nested structs), with fields tagged `secret:"true"`
// shown only as set or unset, and passwords in URLs masked.
func LogValue(cfg any) slog.Value {
	var attrs []slog.Attr
	for _, s := range settings(reflect.Indirect(reflect.ValueOf(cfg)), "", nil) {
		if s.secret() {
			attrs = append(attrs, slog.String(s.key, redact(s.value)))
			continue
		}
		attrs = append(attrs, slog.Any(s.key, withoutPassword(s.value.Interface())))
	}
	return slog.GroupValue(attrs...)
}

// setting is one field of a config struct that a variable sets.
type setting struct {
	field reflect.StructField
	value reflect.Value
	key   string // the variable's name, prefixes included
}

func (s setting) secret() bool { return s.field.Tag.Get("secret") == "true" }

// settings appends the settings of the struct v, and of the structs nested
// in it, to out.
func settings(v reflect.Value, prefix string, out []setting) []setting {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if name == "" {
			if fv.Kind() == reflect.Pointer && !fv.IsNil() {
				fv = fv.Elem()
			}
			if fv.Kind() == reflect.Struct {
				out = settings(fv, prefix+f.Tag.Get("envPrefix"), out)
			}
			continue
		}
		out = append(out, setting{field: f, value: fv, key: prefix + name})
	}
	return out
}

// withoutPassword masks the password of a URL-shaped value (a NATS or S3
// URL with credentials in it), which is a secret even in a field that is not.
func withoutPassword(v any) any {
	switch x := v.(type) {
	case string:
		if u, err := url.Parse(x); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				return u.Redacted()
			}
		}
	case url.URL:
		return x.Redacted()
	case *url.URL:
		if x != nil {
			return x.Redacted()
		}
	}
	return v
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
