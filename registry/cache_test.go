package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/registry/registrytest"
)

// pushTags pushes n images that differ only in a label, as <repo>:t000...,
// and returns their references.
func pushTags(t testing.TB, host, repo string, n int) []string {
	t.Helper()
	base, err := random.Image(256, 1)
	require.NoError(t, err)
	// The shared layer is uploaded once; every tag then costs a config
	// and a manifest.
	push(t, host+"/"+repo+":base", base)
	refs := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		refs[i] = fmt.Sprintf("%s/%s:t%03d", host, repo, i)
		img := withConfig(t, base, platformSpec{os: "linux", arch: "amd64", labels: map[string]string{"n": fmt.Sprint(i)}}, nil)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := name.ParseReference(refs[i])
			if err == nil {
				err = remote.Write(r, img)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	return refs
}

func TestWarmCacheReads500TagsWithoutRequests(t *testing.T) {
	host := registrytest.Memory(t)
	refs := pushTags(t, host, "team/app", 500)
	c, ct, clock := newClient(t, registry.WithTagTTL(time.Minute))

	cold := c.Images(context.Background(), refs)
	for _, r := range cold {
		require.NoError(t, r.Err)
	}
	require.NotEmpty(t, ct.Requests())

	ct.Reset()
	clock.Advance(59 * time.Second)
	warm := c.Images(context.Background(), refs)
	for i, r := range warm {
		require.NoError(t, r.Err)
		assert.Equal(t, cold[i].Image, r.Image)
	}
	assert.Empty(t, ct.Requests(), "a warm cache within the TTL asks the registry nothing")
}

func TestTagRefreshedByHeadAfterTTL(t *testing.T) {
	host := registrytest.Memory(t)
	first := newImage(t, platformSpec{os: "linux", arch: "amd64", labels: map[string]string{"build": "1"}}, nil)
	push(t, host+"/app:v1", first)
	c, ct, clock := newClient(t, registry.WithTagTTL(time.Minute), registry.WithCosignTags(false))
	ctx := context.Background()

	img, err := c.Image(ctx, host+"/app:v1")
	require.NoError(t, err)
	assert.Equal(t, digestOf(t, first), img.Digest)

	// Past the TTL, unchanged: a HEAD (and the referrers lookup), no GET
	// of the manifest or config.
	clock.Advance(2 * time.Minute)
	ct.Reset()
	img, err = c.Image(ctx, host+"/app:v1")
	require.NoError(t, err)
	assert.Equal(t, "1", img.Labels["build"])
	assert.Contains(t, ct.Requests(), "HEAD /v2/app/manifests/v1")
	for _, r := range ct.Requests() {
		assert.False(t, strings.HasPrefix(r, "GET /v2/app/manifests/v1") || strings.Contains(r, "/blobs/"), "unexpected %s", r)
	}

	// The tag moves: within the TTL the old digest is still served...
	second := newImage(t, platformSpec{os: "linux", arch: "amd64", labels: map[string]string{"build": "2"}}, nil)
	push(t, host+"/app:v1", second)
	img, err = c.Image(ctx, host+"/app:v1")
	require.NoError(t, err)
	assert.Equal(t, digestOf(t, first), img.Digest)

	// ...and after it the new one is read.
	clock.Advance(2 * time.Minute)
	img, err = c.Image(ctx, host+"/app:v1")
	require.NoError(t, err)
	assert.Equal(t, digestOf(t, second), img.Digest)
	assert.Equal(t, "2", img.Labels["build"])
}

func TestZeroTTLAsksEveryTime(t *testing.T) {
	host := registrytest.Memory(t)
	push(t, host+"/app:v1", newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil))
	c, ct, _ := newClient(t, registry.WithTagTTL(0), registry.WithCosignTags(false))

	_, err := c.Image(context.Background(), host+"/app:v1")
	require.NoError(t, err)
	ct.Reset()
	_, err = c.Image(context.Background(), host+"/app:v1")
	require.NoError(t, err)
	assert.Contains(t, ct.Requests(), "HEAD /v2/app/manifests/v1")
}

