package registrytest

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PushRandom pushes a random image of layers layers of layerSize bytes
// each (random bytes, so they compress to about as much) to ref over
// plain HTTP, and returns its digest. Benchmarks use it to fill a source
// registry.
func PushRandom(t testing.TB, ref string, layerSize, layers int64) string {
	t.Helper()
	img, err := random.Image(layerSize, layers)
	if err != nil {
		t.Fatalf("random image: %v", err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	h, err := img.Digest()
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return h.String()
}
