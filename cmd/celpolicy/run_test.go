package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/registry/registrytest"
	"github.com/celpolicy/celpolicy/runner"
)

// instant is a registry clock that never waits.
type instant struct{}

func (instant) Now() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) }
func (instant) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- time.Time{}
	return ch
}

var noCredentials = registry.WithKeychain(authn.NewMultiKeychain())

// pushLabelled pushes a small random image with config labels and a
// creation time.
func pushLabelled(t *testing.T, ref string, labels map[string]string, created time.Time) {
	t.Helper()
	img, err := random.Image(512, 1)
	require.NoError(t, err)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.Config.Labels = labels
	cf.Created = v1.Time{Time: created}
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	require.NoError(t, err)
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(r, img))
}

// examplesOnLoopback copies the example policies next to an inventory
// with the examples' registry names and labels, each host replaced by an
// in-memory registry on loopback. It returns the directory and the
// sandbox's host.
func examplesOnLoopback(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join(examplePolicies, "*.yaml"))
	require.NoError(t, err)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.yaml") || filepath.Base(f) == "registries.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644))
	}
	inv, err := os.ReadFile(filepath.Join(examplePolicies, "registries.yaml"))
	require.NoError(t, err)
	var sandbox string
	hostLine := regexp.MustCompile(`(?m)^metadata:\n  name: (\S+)\n(.*\n)*?  host: \S+$`)
	out := hostLine.ReplaceAllStringFunc(string(inv), func(doc string) string {
		host := registrytest.Memory(t)
		if strings.Contains(doc, "name: sandbox\n") {
			sandbox = host
		}
		i := strings.LastIndex(doc, "host: ")
		return doc[:i] + fmt.Sprintf("host: %q\n  insecure: true", host)
	})
	require.NotEmpty(t, sandbox)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "registries.yaml"), []byte(out), 0o644))
	return dir, sandbox
}

// TestRunDryRunExamples: the example policies, over a sandbox on
// loopback, plan copies, blocks, notifications and deletions; every line
// names the policy that decided it, and nothing changes.
func TestRunDryRunExamples(t *testing.T) {
	dir, sandbox := examplesOnLoopback(t)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	pushLabelled(t, sandbox+"/experiments/scraper:0.0.3", map[string]string{}, now.AddDate(0, -5, 0))
	pushLabelled(t, sandbox+"/tools/jq:1.7", map[string]string{"scan.status": "passed", "scan.date": "2026-11-26"}, now.AddDate(0, 0, -3))
	pushLabelled(t, sandbox+"/acme/checkout:prod-2026.11", map[string]string{"scan.status": "passed", "scan.date": "2026-11-26"}, now.AddDate(0, 0, -1))

	var out bytes.Buffer
	f := runFlags{policies: []string{dir}, dryRun: true, concurrency: 2, output: "text", now: exampleNow}
	require.NoError(t, runRun(context.Background(), f, &out, io.Discard, noCredentials, registry.WithClock(instant{})))
	text := out.String()
	t.Log("\n" + text)
	lines := strings.Split(strings.TrimSpace(text), "\n")
	require.Greater(t, len(lines), 5)
	for _, l := range lines[:len(lines)-1] {
		assert.Regexp(t, `\[policy [a-z0-9-]+\]$`, l, "every plan line names its policy")
	}
	assert.Contains(t, text, "would copy   "+sandbox+"/tools/jq:1.7 → sandbox ("+sandbox+"/unclassified/tools/jq:1.7)")
	assert.Contains(t, text, "[policy unclassified-to-sandbox]")
	assert.Regexp(t, `would copy +\S+/acme/checkout:prod-2026.11 → eu-prod .*\[policy prod-tags-to-production\]`, text)
	assert.Regexp(t, `blocked +\S+/experiments/scraper:0.0.3 at us-prod: no scan.status label on experiments/scraper:0.0.3 +\[policy require-scan-for-production\]`, text)
	assert.Regexp(t, `would notify +\S+/experiments/scraper:0.0.3 → https://hooks.example.com/security/unscanned: would POST the decision event +\[policy require-scan-for-production\]`, text)
	assert.Regexp(t, `would delete +tag \S+/experiments/scraper:0.0.3: tag 0.0.3 +\[policy sandbox-retention\]`, text)
	assert.Regexp(t, `^plan \(dry run, nothing changed\): 3 images: 4 copied, 0 already present, 0 skipped, 3 blocked, 1 notified, 1 deleted, 0 failed`, lines[len(lines)-1])

	// Nothing changed: the old image is still there, nothing was copied.
	c, err := registry.New(noCredentials, registry.WithHosts(registry.Host{Host: sandbox, Insecure: true}))
	require.NoError(t, err)
	_, err = c.Image(context.Background(), sandbox+"/experiments/scraper:0.0.3")
	assert.NoError(t, err)
	_, err = c.Image(context.Background(), sandbox+"/unclassified/tools/jq:1.7")
	assert.ErrorIs(t, err, registry.ErrNotFound)
}

