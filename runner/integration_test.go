package runner_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/registry/registrytest"
	"github.com/celpolicy/celpolicy/runner"
)

// TestIntegrationDistribution replicates between two CNCF distribution
// registries (Debian's docker-registry), the mirror behind a proxy that
// injects 500s, 429s and dropped connections: a multi-platform index
// filtered to one platform, an image with an SBOM (OCI subject, kept in
// the referrers tag schema since distribution 2.x has no referrers API)
// and a cosign signature tag, a second image of the same content whose
// blobs are mounted, and a retention delete, first as a dry run.
func TestIntegrationDistribution(t *testing.T) {
	src, dst := registrytest.Start(t), registrytest.Start(t)
	idx := platformIndex(t, "linux/amd64", "linux/arm64/v8")
	writeRef(t, src+"/team/multi:v1", idx)
	app, err := random.Image(256<<10, 4)
	require.NoError(t, err)
	writeRef(t, src+"/team/app:v1", app)
	writeRef(t, src+"/team/app-copy:v1", app)
	appDigest := digest(t, app)
	sbom := subjectOf(t, app)
	writeRef(t, src+"/team/app@"+digest(t, sbom), sbom)
	sig, err := random.Image(128, 1)
	require.NoError(t, err)
	sigTag := "sha256-" + strings.TrimPrefix(appDigest, "sha256:") + ".sig"
	writeRef(t, src+"/team/app:"+sigTag, sig)
	pushRandom(t, src+"/sandbox/old:v1", 1024, 1)
	pushRandom(t, src+"/sandbox/keep:v1", 1024, 1)

	proxy := newFaultProxy(t, dst, firstTimeFaults())
	set := loadSet(t, inventory(src, proxy.host), `apiVersion: celpolicy.dev/v1
kind: Policy
metadata: {name: mirror-multi}
spec:
  match: image.repository == "team/multi"
  actions:
    - type: replicate
      to: [mirror]
      platforms: [linux/arm64]
  sources:
    - registry: src
      repositories: ["team/*"]
---
apiVersion: celpolicy.dev/v1
kind: Policy
metadata: {name: mirror-app}
spec:
  match: image.repository.startsWith("team/app")
  actions:
    - type: replicate
      to: [mirror]
      referrers: true
---
apiVersion: celpolicy.dev/v1
kind: Policy
metadata: {name: retention}
spec:
  match: image.repository == "sandbox/old"
  actions:
    - type: delete
  sources:
    - registry: src
      repositories: ["sandbox/*"]
`)
	clock := &instantClock{}
	o := options(t, set, clock)
	o.Concurrency = 1 // app-copy before app, so that app's blobs are mounted

	o.DryRun = true
	plan := run(t, set, o)
	assert.Equal(t, 3, plan.Copied)
	assert.Equal(t, 1, plan.Deleted)
	assert.Zero(t, plan.Failed)
	assert.Empty(t, headDigest(t, dst+"/team/app:v1"), "a dry run copies nothing")
	assert.NotEmpty(t, headDigest(t, src+"/sandbox/old:v1"), "a dry run deletes nothing")

	o.DryRun = false
	sum := run(t, set, o)
	for _, it := range sum.Items {
		for _, task := range it.Tasks {
			t.Logf("%s %s %s: %s %s (%d bytes, %d attempts)", it.Reference, task.Type, task.Policy, task.Outcome, task.Detail+task.Error, task.Bytes, task.Attempts)
		}
	}
	assert.Positive(t, proxy.faults.Load(), "faults were injected")
	assert.Zero(t, sum.Failed)
	assert.Equal(t, 3, sum.Copied)
	assert.Equal(t, 1, sum.Deleted)
	require.Len(t, sum.Items, 5, "every image is reported")

	// The index holds arm64 only.
	multi := read(t, dst+"/team/multi:v1")
	im, err := multi.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 1)
	assert.Equal(t, "arm64", im.Manifests[0].Platform.Architecture)

	// The image, its SBOM (and the referrers tag pointing at it) and its
	// signature tag.
	assert.Equal(t, appDigest, headDigest(t, dst+"/team/app:v1"))
	assert.Equal(t, digest(t, sbom), headDigest(t, dst+"/team/app@"+digest(t, sbom)))
	assert.Equal(t, digest(t, sig), headDigest(t, dst+"/team/app:"+sigTag))
	refs, err := remote.Referrers(mustDigest(t, dst+"/team/app@"+appDigest))
	require.NoError(t, err)
	rm, err := refs.IndexManifest()
	require.NoError(t, err)
	require.Len(t, rm.Manifests, 1)
	assert.Equal(t, digest(t, sbom), rm.Manifests[0].Digest.String())

	// app's blobs were mounted from app-copy, not sent again.
	bytesOf := map[string]int64{}
	for _, it := range sum.Items {
		for _, task := range it.Tasks {
			bytesOf[strings.TrimPrefix(it.Reference, src+"/")] += task.Bytes
		}
	}
	assert.Greater(t, bytesOf["team/app-copy:v1"], int64(1<<20))
	assert.Less(t, bytesOf["team/app:v1"], bytesOf["team/app-copy:v1"]/10, "blobs mounted across repositories")

	// Distribution 2.x deletes manifests only: the tag went with its
	// manifest, the other repository stayed.
	assert.Empty(t, headDigest(t, src+"/sandbox/old:v1"))
	assert.NotEmpty(t, headDigest(t, src+"/sandbox/keep:v1"))

	// A second pass copies nothing.
	again := run(t, set, options(t, set, clock))
	assert.Zero(t, again.Copied)
	assert.Equal(t, 3, again.Present)
	assert.Zero(t, again.Failed)
	assert.Zero(t, again.Bytes)
}

