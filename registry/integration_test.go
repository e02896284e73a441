package registry_test

import (
	"context"
	"net/http"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/registry/registrytest"
)

// TestIntegrationDistribution reads back from the CNCF distribution
// registry what was pushed to it. See registrytest.Start for how to run it.
func TestIntegrationDistribution(t *testing.T) {
	host := registrytest.Start(t)
	ctx := context.Background()

	amd := newImage(t, platformSpec{os: "linux", arch: "amd64",
		labels: map[string]string{"team": "payments", "compliance-required": "true"}, created: built}, nil)
	arm := newImage(t, platformSpec{os: "linux", arch: "arm64", variant: "v8",
		labels: map[string]string{"team": "payments", "compliance-required": "true"}, created: rebuilt}, nil)
	idx := newIndex(t, map[string]string{"org.opencontainers.image.version": "1.25.0"}, []v1.Image{amd, arm},
		[]*v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}})
	push(t, host+"/library/nginx:1.25", idx)
	sbom := newArtifact(t, "application/spdx+json", descriptor(t, idx))
	push(t, host+"/library/nginx@"+digestOf(t, sbom), sbom)
	cosignSig, err := random.Image(128, 1)
	require.NoError(t, err)
	push(t, host+"/library/nginx:sha256-"+digestOf(t, idx)[len("sha256:"):]+".sig", cosignSig)
	push(t, host+"/team/app:v1", amd)

	resp, err := http.Get("http://" + host + "/v2/library/nginx/referrers/" + digestOf(t, idx))
	require.NoError(t, err)
	resp.Body.Close()
	t.Logf("distribution's referrers API answers %d (%s); referrers come from the tag schema when it is not 200", resp.StatusCode, resp.Header.Get("Content-Type"))

	c, err := registry.New(registry.WithHosts(registry.Host{Name: "local", Host: host, Insecure: true}), registry.WithPageSize(1))
	require.NoError(t, err)

	img, err := c.Image(ctx, host+"/library/nginx:1.25")
	require.NoError(t, err)
	assert.Equal(t, host, img.Registry)
	assert.Equal(t, "library/nginx", img.Repository)
	assert.Equal(t, "1.25", img.Tag)
	assert.Equal(t, digestOf(t, idx), img.Digest)
	assert.Equal(t, "local", img.Source)
	assert.Equal(t, map[string]string{"team": "payments", "compliance-required": "true"}, img.Labels)
	assert.Equal(t, map[string]string{"org.opencontainers.image.version": "1.25.0"}, img.Annotations)
	assert.Equal(t, rebuilt, img.Created)
	assert.Equal(t, imageSize(t, amd)+imageSize(t, arm), img.Size)
	assert.Equal(t, []string{"linux/amd64", "linux/arm64/v8"}, img.Platforms)
	assert.ElementsMatch(t, []conditions.Referrer{
		{ArtifactType: "application/spdx+json", Digest: digestOf(t, sbom)},
		{ArtifactType: "application/vnd.dev.cosign.artifact.sig.v1+json", Digest: digestOf(t, cosignSig)},
	}, img.Referrers)

	repos, err := c.Repositories(ctx, "local", []string{"library/**"})
	require.NoError(t, err)
	assert.Equal(t, []string{"library/nginx"}, repos)
	repos, err = c.Repositories(ctx, host, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"library/nginx", "team/app"}, repos)

	tags, err := c.Tags(ctx, host+"/library/nginx")
	require.NoError(t, err)
	assert.Contains(t, tags, "1.25")

	_, err = c.Image(ctx, host+"/library/nginx:missing")
	assert.ErrorIs(t, err, registry.ErrNotFound)
}
