package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/celpolicy/celpolicy/conditions"
)

// maxIndexDepth bounds indexes of indexes, so a malicious registry cannot
// send a reader round in circles.
const maxIndexDepth = 4

// readManifest reads a manifest or index and what it points to. The image
// it returns has no Registry, Repository, Tag, Reference, Referrers or
// Source: those belong to how it was reached, not to its content.
func (c *Client) readManifest(ctx context.Context, r imageRef, ref name.Reference, depth int) (*conditions.Image, error) {
	desc, err := c.puller.Get(ctx, ref)
	if err != nil {
		return nil, classify(err)
	}
	mt := mediaType(desc)
	switch {
	case mt.IsIndex():
		return c.readIndex(ctx, r, desc, mt, depth)
	case mt.IsImage():
		return readImage(desc, mt)
	case mt.IsSchema1():
		return nil, fmt.Errorf("%w %q: docker schema 1 manifests are not read, push the image again", ErrUnsupportedMediaType, mt)
	}
	return nil, fmt.Errorf("%w %q of manifest %s", ErrUnsupportedMediaType, mt, desc.Digest)
}

// mediaType is the Content-Type the registry sent or, when that is not a
// manifest type (static file servers send application/json), the
// manifest's own mediaType field.
func mediaType(desc *remote.Descriptor) types.MediaType {
	mt := desc.MediaType
	if mt.IsIndex() || mt.IsImage() || mt.IsSchema1() {
		return mt
	}
	var doc struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if json.Unmarshal(desc.Manifest, &doc) == nil && doc.MediaType != "" {
		return doc.MediaType
	}
	return mt
}

func readImage(desc *remote.Descriptor, mt types.MediaType) (*conditions.Image, error) {
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", desc.Digest, err)
	}
	img := &conditions.Image{
		Digest:      desc.Digest.String(),
		MediaType:   string(mt),
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
	vi, err := desc.Image()
	if err != nil {
		return nil, err
	}
	raw, err := vi.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", m.Config.Digest, classify(err))
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

// readIndex sums up an index's platform images; see the package doc for
// the rules.
func (c *Client) readIndex(ctx context.Context, r imageRef, desc *remote.Descriptor, mt types.MediaType, depth int) (*conditions.Image, error) {
	im, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, fmt.Errorf("parse index %s: %w", desc.Digest, err)
	}
	img := &conditions.Image{
		Digest:      desc.Digest.String(),
		MediaType:   string(mt),
		Annotations: im.Annotations,
	}
	for _, child := range im.Manifests {
		if !child.MediaType.IsImage() && !child.MediaType.IsIndex() || attestation(child) {
			continue
		}
		if child.MediaType.IsIndex() && depth+1 >= maxIndexDepth {
			return nil, fmt.Errorf("index %s: indexes nested deeper than %d", desc.Digest, maxIndexDepth)
		}
		sub, err := c.child(ctx, r, child.Digest.String(), depth+1)
		if err != nil {
			return nil, fmt.Errorf("index %s: manifest %s: %w", desc.Digest, child.Digest, err)
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

// child reads a manifest an index points to, through the digest cache:
// two tags of one multi-platform image share their platform manifests.
func (c *Client) child(ctx context.Context, r imageRef, digest string, depth int) (*conditions.Image, error) {
	key := r.digestKey(digest)
	if m, ok := c.cache.meta.Get(key); ok {
		return m, nil
	}
	m, err := c.readManifest(ctx, r, r.repo.Digest(digest), depth)
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
