package registry_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/registry/registrytest"
)

// fakeClock advances only when told to, or by the waits it is asked for,
// which it records.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.waits)
}

// countingTransport counts the requests that reach the network and how
// many were in flight at most.
type countingTransport struct {
	inner    http.RoundTripper
	mu       sync.Mutex
	requests []string // "METHOD path"
	inFlight atomic.Int64
	maxIn    atomic.Int64
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.requests = append(t.requests, req.Method+" "+req.URL.Path)
	t.mu.Unlock()
	n := t.inFlight.Add(1)
	defer t.inFlight.Add(-1)
	for {
		m := t.maxIn.Load()
		if n <= m || t.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	return t.inner.RoundTrip(req)
}

func (t *countingTransport) Requests() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.requests)
}

func (t *countingTransport) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requests = nil
}

// newClient returns a Client that reads no docker config and sleeps on a
// fake clock, plus its counting transport.
func newClient(t testing.TB, opts ...registry.Option) (*registry.Client, *countingTransport, *fakeClock) {
	t.Helper()
	ct := &countingTransport{inner: http.DefaultTransport}
	clock := newFakeClock()
	base := []registry.Option{
		registry.WithTransport(ct),
		registry.WithKeychain(authn.NewMultiKeychain()),
		registry.WithClock(clock),
	}
	c, err := registry.New(append(base, opts...)...)
	require.NoError(t, err)
	return c, ct, clock
}

type platformSpec struct {
	os, arch, variant string
	labels            map[string]string
	created           time.Time
}

// The image builders live in registrytest, shared with other packages'
// tests; these names keep this package's tests short.
func newImage(t testing.TB, p platformSpec, annotations map[string]string) v1.Image {
	t.Helper()
	return registrytest.Image(t, p.config(), annotations)
}

func withConfig(t testing.TB, img v1.Image, p platformSpec, annotations map[string]string) v1.Image {
	t.Helper()
	return registrytest.WithConfig(t, img, p.config(), annotations)
}

func (p platformSpec) config() registrytest.ImageConfig {
	return registrytest.ImageConfig{OS: p.os, Arch: p.arch, Variant: p.variant, Labels: p.labels, Created: p.created}
}

func newIndex(t testing.TB, annotations map[string]string, imgs []v1.Image, platforms []*v1.Platform) v1.ImageIndex {
	t.Helper()
	return registrytest.Index(t, annotations, imgs, platforms)
}

func newArtifact(t testing.TB, artifactType types.MediaType, subject v1.Descriptor) v1.Image {
	t.Helper()
	return registrytest.Artifact(t, artifactType, subject)
}

func push(t testing.TB, ref string, w remote.Taggable) {
	t.Helper()
	registrytest.Push(t, ref, w)
}

func descriptor(t testing.TB, w registrytest.Describable) v1.Descriptor {
	t.Helper()
	return registrytest.Descriptor(t, w)
}

func imageSize(t testing.TB, img v1.Image) int64 {
	t.Helper()
	return registrytest.Size(t, img)
}

func digestOf(t testing.TB, w registrytest.Describable) string {
	t.Helper()
	return registrytest.Digest(t, w)
}

// paginate serves the catalog and tag lists page by page with Link
// headers, as distribution does and the in-memory registry does not.
type paginate struct {
	inner http.Handler
	pages atomic.Int64
}

func (p *paginate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := ""
	switch {
	case r.URL.Path == "/v2/_catalog":
		key = "repositories"
	case strings.HasSuffix(r.URL.Path, "/tags/list"):
		key = "tags"
	default:
		p.inner.ServeHTTP(w, r)
		return
	}
	q := r.URL.Query()
	inner := r.Clone(r.Context())
	inner.URL.RawQuery = ""
	rec := &recorder{header: http.Header{}}
	p.inner.ServeHTTP(rec, inner)
	if rec.status != http.StatusOK {
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body)
		return
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.body, &doc); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var all []string
	for _, v := range doc[key].([]any) {
		all = append(all, v.(string))
	}
	slices.Sort(all)
	if last := q.Get("last"); last != "" {
		i, _ := slices.BinarySearch(all, last)
		for i < len(all) && all[i] <= last {
			i++
		}
		all = all[i:]
	}
	if n, err := strconv.Atoi(q.Get("n")); err == nil && n < len(all) {
		all = all[:n]
		next := url.Values{"n": {q.Get("n")}, "last": {all[len(all)-1]}}
		w.Header().Set("Link", "<"+r.URL.Path+"?"+next.Encode()+`>; rel="next"`)
	}
	p.pages.Add(1)
	doc[key] = all
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

type recorder struct {
	header http.Header
	status int
	body   []byte
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int)   { r.status = s }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body = append(r.body, b...)
	return len(b), nil
}
