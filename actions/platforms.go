package actions

import (
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// referenceDigestAnnotation is how BuildKit ties an attestation manifest
// (platform unknown/unknown) to the image manifest it describes.
const referenceDigestAnnotation = "vnd.docker.reference.digest"

func parsePlatforms(list []string) ([]v1.Platform, error) {
	out := make([]v1.Platform, 0, len(list))
	for _, s := range list {
		p, err := v1.ParsePlatform(s)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w", s, err)
		}
		if p.OS == "" || p.Architecture == "" {
			return nil, fmt.Errorf("platform %q: want os/arch[/variant]", s)
		}
		out = append(out, *p)
	}
	return out, nil
}

// matches says whether platform p (as an index or config states it) is
// the wanted one; a wanted platform without variant accepts any variant.
func matches(p *v1.Platform, want v1.Platform) bool {
	return p != nil && p.OS == want.OS && p.Architecture == want.Architecture &&
		(want.Variant == "" || p.Variant == want.Variant)
}

// matchesAny takes "os/arch[/variant]" as conditions.Image states it.
func matchesAny(s string, want []v1.Platform) bool {
	parts := strings.SplitN(s, "/", 3)
	if len(parts) < 2 {
		return true
	}
	p := &v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return slices.ContainsFunc(want, func(w v1.Platform) bool { return matches(p, w) })
}

// filterIndex plans the copy of idx reduced to the wanted platforms, with
// the attestations of the platforms kept. When every platform is kept the
// index is copied unchanged, so that its digest, and what refers to it,
// stay valid.
func filterIndex(idx v1.ImageIndex, digest string, desc *remote.Descriptor, want []v1.Platform, asked []string) (copyPlan, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return copyPlan{}, err
	}
	kept := map[v1.Hash]bool{}
	platforms := 0
	for _, m := range im.Manifests {
		if m.Platform == nil || isAttestation(m) {
			continue
		}
		platforms++
		if slices.ContainsFunc(want, func(w v1.Platform) bool { return matches(m.Platform, w) }) {
			kept[m.Digest] = true
		}
	}
	switch {
	case len(kept) == 0:
		return copyPlan{skip: fmt.Sprintf("no platform of the index is among %s", strings.Join(asked, ", "))}, nil
	case len(kept) == platforms:
		return copyPlan{want: digest, push: desc}, nil
	}
	drop := func(m v1.Descriptor) bool {
		if m.Platform == nil {
			return false // not a platform manifest: kept
		}
		if isAttestation(m) {
			h, err := v1.NewHash(m.Annotations[referenceDigestAnnotation])
			return err != nil || !kept[h]
		}
		return !kept[m.Digest]
	}
	filtered := mutate.RemoveManifests(idx, drop)
	h, err := filtered.Digest()
	if err != nil {
		return copyPlan{}, err
	}
	return copyPlan{want: h.String(), push: filtered,
		filtered: fmt.Sprintf("%d of %d platforms", len(kept), platforms)}, nil
}

func isAttestation(m v1.Descriptor) bool {
	return m.Platform != nil && m.Platform.OS == "unknown" && m.Platform.Architecture == "unknown"
}
