package runner_test

import (
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/registry/registrytest"
	"github.com/celpolicy/celpolicy/runner"
)

// TestNewClientChecksEachRegistryOnce: go-containerregistry checks a
// registry's version (GET /v2/) once per repository; the default client
// of a pass asks each registry once.
func TestNewClientChecksEachRegistryOnce(t *testing.T) {
	var pings, requests atomic.Int64
	counted := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			if r.URL.Path == "/v2/" {
				pings.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	}
	src := registrytest.Handler(t, counted(registrytest.MemoryHandler()))
	dst := registrytest.Handler(t, counted(registrytest.MemoryHandler()))
	for i := range 5 {
		pushRandom(t, fmt.Sprintf("%s/team/app%d:v1", src, i), 256, 1)
	}
	set := loadSet(t, inventory(src, dst), mirrorPolicy)
	client, err := runner.NewClient(set, registry.WithKeychain(authn.NewMultiKeychain()))
	require.NoError(t, err)
	pings.Store(0)
	requests.Store(0)

	sum := run(t, set, runner.Options{Client: client})
	assert.Equal(t, 5, sum.Copied)
	assert.Equal(t, int64(2), pings.Load(), "one version check per registry")

	pings.Store(0)
	requests.Store(0)
	again := run(t, set, runner.Options{Client: client})
	assert.Equal(t, 5, again.Present)
	assert.Zero(t, pings.Load())
	// A client kept between passes (the scheduler's) trusts the tags it
	// read for its tag TTL: a HEAD per image at the mirror, the catalog
	// and a tag list per repository.
	assert.Equal(t, int64(5+1+5), requests.Load())
}

// countedRegistry is an in-memory registry on loopback that counts the
// connections it accepts and the requests it answers, by "METHOD kind"
// (kind: ping, catalog, tags, manifest, blob, upload).
type countedRegistry struct {
	host  string
	conns atomic.Int64
	mu    sync.Mutex
	reqs  map[string]int
}

func newCountedRegistry(t *testing.T) *countedRegistry {
	t.Helper()
	c := &countedRegistry{reqs: map[string]int{}}
	inner := registrytest.MemoryHandler()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := "upload"
		switch p := r.URL.Path; {
		case p == "/v2/":
			kind = "ping"
		case p == "/v2/_catalog":
			kind = "catalog"
		case strings.HasSuffix(p, "/tags/list"):
			kind = "tags"
		case strings.Contains(p, "/manifests/"):
			kind = "manifest"
		case strings.Contains(p, "/blobs/") && !strings.Contains(p, "/uploads/"):
			kind = "blob"
		}
		c.mu.Lock()
		c.reqs[r.Method+" "+kind]++
		c.mu.Unlock()
		inner.ServeHTTP(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c.host = strings.TrimPrefix(srv.URL, "http://")
	return c
}

// take returns and resets the counts.
func (c *countedRegistry) take() (conns int64, requests map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	requests, c.reqs = c.reqs, map[string]int{}
	return c.conns.Swap(0), requests
}

// TestNewClientReusesConnectionsAndTheDiskCache: a pass keeps its
// connections open between requests (a few per registry, not one per
// request), and a second pass by a new client, as a second process would
// make it, asks the source only the listings and a HEAD per tag when the
// disk cache holds the images, and the mirror a HEAD per image.
func TestNewClientReusesConnectionsAndTheDiskCache(t *testing.T) {
	src, dst := newCountedRegistry(t), newCountedRegistry(t)
	const repos, tags = 4, 3
	for r := range repos {
		for g := range tags {
			pushRandom(t, fmt.Sprintf("%s/team/app%d:v%d", src.host, r, g), 2048, 2)
		}
	}
	set := loadSet(t, inventory(src.host, dst.host), mirrorPolicy)
	cache := t.TempDir()
	pass := func() *runner.Summary {
		client, err := runner.NewClient(set, registry.WithKeychain(authn.NewMultiKeychain()), registry.WithDiskCache(cache))
		require.NoError(t, err)
		return run(t, set, runner.Options{Client: client})
	}
	src.take()
	dst.take()

	sum := pass()
	require.Equal(t, repos*tags, sum.Copied)
	srcConns, srcReqs := src.take()
	dstConns, dstReqs := dst.take()
	total := 0
	for _, n := range dstReqs {
		total += n
	}
	// 4 images at once, each with up to 4 uploads: 20 requests in
	// flight at most, so about 20 connections to the mirror (up to twice
	// that when requests start just before others' connections are free
	// again) for over a hundred requests. With too few idle connections
	// kept per host there would be one for most requests.
	inFlight := int64(runner.DefaultConcurrency * 5)
	assert.Greater(t, total, 100)
	assert.LessOrEqual(t, dstConns, 2*inFlight, "%d requests", total)
	assert.LessOrEqual(t, srcConns, 2*inFlight)
	t.Logf("first pass: %d requests to the mirror over %d connections, %d to the source", total, dstConns, srcConns)

	again := pass()
	require.Equal(t, repos*tags, again.Present)
	srcConns, srcReqs = src.take()
	dstConns, dstReqs = dst.take()
	assert.Equal(t, map[string]int{"GET ping": 1, "GET catalog": 1, "GET tags": repos, "HEAD manifest": repos * tags}, srcReqs)
	assert.Equal(t, map[string]int{"GET ping": 1, "HEAD manifest": repos * tags}, dstReqs)
	// A new client opens connections of its own, and keeps them: about
	// one per image in flight (a few more when a request starts just
	// before another's connection is free again).
	assert.Positive(t, srcConns)
	assert.LessOrEqual(t, srcConns, int64(2*runner.DefaultConcurrency))
	assert.LessOrEqual(t, dstConns, int64(2*runner.DefaultConcurrency))
}

// TestNewClientTrustsTheInventorysCAFile: a source behind TLS with a
// private CA, named by the Registry document's caFile, is read and
// mirrored.
func TestNewClientTrustsTheInventorysCAFile(t *testing.T) {
	srv := httptest.NewUnstartedServer(registrytest.MemoryHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	src := strings.TrimPrefix(srv.URL, "https://")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	ref, err := name.ParseReference(src + "/team/app:v1")
	require.NoError(t, err)
	img, err := random.Image(256, 1)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img, remote.WithTransport(srv.Client().Transport)))
	dst := registrytest.Memory(t)

	set := loadSet(t, fmt.Sprintf(`apiVersion: celpolicy.dev/v1
kind: Registry
metadata: {name: src}
spec: {host: "%s", caFile: "%s"}
---
apiVersion: celpolicy.dev/v1
kind: Registry
metadata: {name: mirror}
spec: {host: "%s", insecure: true}
`, src, ca, dst), mirrorPolicy)
	client, err := runner.NewClient(set, registry.WithKeychain(authn.NewMultiKeychain()))
	require.NoError(t, err)
	sum := run(t, set, runner.Options{Client: client})
	assert.Equal(t, 1, sum.Copied, "%+v", sum.Items)
	assert.Equal(t, digest(t, img), headDigest(t, dst+"/mirror/team/app:v1"))
}
