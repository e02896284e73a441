package service

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/internal/config"
	"github.com/celpolicy/celpolicy/telemetry"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const policyYAML = `apiVersion: celpolicy.dev/v1
kind: Registry
metadata: {name: mirror}
spec: {host: mirror.example.com}
---
apiVersion: celpolicy.dev/v1
kind: Policy
metadata: {name: nightly}
spec:
  match: image.tag == "%s"
  actions:
    - type: replicate
      to: [mirror]
  schedule: "@every 1h"
`

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writePolicy(t *testing.T, path, tag string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(strings.Replace(policyYAML, "%s", tag, 1)), 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

// startService runs a service on a loopback port until the test ends.
func startService(t *testing.T, dir string, pass Pass) (*Service, string, *syncBuffer) {
	t.Helper()
	cfg, err := config.Load(config.Sources{Flags: map[string]string{
		"policies": dir, "reload-debounce": "20ms", "shutdown-timeout": "5s"}})
	require.NoError(t, err)
	logs := &syncBuffer{}
	s, err := New(cfg, slog.New(slog.NewJSONHandler(logs, nil)), pass)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return s, "http://" + ln.Addr().String(), logs
}

func scrape(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func noPass(context.Context, *engine.PolicySet, string, Telemetry) error { return nil }

func TestServeMetricsHealthAndReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	writePolicy(t, path, "v1")
	s, base, logs := startService(t, dir, noPass)

	code, _ := scrape(t, base+"/healthz")
	assert.Equal(t, 200, code)
	code, _ = scrape(t, base+"/readyz")
	assert.Equal(t, 200, code)
	assert.Len(t, s.sched.Entries(), 1, "the scheduled policy is planned")

	// A decision and an action, so that every family has a sample.
	img := &conditions.Image{Reference: "docker.io/acme/app:v1"}
	require.NoError(t, img.Normalize())
	start := time.Now()
	d, err := s.Engine().Evaluate(context.Background(), img)
	require.NoError(t, err)
	s.Telemetry().Metrics.ObserveDecision(d, time.Since(start))
	s.Telemetry().Metrics.ObserveAction("replicate", "done", time.Millisecond, 42)
	s.Telemetry().Metrics.ObserveRun("nightly", nil)
	s.Telemetry().Metrics.ObserveSkippedRun("nightly")

	// A broken edit is counted and keeps the set; a good one is in force
	// within 2 s.
	require.NoError(t, os.WriteFile(path, []byte("apiVersion: celpolicy.dev/v1\nkind: Policy\nmetadata: {name: nightly}\nspec:\n  match: image.tag ==\n  actions: [{type: block}]\n"), 0o644))
	require.Eventually(t, func() bool {
		_, body := scrape(t, base+"/metrics")
		return strings.Contains(body, `celpolicy_policy_reloads_total{result="failure"} 1`)
	}, 2*time.Second, 10*time.Millisecond)
	d, err = s.Engine().Evaluate(context.Background(), img)
	require.NoError(t, err)
	assert.Len(t, d.Matched, 1, "the previous set stays in force")

	writePolicy(t, path, "v2")
	require.Eventually(t, func() bool {
		d, err := s.Engine().Evaluate(context.Background(), img)
		return err == nil && len(d.Matched) == 0
	}, 2*time.Second, 10*time.Millisecond)

	_, body := scrape(t, base+"/metrics")
	for _, name := range telemetry.MetricNames() {
		assert.Contains(t, body, "\n"+name, "metric family %s", name)
	}
	assert.Contains(t, body, `celpolicy_policy_reloads_total{result="success"} 1`)
	assert.Contains(t, body, "celpolicy_policies_loaded 1")
	assert.Contains(t, body, "go_goroutines")
	assert.Contains(t, logs.String(), `"msg":"policy set change rejected"`)
	assert.Contains(t, logs.String(), `"msg":"policy set changed"`)
}

func TestServeShutsDownGracefully(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, filepath.Join(dir, "p.yaml"), "v1")
	cfg, err := config.Load(config.Sources{Flags: map[string]string{"policies": dir, "shutdown-timeout": "5s"}})
	require.NoError(t, err)
	s, err := New(cfg, slog.New(slog.DiscardHandler), noPass)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	code, _ := scrape(t, "http://"+ln.Addr().String()+"/healthz")
	require.Equal(t, 200, code)
	cancel()
	require.NoError(t, <-done)
	_, err = http.Get("http://" + ln.Addr().String() + "/healthz")
	assert.Error(t, err, "the listener is closed after shutdown")
}

func TestNewFailsOnBrokenPolicies(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "p.yaml"), []byte("kind: [\n"), 0o644))
	cfg, err := config.Load(config.Sources{Flags: map[string]string{"policies": dir}})
	require.NoError(t, err)
	_, err = New(cfg, slog.New(slog.DiscardHandler), noPass)
	assert.ErrorContains(t, err, "p.yaml:1:1: invalid YAML")
	_, err = New(cfg, slog.New(slog.DiscardHandler), nil)
	assert.Error(t, err)
}
