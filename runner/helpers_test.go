package runner_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/actions"
	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/runner"
)

var epoch = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// instantClock never waits: After fires at once and counts the waits.
type instantClock struct{ waits atomic.Int64 }

func (c *instantClock) Now() time.Time { return epoch }

func (c *instantClock) After(time.Duration) <-chan time.Time {
	c.waits.Add(1)
	ch := make(chan time.Time, 1)
	ch <- epoch
	return ch
}

// inventory is the Registry documents of a source and a mirror on
// loopback.
func inventory(src, dst string) string {
	return fmt.Sprintf(`apiVersion: celpolicy.dev/v1
kind: Registry
metadata: {name: src, labels: {role: source}}
spec: {host: "%s", insecure: true}
---
apiVersion: celpolicy.dev/v1
kind: Registry
metadata: {name: mirror, labels: {env: production}}
spec: {host: "%s", insecure: true}
`, src, dst)
}

// mirrorPolicy copies team/* from src to mirror/... on the mirror.
const mirrorPolicy = `apiVersion: celpolicy.dev/v1
kind: Policy
metadata: {name: mirror-team}
spec:
  match: image.source == "src"
  actions:
    - type: replicate
      to: [mirror]
      repository: '"mirror/" + image.repository'
  sources:
    - registry: src
      repositories: ["team/**"]
`

// loadSet writes the documents to a policy file and loads it.
func loadSet(t *testing.T, docs ...string) *engine.PolicySet {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policies.yaml"), []byte(strings.Join(docs, "---\n")), 0o644))
	set, err := engine.Load([]string{dir}, engine.WithClock(func() time.Time { return epoch }))
	require.NoError(t, err)
	return set
}

// options are runner options with a client and executors that retry on
// clock, configured by set's inventory.
func options(t *testing.T, set *engine.PolicySet, clock *instantClock, extra ...actions.Option) runner.Options {
	t.Helper()
	client, err := registry.New(registry.WithHosts(runner.Hosts(set)...), registry.WithKeychain(authn.NewMultiKeychain()),
		registry.WithClock(clock), registry.WithTagTTL(0))
	require.NoError(t, err)
	ex, err := actions.Standard(client, append([]actions.Option{actions.WithClock(clock)}, extra...)...)
	require.NoError(t, err)
	return runner.Options{Client: client, Executors: ex, EvalOptions: []engine.EvalOption{engine.At(epoch)}}
}

// pushRandom pushes a random image of size bytes in layers layers.
func pushRandom(t testing.TB, ref string, size int64, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size/layers, layers)
	require.NoError(t, err)
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(r, img))
	return img
}

func headDigest(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	desc, err := remote.Head(r)
	if err != nil {
		return ""
	}
	return desc.Digest.String()
}

// fault is what the proxy does with a request.
type fault int

const (
	pass       fault = iota
	fail500          // answer 500
	fail429          // answer 429 with Retry-After: 1
	dropBefore       // close the connection before forwarding
	dropAfter        // forward, then close the connection without answering
)

// faultProxy is a reverse proxy on loopback in front of upstream that
// does to each request what decide says. It counts the faults injected.
type faultProxy struct {
	host   string
	faults atomic.Int64
}

func newFaultProxy(t *testing.T, upstream string, decide func(r *http.Request) fault) *faultProxy {
	t.Helper()
	target, err := url.Parse("http://" + upstream)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	fp := &faultProxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := decide(r)
		if f != pass {
			fp.faults.Add(1)
		}
		switch f {
		case fail500:
			http.Error(w, "injected", http.StatusInternalServerError)
		case fail429:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "injected", http.StatusTooManyRequests)
		case dropBefore, dropAfter:
			if f == dropAfter {
				rp.ServeHTTP(httptest.NewRecorder(), r)
			}
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	fp.host = strings.TrimPrefix(srv.URL, "http://")
	return fp
}

// firstTimeFaults fails the first sight of about half of the distinct
// requests (method and path), each the same way every run, and lets the
// next try through: every fault is one a retry gets past.
func firstTimeFaults() func(r *http.Request) fault {
	var mu sync.Mutex
	seen := map[string]int{}
	return func(r *http.Request) fault {
		if r.URL.Path == "/v2/" {
			return pass
		}
		// An upload session's location has a fresh random ID on every
		// attempt; keyed by it, a retried upload could meet a new fault
		// on each of its attempts (a flaky test), so the ID is left out.
		path := r.URL.Path
		if i := strings.Index(path, "/blobs/uploads/"); i >= 0 {
			path = path[:i] + "/blobs/uploads/*"
		}
		key := r.Method + " " + path
		mu.Lock()
		seen[key]++
		n := seen[key]
		mu.Unlock()
		if n > 1 {
			return pass
		}
		h := fnv.New32a()
		h.Write([]byte(key))
		switch h.Sum32() % 8 {
		case 0:
			return fail500
		case 1:
			return fail429
		case 2:
			return dropBefore
		case 3:
			if r.Method == http.MethodPatch || r.Method == http.MethodPut {
				return dropAfter
			}
		}
		return pass
	}
}

func run(t *testing.T, set *engine.PolicySet, o runner.Options) *runner.Summary {
	t.Helper()
	sum, err := runner.Run(context.Background(), set, o)
	require.NoError(t, err)
	return sum
}
