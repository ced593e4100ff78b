package envconfig_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigfollow/media/shared/envconfig"
)

// S3 is a nested group of settings with its own prefix.
type S3 struct {
	Endpoint  string `env:"ENDPOINT" envDefault:"http://127.0.0.1:9000"`
	SecretKey string `env:"SECRET_KEY" secret:"true"`
}

// Common is embedded without a prefix.
type Common struct {
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
}

type config struct {
	Common
	NATSURL     string            `env:"NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	Concurrency int               `env:"WORKER_CONCURRENCY" envDefault:"4"`
	AckWait     time.Duration     `env:"WORKER_ACK_WAIT" envDefault:"60s"`
	Debug       bool              `env:"DEBUG"`
	Origins     []string          `env:"ORIGINS" envSeparator:","`
	Token       string            `env:"META_ACCESS_TOKEN,required" secret:"true"`
	PhoneTokens map[string]string `env:"META_PHONE_TOKENS" envSeparator:"," envKeyValSeparator:":" secret:"true"`
	DevKey      string            `env:"SIGFOLLOW_DEV_API_KEY" secret:"true"`
	Callback    *url.URL          `env:"CALLBACK_URL"`
	S3          S3                `envPrefix:"S3_"`
	internal    string
}

func getenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		vars  map[string]string
		check func(t *testing.T, c config)
		err   string // parts of the error, separated by |, when Parse must fail
	}{
		{
			name: "defaults",
			vars: map[string]string{"META_ACCESS_TOKEN": "EAAG"},
			check: func(t *testing.T, c config) {
				if c.NATSURL != "nats://127.0.0.1:4222" || c.Concurrency != 4 || c.AckWait != time.Minute || c.Debug ||
					c.LogLevel != "info" || c.S3.Endpoint != "http://127.0.0.1:9000" || c.Origins != nil || c.PhoneTokens != nil || c.Callback != nil {
					t.Errorf("defaults: %+v", c)
				}
			},
		},
		{
			name: "every kind of value",
			vars: map[string]string{
				"META_ACCESS_TOKEN": "EAAG", "NATS_URL": "nats://nats:4222", "WORKER_CONCURRENCY": "16", "WORKER_ACK_WAIT": "90s",
				"DEBUG": "true", "ORIGINS": "a,b", "META_PHONE_TOKENS": "1:t1,2:t2", "LOG_LEVEL": "debug",
				"S3_ENDPOINT": "http://minio:9000", "S3_SECRET_KEY": "minio-secret", "CALLBACK_URL": "https://example.test/hook",
			},
			check: func(t *testing.T, c config) {
				if c.NATSURL != "nats://nats:4222" || c.Concurrency != 16 || c.AckWait != 90*time.Second || !c.Debug ||
					!slices.Equal(c.Origins, []string{"a", "b"}) || c.PhoneTokens["1"] != "t1" || c.PhoneTokens["2"] != "t2" ||
					c.LogLevel != "debug" || c.S3.Endpoint != "http://minio:9000" || c.S3.SecretKey != "minio-secret" ||
					c.Callback == nil || c.Callback.Host != "example.test" {
					t.Errorf("parsed: %+v", c)
				}
			},
		},
		{
			name: "empty values count as unset",
			vars: map[string]string{"META_ACCESS_TOKEN": "EAAG", "NATS_URL": "", "WORKER_CONCURRENCY": "", "S3_ENDPOINT": "", "LOG_LEVEL": ""},
			check: func(t *testing.T, c config) {
				if c.NATSURL != "nats://127.0.0.1:4222" || c.Concurrency != 4 || c.S3.Endpoint != "http://127.0.0.1:9000" || c.LogLevel != "info" {
					t.Errorf("empty values did not fall back to the defaults: %+v", c)
				}
			},
		},
		{name: "required missing", vars: map[string]string{}, err: "META_ACCESS_TOKEN"},
		{name: "required empty", vars: map[string]string{"META_ACCESS_TOKEN": ""}, err: "META_ACCESS_TOKEN"},
		{name: "bad number", vars: map[string]string{"META_ACCESS_TOKEN": "x", "WORKER_CONCURRENCY": "four"}, err: "WORKER_CONCURRENCY"},
		{name: "bad duration", vars: map[string]string{"META_ACCESS_TOKEN": "x", "WORKER_ACK_WAIT": "60"}, err: "WORKER_ACK_WAIT"},
		{name: "bad bool", vars: map[string]string{"META_ACCESS_TOKEN": "x", "DEBUG": "sure"}, err: "DEBUG"},
		{name: "bad secret map", vars: map[string]string{"META_ACCESS_TOKEN": "x", "META_PHONE_TOKENS": "106540352242922-EAAGsecret"}, err: "META_PHONE_TOKENS: not a valid map[string]string"},
		{name: "bad URL", vars: map[string]string{"META_ACCESS_TOKEN": "x", "CALLBACK_URL": "://nope"}, err: "CALLBACK_URL: invalid value"},
		{name: "two bad values", vars: map[string]string{"META_ACCESS_TOKEN": "x", "DEBUG": "sure", "WORKER_CONCURRENCY": "four"}, err: "WORKER_CONCURRENCY: invalid value|DEBUG: invalid value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c config
			err := envconfig.Parse(&c, getenv(tt.vars))
			if tt.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), "config: ") {
					t.Fatalf("Parse = %v, want a config error", err)
				}
				for _, want := range strings.Split(tt.err, "|") {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				if strings.Contains(err.Error(), "EAAGsecret") {
					t.Errorf("the error shows a secret value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, c)
		})
	}
}

// TestParseReadsOnlyGetenv: the process environment is never consulted.
func TestParseReadsOnlyGetenv(t *testing.T) {
	t.Setenv("META_ACCESS_TOKEN", "from-the-process")
	t.Setenv("WORKER_CONCURRENCY", "99")
	var asked []string
	var c config
	err := envconfig.Parse(&c, func(k string) string {
		asked = append(asked, k)
		if k == "META_ACCESS_TOKEN" {
			return "from-getenv"
		}
		return ""
	})
	if err != nil || c.Token != "from-getenv" || c.Concurrency != 4 {
		t.Fatalf("Parse = %v, %+v: read the process environment", err, c)
	}
	names, _ := envconfig.Names(&c)
	slices.Sort(asked)
	if !slices.Equal(asked, names) {
		t.Errorf("asked getenv for %v, want exactly %v", asked, names)
	}
}

func TestParseFile(t *testing.T) {
	type withFile struct {
		Token string `env:"TOKEN_FILE,file" secret:"true"`
	}
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("from-a-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	var c withFile
	if err := envconfig.Parse(&c, getenv(map[string]string{"TOKEN_FILE": path})); err != nil || c.Token != "from-a-file" {
		t.Fatalf("Parse = %v, %q", err, c.Token)
	}
	if err := envconfig.Parse(&c, getenv(map[string]string{"TOKEN_FILE": path + ".missing"})); err == nil {
		t.Error("a missing file was accepted")
	}
}

func TestParseRejectsNonPointer(t *testing.T) {
	if err := envconfig.Parse(config{}, getenv(nil)); err == nil {
		t.Error("Parse of a struct value succeeded")
	}
	if _, err := envconfig.Names(config{}); err == nil {
		t.Error("Names of a struct value succeeded")
	}
}

func TestNames(t *testing.T) {
	names, err := envconfig.Names(&config{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"CALLBACK_URL", "DEBUG", "LOG_LEVEL", "META_ACCESS_TOKEN", "META_PHONE_TOKENS", "NATS_URL", "ORIGINS",
		"S3_ENDPOINT", "S3_SECRET_KEY", "SIGFOLLOW_DEV_API_KEY", "WORKER_ACK_WAIT", "WORKER_CONCURRENCY",
	}
	if !slices.Equal(names, want) {
		t.Errorf("Names = %v\nwant %v", names, want)
	}
}

func TestLogValue(t *testing.T) {
	const (
		token    = "EAAG-very-secret-token"
		s3secret = "minio-secret-key"
		phoneTok = "phone-token-value"
		natsPass = "nats-password"
	)
	var c config
	err := envconfig.Parse(&c, getenv(map[string]string{
		"META_ACCESS_TOKEN": token, "S3_SECRET_KEY": s3secret, "META_PHONE_TOKENS": "1:" + phoneTok + ",2:x",
		"NATS_URL": "nats://ingest:" + natsPass + "@nats:4222", "CALLBACK_URL": "https://hook:" + natsPass + "@example.test/cb",
		"WORKER_CONCURRENCY": "7",
	}))
	if err != nil {
		t.Fatal(err)
	}
	c.internal = "unexported"

	for _, h := range []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
	} {
		t.Run(h.name, func(t *testing.T) {
			var buf bytes.Buffer
			slog.New(h.new(&buf)).Info("starting", "config", envconfig.LogValue(&c))
			line := buf.String()
			for _, secret := range []string{token, s3secret, phoneTok, natsPass, "unexported"} {
				if strings.Contains(line, secret) {
					t.Errorf("the log line shows %q: %s", secret, line)
				}
			}
			if h.name != "json" {
				return
			}
			var rec struct{ Config map[string]any }
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{
				"META_ACCESS_TOKEN":     "(set)",
				"SIGFOLLOW_DEV_API_KEY": "(unset)",
				"META_PHONE_TOKENS":     "(2 set)",
				"S3_SECRET_KEY":         "(set)",
				"S3_ENDPOINT":           "http://127.0.0.1:9000",
				"LOG_LEVEL":             "info",
				"WORKER_CONCURRENCY":    float64(7),
				"NATS_URL":              "nats://ingest:xxxxx@nats:4222",
				"CALLBACK_URL":          "https://hook:xxxxx@example.test/cb",
			}
			for k, v := range want {
				if rec.Config[k] != v {
					t.Errorf("%s = %v, want %v", k, rec.Config[k], v)
				}
			}
			names, _ := envconfig.Names(&config{})
			if len(rec.Config) != len(names) {
				t.Errorf("the log line has %d settings, the config reads %d variables: %v", len(rec.Config), len(names), rec.Config)
			}
		})
	}
}

func TestLogValueUnsetSecrets(t *testing.T) {
	var c config
	v := envconfig.LogValue(c) // a value works as well as a pointer
	got := map[string]string{}
	for _, a := range v.Group() {
		got[a.Key] = a.Value.String()
	}
	for _, k := range []string{"META_ACCESS_TOKEN", "META_PHONE_TOKENS", "S3_SECRET_KEY", "SIGFOLLOW_DEV_API_KEY"} {
		if got[k] != "(unset)" {
			t.Errorf("%s = %q, want (unset)", k, got[k])
		}
	}
}