// mirrorTeam pushes two images to an in-memory source registry and
// writes a policy directory that mirrors them to another; it returns the
// directory and the two registries.
func mirrorTeam(t *testing.T) (dir, src, dst string) {
	t.Helper()
	src, dst = registrytest.Memory(t), registrytest.Memory(t)
	for _, ref := range []string{"team/a:v1", "team/b:v1"} {
		pushLabelled(t, src+"/"+ref, map[string]string{"team": "x"}, time.Now())
	}
	dir = t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(fmt.Sprintf(`apiVersion: celpolicy.dev/v1
kind: Registry
metadata: {name: src}
spec: {host: "%s", insecure: true}
---
apiVersion: celpolicy.dev/v1
kind: Registry
metadata: {name: mirror}
spec: {host: "%s", insecure: true}
---
apiVersion: celpolicy.dev/v1
kind: Policy
metadata: {name: mirror-team}
spec:
  match: image.source == "src"
  actions:
    - type: replicate
      to: [mirror]
  sources:
    - registry: src
      repositories: ["team/*"]
`, src, dst)), 0o644))
	return dir, src, dst
}

// TestRunTwice: a run copies, -o json reports it, and a second run right
// after copies nothing.
func TestRunTwice(t *testing.T) {
	dir, _, _ := mirrorTeam(t)
	f := runFlags{policies: []string{dir}, concurrency: 4, output: "json"}
	for i, want := range []struct{ copied, present int }{{2, 0}, {0, 2}} {
		var out bytes.Buffer
		require.NoError(t, runRun(context.Background(), f, &out, io.Discard, noCredentials), "run %d", i+1)
		var sum runner.Summary
		require.NoError(t, json.Unmarshal(out.Bytes(), &sum))
		assert.Equal(t, want.copied, sum.Copied, "run %d", i+1)
		assert.Equal(t, want.present, sum.Present, "run %d", i+1)
		assert.Equal(t, 2, sum.Images)
		assert.Zero(t, sum.Failed)
	}
}

// requestLog records the requests a client sends, as "METHOD host path".
type requestLog struct {
	mu       sync.Mutex
	requests []string
}

func (l *requestLog) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.requests = append(l.requests, req.Method+" "+req.URL.Host+req.URL.Path)
	l.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// take returns the requests recorded since the last take.
func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.requests
	l.requests = nil
	return out
}

