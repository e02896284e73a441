package actions_test

import (
	"context"
	"strings"
	"sync"
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

	"github.com/celpolicy/celpolicy/actions"
	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/registry/registrytest"
)

var epoch = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// instantClock never waits: After fires at once and records the wait.
type instantClock struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (c *instantClock) Now() time.Time { return epoch }

func (c *instantClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- epoch
	return ch
}

func (c *instantClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// newClient reads and writes the given loopback hosts over plain HTTP,
// without credentials, retrying on clock.
func newClient(t *testing.T, clock registry.Clock, hosts ...string) *registry.Client {
	t.Helper()
	var hs []registry.Host
	for _, h := range hosts {
		hs = append(hs, registry.Host{Host: h, Insecure: true})
	}
	c, err := registry.New(registry.WithHosts(hs...), registry.WithKeychain(authn.NewMultiKeychain()),
		registry.WithClock(clock), registry.WithTagTTL(0))
	require.NoError(t, err)
	return c
}

func newImage(t *testing.T, platform string) v1.Image {
	t.Helper()
	img, err := random.Image(1024, 2)
	require.NoError(t, err)
	if platform != "" {
		p, err := v1.ParsePlatform(platform)
		require.NoError(t, err)
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
		img, err = mutate.ConfigFile(img, cf)
		require.NoError(t, err)
	}
	return img
}

// newIndex is a multi-platform index of random images.
func newIndex(t *testing.T, platforms ...string) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, s := range platforms {
		p, err := v1.ParsePlatform(s)
		require.NoError(t, err)
		adds = append(adds, mutate.IndexAddendum{Add: newImage(t, s), Descriptor: v1.Descriptor{Platform: p}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
}

func push(t *testing.T, ref string, m remote.Taggable) {
	t.Helper()
	registrytest.Push(t, ref, m)
}

func digestOf(t *testing.T, m registrytest.Describable) string {
	t.Helper()
	return registrytest.Digest(t, m)
}

// headDigest returns what ref holds, or "" when nothing.
func headDigest(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	desc, err := remote.Head(r)
	if err != nil && strings.Contains(err.Error(), "404") {
		return ""
	}
	require.NoError(t, err)
	return desc.Digest.String()
}

// read reads ref as the runner would hand it to an executor.
func read(t *testing.T, c *registry.Client, ref string) *conditions.Image {
	t.Helper()
	img, err := c.Image(context.Background(), ref)
	require.NoError(t, err)
	return img
}

func replicateTask(img *conditions.Image, dest string, platforms []string, referrers bool) actions.Task {
	return actions.Task{Type: "replicate", Policy: "p", Image: img, Target: "mirror",
		Verdict: &engine.Verdict{Verdict: "replicate", Policy: "p", Destination: dest, Platforms: platforms, Referrers: referrers}}
}
