package registry_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/registry/registrytest"
)

var (
	built   = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	rebuilt = time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC)
)

func TestImageSinglePlatform(t *testing.T) {
	host := registrytest.Memory(t)
	img := newImage(t, platformSpec{os: "linux", arch: "arm64", variant: "v8",
		labels: map[string]string{"team": "payments", "scan.date": "2024-06-01"}, created: built},
		map[string]string{"org.opencontainers.image.source": "https://example.com/app"})
	push(t, host+"/team/app:v1.2.3", img)
	digest := digestOf(t, img)
	m, err := img.Manifest()
	require.NoError(t, err)

	want := &conditions.Image{
		Registry:    host,
		Repository:  "team/app",
		MediaType:   string(types.OCIManifestSchema1),
		Digest:      digest,
		Labels:      map[string]string{"team": "payments", "scan.date": "2024-06-01"},
		Annotations: map[string]string{"org.opencontainers.image.source": "https://example.com/app"},
		Created:     built,
		Size:        imageSize(t, img),
		Platforms:   []string{"linux/arm64/v8"},
	}
	for _, l := range m.Layers {
		want.Layers = append(want.Layers, conditions.Layer{Digest: l.Digest.String(), MediaType: string(l.MediaType), Size: l.Size})
	}

	tests := []struct {
		name, ref, tag, reference string
	}{
		{"by tag", host + "/team/app:v1.2.3", "v1.2.3", host + "/team/app:v1.2.3"},
		{"by digest", host + "/team/app@" + digest, "", host + "/team/app@" + digest},
		{"by tag and digest", host + "/team/app:v1.2.3@" + digest, "v1.2.3", host + "/team/app:v1.2.3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _ := newClient(t)
			got, err := c.Image(context.Background(), tc.ref)
			require.NoError(t, err)
			w := *want
			w.Tag, w.Reference = tc.tag, tc.reference
			assert.Equal(t, &w, got)
			normalized := *got
			require.NoError(t, normalized.Normalize())
			assert.Equal(t, got, &normalized, "the reference is in conditions' canonical form")
		})
	}
}

func TestImageIndex(t *testing.T) {
	host := registrytest.Memory(t)
	amd := newImage(t, platformSpec{os: "linux", arch: "amd64",
		labels: map[string]string{"team": "payments", "arch": "amd64"}, created: built}, nil)
	arm := newImage(t, platformSpec{os: "linux", arch: "arm64", variant: "v8",
		labels: map[string]string{"team": "payments", "arch": "arm64", "extra": "yes"}, created: rebuilt}, nil)
	attest := newImage(t, platformSpec{}, map[string]string{"vnd.docker.reference.type": "attestation-manifest"})
	idx := newIndex(t, map[string]string{"org.opencontainers.image.version": "1.2.3"},
		[]v1.Image{amd, arm, attest},
		[]*v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}, {OS: "unknown", Architecture: "unknown"}})
	push(t, host+"/team/multi:v1", idx)

	c, _, _ := newClient(t)
	got, err := c.Image(context.Background(), host+"/team/multi:v1")
	require.NoError(t, err)

	assert.Equal(t, digestOf(t, idx), got.Digest)
	assert.Equal(t, string(types.OCIImageIndex), got.MediaType)
	assert.Equal(t, map[string]string{"org.opencontainers.image.version": "1.2.3"}, got.Annotations)
	assert.Equal(t, []string{"linux/amd64", "linux/arm64/v8"}, got.Platforms)
	assert.Equal(t, imageSize(t, amd)+imageSize(t, arm), got.Size, "summed over platforms, attestation left out")
	assert.Len(t, got.Layers, 4)
	assert.Equal(t, map[string]string{"team": "payments", "arch": "amd64", "extra": "yes"}, got.Labels, "first platform wins")
	assert.Equal(t, rebuilt, got.Created, "newest platform")
}

