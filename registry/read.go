package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/celpolicy/celpolicy/conditions"
)

// maxIndexDepth bounds indexes of indexes, so a malicious registry cannot
// send a reader round in circles.
const maxIndexDepth = 4

// manifest is a manifest or an index as the registry sent it.
type manifest struct {
	digest    string
	mediaType types.MediaType // as mediaType settles it
	raw       []byte
}

// readManifest reads a manifest or index and what it points to. The image
// it returns has no Registry, Repository, Tag, Reference, Referrers or
// Source: those belong to how it was reached, not to its content.
func (c *Client) readManifest(ctx context.Context, r imageRef, ref name.Reference, depth int) (*conditions.Image, error) {
	desc, err := c.puller.Get(ctx, ref)
	if err != nil {
		return nil, classify(err)
	}
	// ggcr computed the digest from these bytes (and checked it against
	// a digest reference), so they may be cached under it.
	if c.disk != nil {
		c.disk.putBlob(desc.Digest.String(), string(desc.MediaType), desc.Manifest)
	}
	m := manifest{digest: desc.Digest.String(), mediaType: mediaType(desc.MediaType, desc.Manifest), raw: desc.Manifest}
	return c.parseManifest(ctx, r, m, depth)
}

// diskManifest returns a manifest from the disk cache.
func (c *Client) diskManifest(digest string) (manifest, bool) {
	if c.disk == nil {
		return manifest{}, false
	}
	mt, raw, ok := c.disk.blob(digest)
	if !ok {
		return manifest{}, false
	}
	return manifest{digest: digest, mediaType: mediaType(types.MediaType(mt), raw), raw: raw}, true
}

func (c *Client) parseManifest(ctx context.Context, r imageRef, m manifest, depth int) (*conditions.Image, error) {
	switch mt := m.mediaType; {
	case mt.IsIndex():
		return c.readIndex(ctx, r, m, depth)
	case mt.IsImage():
		return c.readImage(ctx, r, m)
	case mt.IsSchema1():
		return nil, fmt.Errorf("%w %q: docker schema 1 manifests are not read, push the image again", ErrUnsupportedMediaType, mt)
	}
	return nil, fmt.Errorf("%w %q of manifest %s", ErrUnsupportedMediaType, m.mediaType, m.digest)
}

// mediaType is the Content-Type the registry sent or, when that is not a
// manifest type (static file servers send application/json), the
// manifest's own mediaType field.
func mediaType(mt types.MediaType, raw []byte) types.MediaType {
	if mt.IsIndex() || mt.IsImage() || mt.IsSchema1() {
		return mt
	}
	var doc struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if json.Unmarshal(raw, &doc) == nil && doc.MediaType != "" {
		return doc.MediaType
	}
	return mt
}

func (c *Client) readImage(ctx context.Context, r imageRef, mf manifest) (*conditions.Image, error) {
	m, err := v1.ParseManifest(bytes.NewReader(mf.raw))
	if err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", mf.digest, err)
	}
	img := &conditions.Image{
		Digest:      mf.digest,
		MediaType:   string(mf.mediaType),
		Annotations: m.Annotations,
		Size:        m.Config.Size,
	}
	for _, l := range m.Layers {
		img.Layers = append(img.Layers, conditions.Layer{Digest: l.Digest.String(), MediaType: string(l.MediaType), Size: l.Size})
		img.Size += l.Size
	}
	// Artifacts (signatures, SBOMs, charts) have configs of other kinds, or
	// none: their labels, created time and platform are unknown.
	if m.Config.MediaType != types.OCIConfigJSON && m.Config.MediaType != types.DockerConfigJSON {
		return img, nil
	}
	raw, err := c.config(ctx, r, m.Config)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", m.Config.Digest, err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse config %s: %w", m.Config.Digest, err)
	}
	if len(cf.Config.Labels) > 0 {
		img.Labels = cf.Config.Labels
	}
	if !cf.Created.IsZero() {
		img.Created = cf.Created.UTC()
	}
	if p := platform(cf.OS, cf.Architecture, cf.Variant); p != "" {
		img.Platforms = []string{p}
	}
	return img, nil
}

