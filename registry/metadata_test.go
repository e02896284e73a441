package registry_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/registry/registrytest"
)

// TestImageMetadata reads what Image reads but the referrers, with two
// requests for an uncached image.
func TestImageMetadata(t *testing.T) {
	var requests atomic.Int64
	inner := registrytest.MemoryHandler()
	host := registrytest.Handler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/" {
			requests.Add(1)
		}
		inner.ServeHTTP(w, r)
	}))
	img, err := random.Image(512, 2)
	require.NoError(t, err)
	push(t, host+"/team/app:v1", img)
	sig, err := random.Image(64, 1)
	require.NoError(t, err)
	push(t, host+"/team/app:sha256-"+strings.TrimPrefix(digestOf(t, img), "sha256:")+".sig", sig)
	requests.Store(0)

	c, err := registry.New(registry.WithHosts(registry.Host{Name: "local", Host: host, Insecure: true}),
		registry.WithKeychain(authn.NewMultiKeychain()))
	require.NoError(t, err)
	got, err := c.ImageMetadata(context.Background(), host+"/team/app:v1")
	require.NoError(t, err)
	assert.Equal(t, int64(2), requests.Load(), "manifest and config")
	assert.Equal(t, digestOf(t, img), got.Digest)
	assert.Equal(t, host+"/team/app:v1", got.Reference)
	assert.Equal(t, "local", got.Source)
	assert.Empty(t, got.Referrers)

	full, err := c.Image(context.Background(), host+"/team/app:v1")
	require.NoError(t, err)
	assert.Len(t, full.Referrers, 1)
	full.Referrers = nil
	assert.Equal(t, full, got)

	_, err = c.ImageMetadata(context.Background(), host+"/team/app:missing")
	assert.ErrorIs(t, err, registry.ErrNotFound)
}
