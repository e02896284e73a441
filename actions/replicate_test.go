package actions_test

import (
	"context"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/actions"
	"github.com/celpolicy/celpolicy/registry/registrytest"
)

func TestReplicate(t *testing.T) {
	tests := []struct {
		name      string
		source    func(t *testing.T) remote.Taggable
		platforms []string
		dryRun    bool
		// existing is pushed to the destination first.
		existing    func(t *testing.T) remote.Taggable
		want        actions.Outcome
		wantDetail  string
		sameDigest  bool     // the destination ends up with the source digest
		wantPlatfms []string // platforms of the copied index
	}{
		{name: "single image", source: func(t *testing.T) remote.Taggable { return newImage(t, "linux/amd64") },
			want: actions.Copied, sameDigest: true},
		{name: "whole index", source: func(t *testing.T) remote.Taggable { return newIndex(t, "linux/amd64", "linux/arm64/v8") },
			want: actions.Copied, sameDigest: true, wantPlatfms: []string{"linux/amd64", "linux/arm64/v8"}},
		{name: "index filtered to one platform", source: func(t *testing.T) remote.Taggable {
			return newIndex(t, "linux/amd64", "linux/arm64/v8", "linux/s390x")
		}, platforms: []string{"linux/arm64"}, want: actions.Copied, wantDetail: "1 of 3 platforms",
			wantPlatfms: []string{"linux/arm64/v8"}},
		{name: "filter keeping every platform copies the index unchanged", source: func(t *testing.T) remote.Taggable {
			return newIndex(t, "linux/amd64", "linux/arm64/v8")
		}, platforms: []string{"linux/amd64", "linux/arm64"}, want: actions.Copied, sameDigest: true,
			wantPlatfms: []string{"linux/amd64", "linux/arm64/v8"}},
		{name: "filter keeping no platform", source: func(t *testing.T) remote.Taggable { return newIndex(t, "linux/amd64") },
			platforms: []string{"windows/amd64"}, want: actions.Skipped, wantDetail: "no platform of the index"},
		{name: "single image of another platform", source: func(t *testing.T) remote.Taggable { return newImage(t, "linux/amd64") },
			platforms: []string{"linux/arm64"}, want: actions.Skipped, wantDetail: "platform linux/amd64 is not among linux/arm64"},
		{name: "dry run copies nothing", source: func(t *testing.T) remote.Taggable { return newImage(t, "linux/amd64") },
			dryRun: true, want: actions.Copied},
		{name: "a moved tag is replaced", source: func(t *testing.T) remote.Taggable { return newImage(t, "linux/amd64") },
			existing: func(t *testing.T) remote.Taggable { return newImage(t, "linux/amd64") },
			want:     actions.Copied, wantDetail: "replacing sha256:", sameDigest: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			src, dst := registrytest.Memory(t), registrytest.Memory(t)
			push(t, src+"/team/app:v1", tc.source(t))
			if tc.existing != nil {
				push(t, dst+"/mirror/app:v1", tc.existing(t))
			}
			before := headDigest(t, dst+"/mirror/app:v1")
			clock := &instantClock{}
			client := newClient(t, clock, src, dst)
			rep, err := actions.NewReplicator(client, actions.WithClock(clock))
			require.NoError(t, err)
			img := read(t, client, src+"/team/app:v1")
			task := replicateTask(img, dst+"/mirror/app:v1", tc.platforms, false)
			task.DryRun = tc.dryRun

			res, err := rep.Execute(ctx, task)
			require.NoError(t, err)
			assert.Equal(t, tc.want, res.Outcome)
			assert.Contains(t, res.Detail, tc.wantDetail)
			assert.Equal(t, tc.dryRun, res.DryRun)
			got := headDigest(t, dst+"/mirror/app:v1")
			if tc.dryRun || tc.want == actions.Skipped {
				assert.Equal(t, before, got, "nothing may change")
				return
			}
			assert.Positive(t, res.Bytes)
			if tc.sameDigest {
				assert.Equal(t, img.Digest, got)
			} else {
				assert.NotEqual(t, img.Digest, got)
			}
			if tc.wantPlatfms != nil {
				copied := read(t, client, dst+"/mirror/app:v1")
				assert.Equal(t, tc.wantPlatfms, copied.Platforms)
			}

			// Skip-same-digest: a second copy finds it there.
			again, err := rep.Execute(ctx, task)
			require.NoError(t, err)
			assert.Equal(t, actions.Present, again.Outcome)
			assert.Zero(t, again.Bytes)
		})
	}
}