func TestImageIndexPlatformFromConfig(t *testing.T) {
	host := registrytest.Memory(t)
	img := newImage(t, platformSpec{os: "linux", arch: "s390x"}, nil)
	idx := newIndex(t, nil, []v1.Image{img}, []*v1.Platform{nil})
	push(t, host+"/app:v1", idx)

	c, _, _ := newClient(t)
	got, err := c.Image(context.Background(), host+"/app:v1")
	require.NoError(t, err)
	assert.Equal(t, []string{"linux/s390x"}, got.Platforms)
}

func TestImageSource(t *testing.T) {
	host := registrytest.Memory(t)
	push(t, host+"/app:v1", newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil))

	c, _, _ := newClient(t, registry.WithHosts(registry.Host{Name: "local", Host: host}))
	got, err := c.Image(context.Background(), host+"/app:v1")
	require.NoError(t, err)
	assert.Equal(t, "local", got.Source)
}

func TestImageReturnsCopies(t *testing.T) {
	host := registrytest.Memory(t)
	push(t, host+"/app:v1", newImage(t, platformSpec{os: "linux", arch: "amd64", labels: map[string]string{"a": "1"}}, nil))
	c, _, _ := newClient(t)

	first, err := c.Image(context.Background(), host+"/app:v1")
	require.NoError(t, err)
	first.Labels["a"] = "changed"
	first.Platforms[0] = "changed"
	second, err := c.Image(context.Background(), host+"/app:v1")
	require.NoError(t, err)
	assert.Equal(t, "1", second.Labels["a"])
	assert.Equal(t, "linux/amd64", second.Platforms[0])
}

func TestReferrers(t *testing.T) {
	tests := []struct {
		name     string
		api      bool
		wantPath string // a request that must have been made
	}{
		{"referrers api", true, "/referrers/"},
		{"tag schema fallback", false, "/manifests/sha256-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host := registrytest.Memory(t, ggcrregistry.WithReferrersSupport(tc.api))
			img := newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil)
			push(t, host+"/app:v1", img)
			sbom := newArtifact(t, "application/spdx+json", descriptor(t, img))
			push(t, host+"/app@"+digestOf(t, sbom), sbom)
			sig := newArtifact(t, "application/vnd.dev.sigstore.bundle.v0.3+json", descriptor(t, img))
			push(t, host+"/app@"+digestOf(t, sig), sig)

			c, ct, _ := newClient(t)
			got, err := c.Image(context.Background(), host+"/app:v1")
			require.NoError(t, err)
			assert.ElementsMatch(t, []conditions.Referrer{
				{ArtifactType: "application/spdx+json", Digest: digestOf(t, sbom)},
				{ArtifactType: "application/vnd.dev.sigstore.bundle.v0.3+json", Digest: digestOf(t, sig)},
			}, got.Referrers)
			assert.True(t, containsPath(ct.Requests(), tc.wantPath), "requests: %v", ct.Requests())
		})
	}
}

func TestReferrersCosignTags(t *testing.T) {
	host := registrytest.Memory(t)
	img := newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil)
	push(t, host+"/app:v1", img)
	sig, err := random.Image(128, 1)
	require.NoError(t, err)
	tag := "sha256-" + digestOf(t, img)[len("sha256:"):]
	push(t, host+"/app:"+tag+".sig", sig)
	att, err := random.Image(128, 1)
	require.NoError(t, err)
	push(t, host+"/app:"+tag+".att", att)

	tests := []struct {
		name    string
		enabled bool
		want    []conditions.Referrer
	}{
		{"enabled", true, []conditions.Referrer{
			{ArtifactType: "application/vnd.dev.cosign.artifact.sig.v1+json", Digest: digestOf(t, sig)},
			{ArtifactType: "application/vnd.dev.cosign.artifact.att.v1+json", Digest: digestOf(t, att)},
		}},
		{"disabled", false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _ := newClient(t, registry.WithCosignTags(tc.enabled))
			got, err := c.Image(context.Background(), host+"/app:v1")
			require.NoError(t, err)
			assert.Equal(t, tc.want, got.Referrers)
		})
	}
}

func containsPath(requests []string, part string) bool {
	return slices.ContainsFunc(requests, func(r string) bool { return strings.Contains(r, part) })
}
