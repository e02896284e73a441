package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/registry"
)

// TestEvalLiveImage reads the image from a registry on loopback, which
// the inventory names as the image's source.
func TestEvalLiveImage(t *testing.T) {
	ref, digest := pushInspected(t)
	host := strings.SplitN(ref, "/", 2)[0]
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(fmt.Sprintf(`apiVersion: celpolicy.dev/v1
kind: Registry
metadata: {name: local}
spec: {host: "%s", insecure: true}
---
apiVersion: celpolicy.dev/v1
kind: Registry
metadata: {name: mirror}
spec: {host: mirror.example.com}
---
apiVersion: celpolicy.dev/v1
kind: Policy
metadata: {name: payments-from-local}
spec:
  match: image.source == "local" && image.labels.team == "payments" && "linux/amd64" in image.platforms
  actions:
    - type: replicate
      to: [mirror]
`, host)), 0o644))

	var out bytes.Buffer
	f := evalFlags{policies: []string{dir}, imageRef: ref, output: "json", combining: "priority", now: exampleNow}
	require.NoError(t, runEval(context.Background(), f, nil, &out, registry.WithKeychain(authn.NewMultiKeychain())))
	var d engine.Decision
	require.NoError(t, json.Unmarshal(out.Bytes(), &d))
	assert.Equal(t, digest, d.Image.Digest)
	require.Contains(t, d.Targets, "mirror")
	assert.Equal(t, "mirror.example.com/acme/payments:2.4.1", d.Targets["mirror"].Destination)

	// A missing tag is an error that names the reference.
	f.imageRef = host + "/acme/payments:9.9.9"
	err := runEval(context.Background(), f, nil, &out, registry.WithKeychain(authn.NewMultiKeychain()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "acme/payments:9.9.9")
}

func TestEvalImageFlagsExclusive(t *testing.T) {
	code, _, errOut := cli(t, "", "eval", "-p", examplePolicies, "-i", "x.json", "--image", "nginx")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "none of the others can be")
}