func TestDigestCacheIsPerRepository(t *testing.T) {
	host := registrytest.Memory(t)
	img := newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil)
	push(t, host+"/a:v1", img)
	c, _, _ := newClient(t)

	_, err := c.Image(context.Background(), host+"/a@"+digestOf(t, img))
	require.NoError(t, err)
	// The same digest in a repository that lacks it is not served from
	// the cache.
	_, err = c.Image(context.Background(), host+"/b@"+digestOf(t, img))
	assert.ErrorIs(t, err, registry.ErrNotFound)
}

func TestConcurrencyIsBounded(t *testing.T) {
	host := registrytest.Memory(t)
	refs := pushTags(t, host, "app", 40)
	c, ct, _ := newClient(t, registry.WithConcurrency(3))

	// Images and single reads at once share the same bound.
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, r := range c.Images(context.Background(), refs[:30]) {
			assert.NoError(t, r.Err)
		}
	})
	for _, ref := range refs[30:] {
		wg.Go(func() {
			_, err := c.Image(context.Background(), ref)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, ct.maxIn.Load(), int64(3))
}

func TestConcurrentReadsOfOneImageShareAFetch(t *testing.T) {
	host := registrytest.Memory(t)
	push(t, host+"/app:v1", newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil))
	c, ct, _ := newClient(t, registry.WithCosignTags(false))

	refs := make([]string, 20)
	for i := range refs {
		refs[i] = host + "/app:v1"
	}
	for _, r := range c.Images(context.Background(), refs) {
		require.NoError(t, r.Err)
	}
	gets := 0
	for _, r := range ct.Requests() {
		if r == "GET /v2/app/manifests/v1" {
			gets++
		}
	}
	assert.LessOrEqual(t, gets, 2, "requests: %v", ct.Requests())
}

func TestIndexChildrenAreCached(t *testing.T) {
	host := registrytest.Memory(t)
	amd := newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil)
	arm := newImage(t, platformSpec{os: "linux", arch: "arm64"}, nil)
	platforms := []*v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
	push(t, host+"/app:v1", newIndex(t, map[string]string{"v": "1"}, []v1.Image{amd, arm}, platforms))
	push(t, host+"/app:v2", newIndex(t, map[string]string{"v": "2"}, []v1.Image{amd, arm}, platforms))
	c, ct, _ := newClient(t, registry.WithCosignTags(false))

	_, err := c.Image(context.Background(), host+"/app:v1")
	require.NoError(t, err)
	ct.Reset()
	_, err = c.Image(context.Background(), host+"/app:v2")
	require.NoError(t, err)
	for _, r := range ct.Requests() {
		assert.NotContains(t, r, "/blobs/", "platform configs come from the cache")
	}
}

var _ http.RoundTripper = (*countingTransport)(nil)

func TestTagRefreshFallsBackToGetWhenHeadFails(t *testing.T) {
	inner := registrytest.MemoryHandler()
	var refuseHead atomic.Bool
	host := registrytest.Handler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuseHead.Load() && r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	push(t, host+"/app:v1", newImage(t, platformSpec{os: "linux", arch: "amd64", labels: map[string]string{"build": "1"}}, nil))
	c, ct, clock := newClient(t, registry.WithCosignTags(false))
	_, err := c.Image(context.Background(), host+"/app:v1")
	require.NoError(t, err)

	refuseHead.Store(true)
	clock.Advance(time.Hour)
	ct.Reset()
	img, err := c.Image(context.Background(), host+"/app:v1")
	require.NoError(t, err)
	assert.Equal(t, "1", img.Labels["build"])
	assert.Contains(t, ct.Requests(), "GET /v2/app/manifests/v1")
}
