package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "celpolicy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

func TestDefaults(t *testing.T) {
	c, err := Load(Sources{Flags: map[string]string{"policies": "p/"}})
	require.NoError(t, err)
	assert.Equal(t, &Config{Policies: []string{"p/"}, Listen: ":8080", MetricsPath: "/metrics", LogLevel: "info",
		LogFormat: "json", CacheImages: 10000, TagTTL: 30 * time.Second, Concurrency: 8, Combining: engine.Priority,
		ReloadDebounce: 200 * time.Millisecond, ShutdownTimeout: 30 * time.Second}, c)
}

func TestPrecedenceFlagEnvFileDefault(t *testing.T) {
	file := writeConfig(t, `policies: [a/, b.yaml]
listen: 127.0.0.1:9000
log:
  level: debug
  format: text
cache:
  tagTTL: 1m
concurrency: 4
`)
	c, err := Load(Sources{
		File:  file,
		Env:   env(map[string]string{"CELPOLICY_LOG_LEVEL": "warn", "CELPOLICY_CONCURRENCY": "16", "CELPOLICY_CACHE_TAG_TTL": "2m"}),
		Flags: map[string]string{"concurrency": "32"},
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"a/", "b.yaml"}, c.Policies) // file
	assert.Equal(t, "127.0.0.1:9000", c.Listen)           // file
	assert.Equal(t, "text", c.LogFormat)                  // file
	assert.Equal(t, "warn", c.LogLevel)                   // env over file
	assert.Equal(t, 2*time.Minute, c.TagTTL)              // env over file
	assert.Equal(t, 32, c.Concurrency)                    // flag over env over file
	assert.Equal(t, "/metrics", c.MetricsPath)            // default
}

func TestValidationErrors(t *testing.T) {
	file := writeConfig(t, "policies: [p/]\nlog:\n  level: loud\n  colour: red\nconcurrency: -1\nlisten: 8080\n")
	_, err := Load(Sources{File: file})
	require.Error(t, err)
	assert.Contains(t, err.Error(), file+`:4:3: unknown setting "log.colour"`)

	file = writeConfig(t, "policies: [p/]\nlog:\n  level: loud\nconcurrency: -1\nlisten: 8080\n")
	_, err = Load(Sources{File: file,
		Env:   env(map[string]string{"CELPOLICY_COMBINING": "max"}),
		Flags: map[string]string{"cache-tag-ttl": "soon", "colour": "red"}})
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, file+`:3:10: log.level: "loud": want one of debug, info, warn, error`)
	assert.Contains(t, msg, file+`:4:14: concurrency: "-1": want a whole number greater than zero`)
	assert.Contains(t, msg, file+`:5:9: listen: "8080": want host:port or :port`)
	assert.Contains(t, msg, `environment CELPOLICY_COMBINING="max": unknown combining algorithm "max"`)
	assert.Contains(t, msg, `flag --cache-tag-ttl="soon": want a positive duration`)
	assert.Contains(t, msg, `flag --colour: not a setting`)

	_, err = Load(Sources{})
	assert.ErrorContains(t, err, "no policy paths")
	_, err = Load(Sources{File: "/nonexistent/celpolicy.yaml"})
	assert.ErrorContains(t, err, "read configuration")
}

func TestExampleConfigIsValid(t *testing.T) {
	c, err := Load(Sources{File: "../../examples/celpolicy.yaml"})
	require.NoError(t, err)
	assert.Equal(t, []string{"examples/policies"}, c.Policies)
}

func TestNames(t *testing.T) {
	for _, s := range Settings() {
		if s.Key == "cache.tagTTL" {
			assert.Equal(t, "cache-tag-ttl", s.Flag)
			assert.Equal(t, "CELPOLICY_CACHE_TAG_TTL", s.Env)
		}
	}
}
