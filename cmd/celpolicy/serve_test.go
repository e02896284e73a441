package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/internal/config"
	"github.com/celpolicy/celpolicy/registry/registrytest"
	"github.com/celpolicy/celpolicy/telemetry"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServeRunsScheduledPasses runs serve end to end: a policy scheduled
// every second copies an image between two registries on loopback and
// notifies a webhook; metrics and the audit log show it, without secrets.
func TestServeRunsScheduledPasses(t *testing.T) {
	ref, digest := pushInspected(t) // acme/payments:2.4.1, team=payments
	src := strings.SplitN(ref, "/", 2)[0]
	dst := registrytest.Memory(t)
	hook := make(chan *http.Request, 10)
	webhook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hook <- r
	}))
	defer webhook.Close()

	dir := t.TempDir()
	policies := filepath.Join(dir, "policies")
	require.NoError(t, os.Mkdir(policies, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(policies, "p.yaml"), []byte(fmt.Sprintf(`apiVersion: celpolicy.dev/v1
kind: Registry
metadata: {name: source}
spec: {host: "%s", insecure: true}
---
apiVersion: celpolicy.dev/v1
kind: Registry
metadata: {name: mirror}
spec: {host: "%s", insecure: true}
---
apiVersion: celpolicy.dev/v1
kind: Policy
metadata: {name: mirror-payments}
spec:
  match: image.labels.?team.orValue("") == "payments"
  actions:
    - type: replicate
      to: [mirror]
    - type: notify
      webhook: %s/hook?token=query-secret
  schedule: "@every 1s"
  sources:
    - registry: source
      repositories: ["acme/*"]
`, src, dst, webhook.URL)), 0o644))
	secretFile := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte("hmac-key-that-must-not-leak\n"), 0o600))
	cfg, err := config.Load(config.Sources{Flags: map[string]string{
		"policies": policies, "notify-secret-file": secretFile, "shutdown-timeout": "10s"}})
	require.NoError(t, err)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, cfg, logs, ln) }()

	select {
	case r := <-hook:
		assert.True(t, strings.HasPrefix(r.Header.Get("X-Celpolicy-Signature"), "sha256="))
	case <-time.After(20 * time.Second):
		t.Fatalf("no notification; logs:\n%s", logs.String())
	}
	var body string
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return strings.Contains(body, `celpolicy_scheduled_runs_total{outcome="success",policy="mirror-payments"}`)
	}, 20*time.Second, 50*time.Millisecond, "logs:\n%s", logs.String())
	for _, family := range telemetry.MetricNames() {
		assert.Contains(t, body, "\n"+family, family)
	}
	assert.Contains(t, body, `celpolicy_actions_total{outcome="copied",type="replicate"} 1`)
	assert.Contains(t, body, `celpolicy_policy_evaluations_total{policy="mirror-payments",result="matched"}`)

	// The copy is there, by digest.
	dref, err := name.ParseReference(dst+"/acme/payments:2.4.1", name.Insecure)
	require.NoError(t, err)
	desc, err := remote.Head(dref)
	require.NoError(t, err)
	assert.Equal(t, digest, desc.Digest.String())

	cancel()
	require.NoError(t, <-done)

	out := logs.String()
	assert.Contains(t, out, `"msg":"decision","stream":"audit"`)
	assert.Contains(t, out, `"msg":"action","stream":"audit","type":"replicate"`)
	assert.Contains(t, out, `"msg":"stopped"`)
	assert.NotContains(t, out, "hmac-key-that-must-not-leak")
	assert.NotContains(t, out, "query-secret")
}

func TestServeConfigErrors(t *testing.T) {
	code, _, errOut := cli(t, "", "serve", "--log-level", "loud")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `flag --log-level="loud": want one of debug, info, warn, error`)
	assert.Contains(t, errOut, "no policy paths")

	code, out, _ := cli(t, "", "serve", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "CELPOLICY_LOG_LEVEL")
	assert.Contains(t, out, "--notify-secret-file")
}
