package actions

import (
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// mountImage is an image whose layers carry, where the Replicator knows
// one, a repository of the destination registry that already holds them.
// ggcr then asks the registry to mount the blob from there (a registry
// that cannot answers with an upload session, and the blob is sent).
// Layers that came from the destination registry itself are mountable
// already: ggcr's remote layers carry their source.
type mountImage struct {
	v1.Image
	r   *Replicator
	dst name.Repository
}

func (m *mountImage) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = m.r.mountLayer(l, m.dst)
	}
	return out, nil
}

// mountLayer wraps l as mountable from the repository of dst's registry
// that is known to hold it, if that is not dst itself.
func (r *Replicator) mountLayer(l v1.Layer, dst name.Repository) v1.Layer {
	if ml, ok := l.(*remote.MountableLayer); ok && ml.Reference.Context().RegistryStr() == dst.RegistryStr() {
		return l // from the destination registry itself: ggcr mounts it
	}
	h, err := l.Digest()
	if err != nil {
		return l
	}
	repo, ok := r.mounts.Get(dst.RegistryStr() + " " + h.String())
	if !ok || repo == dst.RepositoryStr() {
		return l
	}
	return &remote.MountableLayer{Layer: l, Reference: dst.Registry.Repo(repo).Digest(h.String())}
}

// mountIndex makes the images of an index mountImages. The index itself
// is passed on unchanged (v1.ImageIndex cannot be embedded: its
// ImageIndex method would clash with the field).
type mountIndex struct {
	base v1.ImageIndex
	r    *Replicator
	dst  name.Repository
}

func (m *mountIndex) MediaType() (types.MediaType, error)       { return m.base.MediaType() }
func (m *mountIndex) Digest() (v1.Hash, error)                  { return m.base.Digest() }
func (m *mountIndex) Size() (int64, error)                      { return m.base.Size() }
func (m *mountIndex) IndexManifest() (*v1.IndexManifest, error) { return m.base.IndexManifest() }
func (m *mountIndex) RawManifest() ([]byte, error)              { return m.base.RawManifest() }

func (m *mountIndex) Image(h v1.Hash) (v1.Image, error) {
	img, err := m.base.Image(h)
	if err != nil {
		return nil, err
	}
	return &mountImage{Image: img, r: m.r, dst: m.dst}, nil
}

func (m *mountIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	idx, err := m.base.ImageIndex(h)
	if err != nil {
		return nil, err
	}
	return &mountIndex{base: idx, r: m.r, dst: m.dst}, nil
}

// Layer passes on what an index holds that is neither image nor index.
func (m *mountIndex) Layer(h v1.Hash) (v1.Layer, error) {
	if wl, ok := m.base.(interface {
		Layer(v1.Hash) (v1.Layer, error)
	}); ok {
		return wl.Layer(h)
	}
	return nil, errNoLayer
}