// TestRunCache: with --cache-dir a second run reads no source manifest or
// config, only a HEAD per tag; a damaged entry is warned about on stderr
// and read again; --no-cache writes nothing.
func TestRunCache(t *testing.T) {
	dir, src, dst := mirrorTeam(t)
	cache := t.TempDir()
	log := &requestLog{}
	run := func(f runFlags) (sum runner.Summary, warnings string) {
		t.Helper()
		var out, errOut bytes.Buffer
		require.NoError(t, runRun(context.Background(), f, &out, &errOut, noCredentials, registry.WithTransport(log)))
		require.NoError(t, json.Unmarshal(out.Bytes(), &sum))
		return sum, errOut.String()
	}
	sourceReads := func(requests []string) []string {
		var out []string
		for _, r := range requests {
			if strings.HasPrefix(r, "GET "+src) && (strings.Contains(r, "/manifests/") || strings.Contains(r, "/blobs/")) {
				out = append(out, r)
			}
		}
		return out
	}
	f := runFlags{policies: []string{dir}, concurrency: 2, output: "json", cacheDir: cache}

	sum, _ := run(f)
	assert.Equal(t, 2, sum.Copied)
	assert.NotEmpty(t, sourceReads(log.take()))

	sum, warnings := run(f)
	assert.Equal(t, 2, sum.Present)
	requests := log.take()
	assert.Empty(t, sourceReads(requests), "manifests and configs come from the cache")
	assert.Contains(t, requests, "HEAD "+src+"/v2/team/a/manifests/v1")
	assert.Contains(t, requests, "HEAD "+dst+"/v2/team/a/manifests/v1", "the destination is checked every time")
	assert.Empty(t, warnings)

	blobs, err := filepath.Glob(filepath.Join(cache, "*", "blobs", "sha256-*"))
	require.NoError(t, err)
	require.Len(t, blobs, 4, "a manifest and a config per image")
	for _, b := range blobs {
		require.NoError(t, os.WriteFile(b, []byte("damaged"), 0o600))
	}
	sum, warnings = run(f)
	assert.Equal(t, 2, sum.Present)
	assert.Len(t, sourceReads(log.take()), 4, "damaged entries are read again")
	assert.Contains(t, warnings, "disk cache: entry ignored")

	empty := t.TempDir()
	for _, nf := range []runFlags{{cacheDir: empty, noCache: true}, {cacheDir: ""}} {
		nf.policies, nf.concurrency, nf.output = f.policies, 2, "json"
		sum, _ = run(nf)
		assert.Equal(t, 2, sum.Present)
		assert.Len(t, sourceReads(log.take()), 4, "without a cache every image is read")
	}
	entries, err := os.ReadDir(empty)
	require.NoError(t, err)
	assert.Empty(t, entries, "--no-cache writes nothing")
}

// TestRunUnreachable: a source nobody answers on fails the run, with a
// line that says which source and policy.
func TestRunUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	require.NoError(t, l.Close())
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(fmt.Sprintf(`apiVersion: celpolicy.dev/v1
kind: Registry
metadata: {name: gone}
spec: {host: "%s", insecure: true}
---
apiVersion: celpolicy.dev/v1
kind: Policy
metadata: {name: retention}
spec:
  match: "true"
  actions:
    - type: delete
  sources:
    - registry: gone
`, closed)), 0o644))
	var out bytes.Buffer
	err = runRun(context.Background(), runFlags{policies: []string{dir}, concurrency: 1, output: "text"}, &out, io.Discard,
		noCredentials, registry.WithClock(instant{}))
	var ee *exitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, exitFailure, ee.code)
	assert.Contains(t, err.Error(), "1 failed")
	assert.Regexp(t, `(?m)^FAILED +`+regexp.QuoteMeta(closed)+`: source gone: list repositories .*connection refused.*\[source of policy retention\]$`, out.String())
}

func TestRunFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad output", []string{"-o", "yaml"}, "-o must be text or json"},
		{"bad shard", []string{"--shard", "4/4"}, "--shard: shard 4/4: want 0 ≤ I < N"},
		{"bad concurrency", []string{"--concurrency", "0"}, "--concurrency must be greater than zero"},
		{"unknown policy", []string{"--policy", "nope"}, `--policy: no policy is named "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := cli(t, "", append([]string{"run", "-p", examplePolicies}, tc.args...)...)
			assert.Equal(t, exitUsage, code)
			assert.Contains(t, errOut, tc.want)
		})
	}
}

func TestWebhookSecret(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(file, []byte("from-file\n"), 0o600))
	t.Setenv("TEST_CELPOLICY_SECRET", "from-env")
	tests := []struct {
		name string
		f    runFlags
		want string
	}{
		{"file wins", runFlags{secretFile: file, secretEnv: "TEST_CELPOLICY_SECRET"}, "from-file"},
		{"environment", runFlags{secretEnv: "TEST_CELPOLICY_SECRET"}, "from-env"},
		{"none", runFlags{secretEnv: "TEST_CELPOLICY_UNSET"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runWebhookSecret(tc.f)
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
		})
	}
}