// config returns an image's config blob: embedded in the manifest, from
// the disk cache, or from the registry, checked against the descriptor's
// digest and size.
func (c *Client) config(ctx context.Context, r imageRef, d v1.Descriptor) ([]byte, error) {
	digest := d.Digest.String()
	raw, fromDisk := d.Data, false
	if raw == nil && c.disk != nil {
		_, raw, fromDisk = c.disk.blob(digest)
	}
	if raw == nil {
		l, err := c.puller.Layer(ctx, r.repo.Digest(digest))
		if err != nil {
			return nil, classify(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, classify(err)
		}
		defer rc.Close()
		// ggcr's reader fails at the end unless the digest matches; a
		// byte more than the descriptor says is enough to fail on size.
		if raw, err = io.ReadAll(io.LimitReader(rc, d.Size+1)); err != nil {
			return nil, classify(err)
		}
	}
	if int64(len(raw)) != d.Size {
		return nil, fmt.Errorf("config is %d bytes, its descriptor says %d", len(raw), d.Size)
	}
	if d.Data != nil {
		if h, _, err := v1.SHA256(bytes.NewReader(raw)); err != nil || h != d.Digest {
			return nil, fmt.Errorf("config embedded in the manifest does not match digest %s", digest)
		}
	} else if !fromDisk && c.disk != nil {
		c.disk.putBlob(digest, string(d.MediaType), raw)
	}
	return raw, nil
}

// readIndex sums up an index's platform images; see the package doc for
// the rules.
func (c *Client) readIndex(ctx context.Context, r imageRef, m manifest, depth int) (*conditions.Image, error) {
	im, err := v1.ParseIndexManifest(bytes.NewReader(m.raw))
	if err != nil {
		return nil, fmt.Errorf("parse index %s: %w", m.digest, err)
	}
	img := &conditions.Image{
		Digest:      m.digest,
		MediaType:   string(m.mediaType),
		Annotations: im.Annotations,
	}
	for _, child := range im.Manifests {
		if !child.MediaType.IsImage() && !child.MediaType.IsIndex() || attestation(child) {
			continue
		}
		if child.MediaType.IsIndex() && depth+1 >= maxIndexDepth {
			return nil, fmt.Errorf("index %s: indexes nested deeper than %d", m.digest, maxIndexDepth)
		}
		sub, err := c.child(ctx, r, child.Digest.String(), depth+1)
		if err != nil {
			return nil, fmt.Errorf("index %s: manifest %s: %w", m.digest, child.Digest, err)
		}
		for k, v := range sub.Labels {
			if _, ok := img.Labels[k]; !ok {
				if img.Labels == nil {
					img.Labels = map[string]string{}
				}
				img.Labels[k] = v
			}
		}
		if sub.Created.After(img.Created) {
			img.Created = sub.Created
		}
		img.Size += sub.Size
		img.Layers = append(img.Layers, sub.Layers...)
		platforms := sub.Platforms
		if p := child.Platform; p != nil && child.MediaType.IsImage() {
			platforms = []string{platform(p.OS, p.Architecture, p.Variant)}
		}
		for _, p := range platforms {
			if p != "" && !slices.Contains(img.Platforms, p) {
				img.Platforms = append(img.Platforms, p)
			}
		}
	}
	return img, nil
}

// child reads a manifest an index points to, through the digest caches:
// two tags of one multi-platform image share their platform manifests.
// The disk cache is asked too, since the registry just named the index.
func (c *Client) child(ctx context.Context, r imageRef, digest string, depth int) (*conditions.Image, error) {
	key := r.digestKey(digest)
	if m, ok := c.cache.meta.Get(key); ok {
		return m, nil
	}
	var m *conditions.Image
	var err error
	if cached, ok := c.diskManifest(digest); ok {
		m, err = c.parseManifest(ctx, r, cached, depth)
	} else {
		m, err = c.readManifest(ctx, r, r.repo.Digest(digest), depth)
	}
	if err != nil {
		return nil, err
	}
	c.cache.meta.Add(key, m)
	return m, nil
}

// attestation reports whether an index entry is a build attestation
// (buildx marks them with platform unknown/unknown) rather than an image.
func attestation(d v1.Descriptor) bool {
	if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
		return true
	}
	return d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown"
}

func platform(os, arch, variant string) string {
	if os == "" || arch == "" {
		return ""
	}
	if variant != "" {
		return os + "/" + arch + "/" + variant
	}
	return os + "/" + arch
}
