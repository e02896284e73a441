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
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/registry"
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

// newImage is a random OCI image with the given config and manifest
// annotations.
func newImage(t testing.TB, p platformSpec, annotations map[string]string) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	require.NoError(t, err)
	return withConfig(t, img, p, annotations)
}

func withConfig(t testing.TB, img v1.Image, p platformSpec, annotations map[string]string) v1.Image {
	t.Helper()
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.os, p.arch, p.variant
	cf.Config.Labels = p.labels
	cf.Created = v1.Time{Time: p.created}
	img, err = mutate.ConfigFile(img, cf)
	require.NoError(t, err)
	if annotations != nil {
		img = mutate.Annotations(img, annotations).(v1.Image)
	}
	return img
}

// newIndex is an OCI index of the images, each with its platform, plus
// the given index annotations.
func newIndex(t testing.TB, annotations map[string]string, imgs []v1.Image, platforms []*v1.Platform) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for i, img := range imgs {
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: platforms[i]}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	return mutate.Annotations(idx, annotations).(v1.ImageIndex)
}

// newArtifact is an OCI artifact of the given type that refers to subject.
func newArtifact(t testing.TB, artifactType types.MediaType, subject v1.Descriptor) v1.Image {
	t.Helper()
	layer, err := random.Layer(64, "application/vnd.example.payload")
	require.NoError(t, err)
	img, err := mutate.AppendLayers(empty.Image, layer)
	require.NoError(t, err)
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, artifactType)
	return mutate.Subject(img, subject).(v1.Image)
}

func push(t testing.TB, ref string, w remote.Taggable) {
	t.Helper()
	r, err := name.ParseReference(ref)
	require.NoError(t, err)
	switch v := w.(type) {
	case v1.Image:
		require.NoError(t, remote.Write(r, v))
	case v1.ImageIndex:
		require.NoError(t, remote.WriteIndex(r, v))
	default:
		require.NoError(t, remote.Put(r, v))
	}
}

func descriptor(t testing.TB, w partialDescribable) v1.Descriptor {
	t.Helper()
	d, err := w.Digest()
	require.NoError(t, err)
	s, err := w.Size()
	require.NoError(t, err)
	mt, err := w.MediaType()
	require.NoError(t, err)
	return v1.Descriptor{Digest: d, Size: s, MediaType: mt}
}

type partialDescribable interface {
	Digest() (v1.Hash, error)
	Size() (int64, error)
	MediaType() (types.MediaType, error)
}

// imageSize is config plus layers, as the package documents.
func imageSize(t testing.TB, img v1.Image) int64 {
	t.Helper()
	m, err := img.Manifest()
	require.NoError(t, err)
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func digestOf(t testing.TB, w partialDescribable) string {
	t.Helper()
	d, err := w.Digest()
	require.NoError(t, err)
	return d.String()
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
