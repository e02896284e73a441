package main

import (
	"encoding/json"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/registry/registrytest"
)

// TestInspectDistribution runs celpolicy inspect against Debian's
// distribution registry (see registrytest.Start): what it prints is what
// was pushed — labels, annotations, created, size, platforms, referrers.
func TestInspectDistribution(t *testing.T) {
	host := registrytest.Start(t)
	built := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	labels := map[string]string{"team": "payments", "scan.status": "passed"}
	amd := registrytest.Image(t, registrytest.ImageConfig{OS: "linux", Arch: "amd64", Labels: labels, Created: built}, nil)
	arm := registrytest.Image(t, registrytest.ImageConfig{OS: "linux", Arch: "arm64", Variant: "v8", Labels: labels, Created: built.Add(time.Hour)}, nil)
	idx := registrytest.Index(t, map[string]string{"org.opencontainers.image.source": "https://example.com/payments"},
		[]v1.Image{amd, arm}, []*v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}})
	ref := host + "/acme/payments:2.4.1"
	registrytest.Push(t, ref, idx)
	sbom := registrytest.Artifact(t, "application/spdx+json", registrytest.Descriptor(t, idx))
	registrytest.Push(t, host+"/acme/payments@"+registrytest.Digest(t, sbom), sbom)
	sig, err := random.Image(128, 1)
	require.NoError(t, err)
	registrytest.Push(t, host+"/acme/payments:sha256-"+registrytest.Digest(t, idx)[len("sha256:"):]+".sig", sig)

	code, out, errOut := cli(t, "", "inspect", "--insecure", ref)
	require.Equal(t, 0, code, errOut)
	var img conditions.Image
	require.NoError(t, json.Unmarshal([]byte(out), &img))
	assert.Equal(t, ref, img.Reference)
	assert.Equal(t, registrytest.Digest(t, idx), img.Digest)
	assert.Equal(t, labels, img.Labels)
	assert.Equal(t, map[string]string{"org.opencontainers.image.source": "https://example.com/payments"}, img.Annotations)
	assert.Equal(t, built.Add(time.Hour), img.Created, "an index is as new as its newest platform")
	assert.Equal(t, registrytest.Size(t, amd)+registrytest.Size(t, arm), img.Size)
	assert.Equal(t, []string{"linux/amd64", "linux/arm64/v8"}, img.Platforms)
	assert.ElementsMatch(t, []conditions.Referrer{
		{ArtifactType: "application/spdx+json", Digest: registrytest.Digest(t, sbom)},
		{ArtifactType: "application/vnd.dev.cosign.artifact.sig.v1+json", Digest: registrytest.Digest(t, sig)},
	}, img.Referrers)

	// Bad input names the reference and does not panic.
	for _, tc := range []struct{ ref, want string }{
		{host + "/acme/payments:9.9.9", `read image "` + host + `/acme/payments:9.9.9"`},
		{"Not A Reference", `"Not A Reference"`},
		{"127.0.0.1:1/acme/payments:1", `"127.0.0.1:1/acme/payments:1"`},
	} {
		code, _, errOut = cli(t, "", "inspect", "--insecure", tc.ref)
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, tc.want)
	}
}
