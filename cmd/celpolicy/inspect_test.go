package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/registry/registrytest"
)

// pushInspected pushes an image with labels, annotations and a created
// time to an in-memory registry and returns its reference and digest.
func pushInspected(t *testing.T) (ref, digest string) {
	t.Helper()
	host := registrytest.Memory(t)
	img, err := random.Image(1500, 2)
	require.NoError(t, err)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)}
	cf.Config.Labels = map[string]string{"team": "payments", "scan.status": "passed"}
	img, err = mutate.ConfigFile(img, cf)
	require.NoError(t, err)
	img = mutate.Annotations(img, map[string]string{"org.opencontainers.image.source": "https://example.com/app"}).(v1.Image)
	ref = host + "/acme/payments:2.4.1"
	r, err := name.ParseReference(ref)
	require.NoError(t, err)
	require.NoError(t, remote.Write(r, img))
	d, err := img.Digest()
	require.NoError(t, err)
	return ref, d.String()
}

func TestRunInspectJSON(t *testing.T) {
	ref, digest := pushInspected(t)
	var out bytes.Buffer
	require.NoError(t, runInspect(context.Background(), ref, "json", false, &out, registry.WithKeychain(authn.NewMultiKeychain())))

	// What inspect prints is what eval --image-file reads.
	img, err := conditions.DecodeImageJSON("inspect", out.Bytes())
	require.NoError(t, err)
	assert.Equal(t, ref, img.Reference)
	assert.Equal(t, digest, img.Digest)
	assert.Equal(t, "2.4.1", img.Tag)
	assert.Equal(t, map[string]string{"team": "payments", "scan.status": "passed"}, img.Labels)
	assert.Equal(t, map[string]string{"org.opencontainers.image.source": "https://example.com/app"}, img.Annotations)
	assert.Equal(t, time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC), img.Created)
	assert.Equal(t, []string{"linux/amd64"}, img.Platforms)
	assert.Len(t, img.Layers, 2)
	assert.Positive(t, img.Size)
}

func TestRunInspectText(t *testing.T) {
	ref, digest := pushInspected(t)
	var out bytes.Buffer
	require.NoError(t, runInspect(context.Background(), ref, "text", true, &out, registry.WithKeychain(authn.NewMultiKeychain())))
	text := out.String()
	for _, want := range []string{
		"reference:   " + ref + "\n",
		"digest:      " + digest + "\n",
		"created:     2026-11-20T08:00:00Z\n",
		"platforms:   linux/amd64\n",
		"labels:\n  scan.status=passed\n  team=payments\n",
		"annotations:\n  org.opencontainers.image.source=https://example.com/app\n",
		"referrers: -\n",
	} {
		assert.Contains(t, text, want)
	}
}

func TestInspectCommand(t *testing.T) {
	ref, _ := pushInspected(t)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"json by default", []string{"inspect", ref}, exitOK, `"reference": "` + ref + `"`, ""},
		{"text", []string{"inspect", "-o", "text", ref}, exitOK, "labels:\n", ""},
		{"missing tag", []string{"inspect", ref + "-missing"}, exitFailure, "", `read image "` + ref + `-missing": not found`},
		{"malformed reference", []string{"inspect", "Not A Ref"}, exitFailure, "", `"Not A Ref"`},
		{"bad output", []string{"inspect", "-o", "yaml", ref}, exitUsage, "", "-o must be json or text"},
		{"no reference", []string{"inspect"}, exitUsage, "", "accepts 1 arg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, "", tc.args...)
			assert.Equal(t, tc.code, code, "stderr: %s", stderr)
			assert.Contains(t, stdout, tc.stdout)
			assert.Contains(t, stderr, tc.stderr)
		})
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 48213112: "48.2 MB", 3 << 40: "3.3 TB"} {
		assert.Equal(t, want, humanBytes(n))
	}
}