// TestReplicateReferrers copies an OCI 1.1 referrer (an SBOM whose subject
// is the image) and a cosign signature tag along with the image.
func TestReplicateReferrers(t *testing.T) {
	ctx := context.Background()
	src, dst := registrytest.Memory(t), registrytest.Memory(t)
	img := newImage(t, "linux/amd64")
	push(t, src+"/team/app:v1", img)
	sbom := newArtifact(t, "application/spdx+json", img)
	push(t, src+"/team/app@"+digestOf(t, sbom), sbom)
	sig := newImage(t, "")
	sigTag := "sha256-" + digestOf(t, img)[len("sha256:"):] + ".sig"
	push(t, src+"/team/app:"+sigTag, sig)

	clock := &instantClock{}
	client := newClient(t, clock, src, dst)
	rep, err := actions.NewReplicator(client, actions.WithClock(clock))
	require.NoError(t, err)
	image := read(t, client, src+"/team/app:v1")
	require.Len(t, image.Referrers, 2)

	res, err := rep.Execute(ctx, replicateTask(image, dst+"/mirror/app:v1", nil, true))
	require.NoError(t, err)
	assert.Equal(t, actions.Copied, res.Outcome)
	assert.Contains(t, res.Detail, "with 2 referrers")
	assert.Equal(t, digestOf(t, sig), headDigest(t, dst+"/mirror/app:"+sigTag))
	assert.Equal(t, digestOf(t, sbom), headDigest(t, dst+"/mirror/app@"+digestOf(t, sbom)))
	copied := read(t, client, dst+"/mirror/app:v1")
	assert.ElementsMatch(t, image.Referrers, copied.Referrers)

	// A referrer added later is copied by the next pass, though the image
	// is already there.
	sbom2 := newArtifact(t, "application/vnd.cyclonedx+json", img)
	push(t, src+"/team/app@"+digestOf(t, sbom2), sbom2)
	image = read(t, client, src+"/team/app:v1")
	res, err = rep.Execute(ctx, replicateTask(image, dst+"/mirror/app:v1", nil, true))
	require.NoError(t, err)
	assert.Equal(t, actions.Present, res.Outcome)
	assert.Contains(t, res.Detail, "1 referrers copied")
	assert.Equal(t, digestOf(t, sbom2), headDigest(t, dst+"/mirror/app@"+digestOf(t, sbom2)))

	// With a platform filter that changes the digest, referrers of the
	// original do not apply and are not copied.
	idx := newIndex(t, "linux/amd64", "linux/arm64")
	push(t, src+"/team/multi:v1", idx)
	isbom := newArtifact(t, "application/spdx+json", idx)
	push(t, src+"/team/multi@"+digestOf(t, isbom), isbom)
	image = read(t, client, src+"/team/multi:v1")
	require.Len(t, image.Referrers, 1)
	res, err = rep.Execute(ctx, replicateTask(image, dst+"/mirror/multi:v1", []string{"linux/amd64"}, true))
	require.NoError(t, err)
	assert.Equal(t, actions.Copied, res.Outcome)
	assert.NotContains(t, res.Detail, "referrers")
	assert.Empty(t, headDigest(t, dst+"/mirror/multi@"+digestOf(t, isbom)))
}

// newArtifact is an OCI artifact (an SBOM, say) whose subject is m.
func newArtifact(t *testing.T, artifactType string, m interface {
	Digest() (v1.Hash, error)
	MediaType() (types.MediaType, error)
	Size() (int64, error)
}) v1.Image {
	t.Helper()
	h, err := m.Digest()
	require.NoError(t, err)
	mt, err := m.MediaType()
	require.NoError(t, err)
	size, err := m.Size()
	require.NoError(t, err)
	a, err := random.Image(256, 1)
	require.NoError(t, err)
	a = mutate.MediaType(a, types.OCIManifestSchema1)
	a = mutate.ConfigMediaType(a, types.MediaType(artifactType))
	return mutate.Subject(a, v1.Descriptor{MediaType: mt, Digest: h, Size: size}).(v1.Image)
}
