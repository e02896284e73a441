package runner_test

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
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
