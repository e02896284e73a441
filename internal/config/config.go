package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/celpolicy/celpolicy/engine"
	"gopkg.in/yaml.v3"
)

// Config is the service configuration.
type Config struct {
	Policies        []string
	Listen          string
	MetricsPath     string
	LogLevel        string
	LogFormat       string
	CacheImages     int
	TagTTL          time.Duration
	Concurrency     int
	Combining       engine.Combining
	ReloadDebounce  time.Duration
	PollInterval    time.Duration
	ShutdownTimeout time.Duration
	// NotifySecretFile holds the HMAC-SHA256 key that signs webhook
	// notifications; empty for unsigned ones.
	NotifySecretFile string
}

// Setting is one configuration setting, under the names it has in the
// file (Key), the environment (Env) and on the command line (Flag).
type Setting struct {
	Key     string // e.g. "log.level"
	Env     string // e.g. "CELPOLICY_LOG_LEVEL"
	Flag    string // e.g. "log-level"
	Default string
	Help    string
	set     func(c *Config, v string) error
}

// Settings lists every setting, in the order of docs and --help.
func Settings() []Setting {
	s := []Setting{
		{Key: "policies", Default: "", Help: "policy files or directories, comma-separated (required)",
			set: func(c *Config, v string) error { c.Policies = splitList(v); return nil }},
		{Key: "listen", Default: ":8080", Help: "address of the HTTP server (/metrics, /healthz, /readyz)",
			set: func(c *Config, v string) error {
				if _, _, err := net.SplitHostPort(v); err != nil {
					return fmt.Errorf("want host:port or :port: %v", err)
				}
				c.Listen = v
				return nil
			}},
		{Key: "metrics.path", Default: "/metrics", Help: "path of the Prometheus metrics",
			set: func(c *Config, v string) error {
				if !strings.HasPrefix(v, "/") || v == "/healthz" || v == "/readyz" {
					return errors.New("want a path starting with / other than /healthz and /readyz")
				}
				c.MetricsPath = v
				return nil
			}},
		{Key: "log.level", Default: "info", Help: "debug, info, warn or error",
			set: oneOf(func(c *Config, v string) { c.LogLevel = v }, "debug", "info", "warn", "error")},
		{Key: "log.format", Default: "json", Help: "json or text",
			set: oneOf(func(c *Config, v string) { c.LogFormat = v }, "json", "text")},
		{Key: "cache.images", Default: "10000", Help: "image metadata entries kept, by digest",
			set: positiveInt(func(c *Config, n int) { c.CacheImages = n })},
		{Key: "cache.tagTTL", Default: "30s", Help: "how long a tag's digest is trusted before it is checked again",
			set: duration(func(c *Config, d time.Duration) { c.TagTTL = d }, false)},
		{Key: "concurrency", Default: "8", Help: "registry requests and copies in flight",
			set: positiveInt(func(c *Config, n int) { c.Concurrency = n })},
		{Key: "combining", Default: "priority", Help: "combining algorithm: priority, deny-overrides or first-match",
			set: func(c *Config, v string) error {
				comb, err := engine.ParseCombining(v)
				c.Combining = comb
				return err
			}},
		{Key: "reload.debounce", Default: "200ms", Help: "quiet time after policy file writes before reloading",
			set: duration(func(c *Config, d time.Duration) { c.ReloadDebounce = d }, true)},
		{Key: "reload.pollInterval", Default: "0s", Help: "poll policy files this often instead of file events (0: events)",
			set: duration(func(c *Config, d time.Duration) { c.PollInterval = d }, true)},
		{Key: "notify.secretFile", Default: "", Help: "file holding the key that signs notifications (X-Celpolicy-Signature)",
			set: func(c *Config, v string) error { c.NotifySecretFile = v; return nil }},
		{Key: "shutdown.timeout", Default: "30s", Help: "how long shutdown waits for running passes and requests",
			set: duration(func(c *Config, d time.Duration) { c.ShutdownTimeout = d }, false)},
	}
	for i := range s {
		s[i].Flag = flagName(s[i].Key)
		s[i].Env = "CELPOLICY_" + strings.ToUpper(strings.ReplaceAll(s[i].Flag, "-", "_"))
	}
	return s
}