// TestIntegrationShards: N shards of a pass between two distribution
// registries copy every repository exactly once.
func TestIntegrationShards(t *testing.T) {
	src, dst := registrytest.Start(t), registrytest.Start(t)
	for i := range 9 {
		pushRandom(t, fmt.Sprintf("%s/team/app%d:v1", src, i), 512, 1)
	}
	set := loadSet(t, inventory(src, dst), mirrorPolicy)
	copied := 0
	for i := range 4 {
		o := options(t, set, &instantClock{})
		o.Shard = runner.Shard{I: i, N: 4}
		sum := run(t, set, o)
		assert.Zero(t, sum.Failed)
		assert.Zero(t, sum.Present, "no repository is handled by two shards")
		copied += sum.Copied
	}
	assert.Equal(t, 9, copied)
}

func platformIndex(t *testing.T, platforms ...string) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, s := range platforms {
		p, err := v1.ParsePlatform(s)
		require.NoError(t, err)
		img, err := random.Image(1024, 1)
		require.NoError(t, err)
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
		img, err = mutate.ConfigFile(img, cf)
		require.NoError(t, err)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
}

// subjectOf is an SPDX SBOM artifact whose subject is img.
func subjectOf(t *testing.T, img v1.Image) v1.Image {
	t.Helper()
	d, err := img.Digest()
	require.NoError(t, err)
	size, err := img.Size()
	require.NoError(t, err)
	mt, err := img.MediaType()
	require.NoError(t, err)
	a, err := random.Image(256, 1)
	require.NoError(t, err)
	a = mutate.ConfigMediaType(mutate.MediaType(a, types.OCIManifestSchema1), "application/spdx+json")
	return mutate.Subject(a, v1.Descriptor{MediaType: mt, Digest: d, Size: size}).(v1.Image)
}

func writeRef(t *testing.T, ref string, m remote.Taggable) {
	t.Helper()
	registrytest.Push(t, ref, m)
}

func digest(t *testing.T, m registrytest.Describable) string {
	t.Helper()
	return registrytest.Digest(t, m)
}

func mustDigest(t *testing.T, ref string) name.Digest {
	t.Helper()
	d, err := name.NewDigest(ref, name.Insecure)
	require.NoError(t, err)
	return d
}

func read(t *testing.T, ref string) v1.ImageIndex {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(t, err)
	idx, err := remote.Index(r)
	require.NoError(t, err)
	return idx
}
