package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/registry/registrytest"
)

// rawManifest is a manifest of any media type, pushed as it is.
type rawManifest struct {
	body      []byte
	mediaType string
}

func (m rawManifest) RawManifest() ([]byte, error) { return m.body, nil }

func (m rawManifest) MediaType() (types.MediaType, error) { return types.MediaType(m.mediaType), nil }

func TestImageErrors(t *testing.T) {
	host := registrytest.Memory(t)
	push(t, host+"/app:v1", newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil))
	unknown := `{"schemaVersion":2,"mediaType":"application/vnd.example.unknown+json"}`
	ref, err := name.ParseReference(host + "/app:odd")
	require.NoError(t, err)
	require.NoError(t, remote.Put(ref, rawManifest{body: []byte(unknown), mediaType: "application/vnd.example.unknown+json"}))

	unauthorized := registrytest.Handler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
	}))
	unreachable := closedPort(t)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name    string
		ctx     context.Context
		ref     string
		is      error  // sentinel the error must wrap, if any
		message string // part of the message
	}{
		{"unreachable registry", context.Background(), unreachable + "/app:v1", nil, "connection refused"},
		{"unauthorized", context.Background(), unauthorized + "/app:v1", registry.ErrUnauthorized, "UNAUTHORIZED"},
		{"missing tag", context.Background(), host + "/app:v2", registry.ErrNotFound, "MANIFEST_UNKNOWN"},
		{"missing repository", context.Background(), host + "/nothing:v1", registry.ErrNotFound, "not found"},
		{"missing digest", context.Background(), host + "/app@sha256:" + fmt.Sprintf("%064d", 0), registry.ErrNotFound, "not found"},
		{"malformed reference", context.Background(), "UPPER/Case::x", nil, "parse image reference"},
		{"empty reference", context.Background(), "", nil, "empty"},
		{"unknown media type", context.Background(), host + "/app:odd", registry.ErrUnsupportedMediaType, "application/vnd.example.unknown+json"},
		{"canceled", canceled, host + "/app:v1", context.Canceled, "canceled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _ := newClient(t, registry.WithRetries(2))
			var img any
			require.NotPanics(t, func() { img, err = c.Image(tc.ctx, tc.ref) })
			require.Error(t, err)
			assert.Nil(t, img)
			assert.Contains(t, err.Error(), fmt.Sprintf("read image %q", tc.ref))
			assert.Contains(t, err.Error(), tc.message)
			t.Log(err)
			if tc.is != nil {
				assert.True(t, errors.Is(err, tc.is), "%v is not %v", err, tc.is)
			}
		})
	}
}

func TestImagesKeepsGoingAfterAnError(t *testing.T) {
	host := registrytest.Memory(t)
	push(t, host+"/app:v1", newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil))
	push(t, host+"/app:v3", newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil))
	c, _, _ := newClient(t)

	refs := []string{host + "/app:v1", host + "/app:v2", host + "/app:v3"}
	results := c.Images(context.Background(), refs)
	require.Len(t, results, 3)
	for i, r := range results {
		assert.Equal(t, refs[i], r.Reference)
	}
	assert.NoError(t, results[0].Err)
	assert.ErrorIs(t, results[1].Err, registry.ErrNotFound)
	assert.Nil(t, results[1].Image)
	assert.NoError(t, results[2].Err)
	assert.Equal(t, "v3", results[2].Image.Tag)
}

// closedPort is a loopback host:port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}
