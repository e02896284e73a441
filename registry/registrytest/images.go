package registrytest

import (
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ImageConfig is what an image's config says about it, as tests set it.
type ImageConfig struct {
	OS, Arch, Variant string
	Labels            map[string]string
	Created           time.Time
}

// Image is a random OCI image of two 512-byte layers with cfg in its
// config and annotations (may be nil) on its manifest.
func Image(t testing.TB, cfg ImageConfig, annotations map[string]string) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	check(t, err)
	return WithConfig(t, img, cfg, annotations)
}

// WithConfig makes img an OCI image with cfg in its config and
// annotations (may be nil) on its manifest.
func WithConfig(t testing.TB, img v1.Image, cfg ImageConfig, annotations map[string]string) v1.Image {
	t.Helper()
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	check(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = cfg.OS, cfg.Arch, cfg.Variant
	cf.Config.Labels = cfg.Labels
	cf.Created = v1.Time{Time: cfg.Created}
	img, err = mutate.ConfigFile(img, cf)
	check(t, err)
	if annotations != nil {
		img = mutate.Annotations(img, annotations).(v1.Image)
	}
	return img
}

// Index is an OCI index of imgs, each with its platform, and the given
// index annotations.
func Index(t testing.TB, annotations map[string]string, imgs []v1.Image, platforms []*v1.Platform) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for i, img := range imgs {
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: platforms[i]}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	return mutate.Annotations(idx, annotations).(v1.ImageIndex)
}

// Artifact is an OCI artifact of the given type that refers to subject,
// as an SBOM or a signature does.
func Artifact(t testing.TB, artifactType types.MediaType, subject v1.Descriptor) v1.Image {
	t.Helper()
	layer, err := random.Layer(64, "application/vnd.example.payload")
	check(t, err)
	img, err := mutate.AppendLayers(empty.Image, layer)
	check(t, err)
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, artifactType)
	return mutate.Subject(img, subject).(v1.Image)
}

// Push writes an image, an index or another taggable to ref, over plain
// HTTP: test registries listen on loopback without TLS.
func Push(t testing.TB, ref string, w remote.Taggable) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	check(t, err)
	switch v := w.(type) {
	case v1.Image:
		check(t, remote.Write(r, v))
	case v1.ImageIndex:
		check(t, remote.WriteIndex(r, v))
	default:
		check(t, remote.Put(r, v))
	}
}

// Describable is what has a digest, a size and a media type.
type Describable interface {
	Digest() (v1.Hash, error)
	Size() (int64, error)
	MediaType() (types.MediaType, error)
}

// Descriptor describes w, e.g. as the subject of an artifact.
func Descriptor(t testing.TB, w Describable) v1.Descriptor {
	t.Helper()
	d, err := w.Digest()
	check(t, err)
	s, err := w.Size()
	check(t, err)
	mt, err := w.MediaType()
	check(t, err)
	return v1.Descriptor{Digest: d, Size: s, MediaType: mt}
}

// Digest is w's digest, "sha256:<hex>".
func Digest(t testing.TB, w Describable) string {
	t.Helper()
	d, err := w.Digest()
	check(t, err)
	return d.String()
}

// Size is an image's config plus layers, as package registry counts it.
func Size(t testing.TB, img v1.Image) int64 {
	t.Helper()
	m, err := img.Manifest()
	check(t, err)
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