// flagName turns "cache.tagTTL" into "cache-tag-ttl".
func flagName(key string) string {
	var b strings.Builder
	prevLower := false
	for _, r := range key {
		switch {
		case r == '.':
			b.WriteByte('-')
			prevLower = false
		case r >= 'A' && r <= 'Z':
			if prevLower {
				b.WriteByte('-')
			}
			b.WriteRune(r + 'a' - 'A')
			prevLower = false
		default:
			b.WriteRune(r)
			prevLower = true
		}
	}
	return b.String()
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func oneOf(set func(*Config, string), allowed ...string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if !slices.Contains(allowed, v) {
			return fmt.Errorf("want one of %s", strings.Join(allowed, ", "))
		}
		set(c, v)
		return nil
	}
}

func positiveInt(set func(*Config, int)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return errors.New("want a whole number greater than zero")
		}
		set(c, n)
		return nil
	}
}

func duration(set func(*Config, time.Duration), zeroOK bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || (d == 0 && !zeroOK) {
			return errors.New("want a positive duration such as 500ms, 30s or 5m")
		}
		set(c, d)
		return nil
	}
}

// Sources of configuration values, lowest precedence first.
type Sources struct {
	// File is the path of celpolicy.yaml; empty for none.
	File string
	// Env looks up environment variables; os.LookupEnv in production.
	Env func(string) (string, bool)
	// Flags are the flags given on the command line, by flag name.
	Flags map[string]string
}

// Load builds the configuration from defaults, file, environment and
// flags, in that order of precedence (flags win), and validates it. The
// error lists every problem, each naming the setting and its source.
func Load(src Sources) (*Config, error) {
	c := &Config{}
	var errs []string
	settings := Settings()
	for _, s := range settings {
		if err := s.set(c, s.Default); err != nil && s.Default != "" {
			return nil, fmt.Errorf("default of %s: %w", s.Key, err)
		}
	}
	if src.File != "" {
		values, err := readFile(src.File)
		if err != nil {
			return nil, err
		}
		for _, s := range settings {
			if v, ok := values[s.Key]; ok {
				if err := s.set(c, v.value); err != nil {
					errs = append(errs, fmt.Sprintf("%s:%d:%d: %s: %q: %v", src.File, v.line, v.col, s.Key, v.value, err))
				}
			}
		}
	}
	if src.Env != nil {
		for _, s := range settings {
			if v, ok := src.Env(s.Env); ok {
				if err := s.set(c, v); err != nil {
					errs = append(errs, fmt.Sprintf("environment %s=%q: %v", s.Env, v, err))
				}
			}
		}
	}
	for name, v := range src.Flags {
		i := slices.IndexFunc(settings, func(s Setting) bool { return s.Flag == name })
		if i < 0 {
			errs = append(errs, fmt.Sprintf("flag --%s: not a setting", name))
			continue
		}
		if err := settings[i].set(c, v); err != nil {
			errs = append(errs, fmt.Sprintf("flag --%s=%q: %v", name, v, err))
		}
	}
	if len(c.Policies) == 0 {
		errs = append(errs, "policies: no policy paths: set policies in the file, CELPOLICY_POLICIES or --policies")
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	return c, nil
}

type fileValue struct {
	value     string
	line, col int
}

// readFile reads celpolicy.yaml into setting keys ("log.level") with
// positions; lists become comma-separated values. Unknown keys are errors.
func readFile(path string) (map[string]fileValue, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: invalid YAML: %w", path, err)
	}
	out := map[string]fileValue{}
	if len(doc.Content) == 0 {
		return out, nil
	}
	known := map[string]bool{}
	for _, s := range Settings() {
		known[s.Key] = true
	}
	var errs []string
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			errs = append(errs, fmt.Sprintf("%s:%d:%d: %s: expected a mapping", path, n.Line, n.Column, strings.TrimSuffix(prefix, ".")))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := prefix + k.Value
			switch {
			case known[key]:
				switch v.Kind {
				case yaml.ScalarNode:
					out[key] = fileValue{v.Value, v.Line, v.Column}
				case yaml.SequenceNode:
					var items []string
					for _, item := range v.Content {
						items = append(items, item.Value)
					}
					out[key] = fileValue{strings.Join(items, ","), v.Line, v.Column}
				default:
					errs = append(errs, fmt.Sprintf("%s:%d:%d: %s: expected a value", path, v.Line, v.Column, key))
				}
			case v.Kind == yaml.MappingNode && hasPrefix(known, key+"."):
				walk(v, key+".")
			default:
				errs = append(errs, fmt.Sprintf("%s:%d:%d: unknown setting %q", path, k.Line, k.Column, key))
			}
		}
	}
	walk(doc.Content[0], "")
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	return out, nil
}

func hasPrefix(known map[string]bool, prefix string) bool {
	for k := range known {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}
