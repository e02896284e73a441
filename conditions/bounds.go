package conditions

// WithinCostBounds reports whether every field of img is within the input
// bounds the static cost estimate assumes. For such an image no
// expression that compiled can cost more at run time than its estimate,
// so an evaluation can only fail on the image's content, never on the
// runtime cost limit (when that limit is at least the estimate). The
// policy index relies on it to skip policies without changing errors.
func (img *Image) WithinCostBounds() bool { return img.WithinCostBoundsFor(AllImageParts) }

// ImageParts names what a set of expressions reads of the image, for
// WithinCostBoundsFor. The scalar fields count as always read.
type ImageParts struct {
	// Labels and Annotations are read as a whole (iterated, sized,
	// compared or passed on).
	Labels, Annotations bool
	// LabelKeys and AnnotationKeys are entries read one by one, by a
	// literal key, when the map is not read as a whole.
	LabelKeys, AnnotationKeys []string
	// Layers, Platforms and Referrers are read at all.
	Layers, Platforms, Referrers bool
}

// AllImageParts reads everything: WithinCostBoundsFor(AllImageParts) is
// WithinCostBounds.
var AllImageParts = &ImageParts{Labels: true, Annotations: true, Layers: true, Platforms: true, Referrers: true}

// WithinCostBoundsFor is WithinCostBounds for expressions that read only
// parts of the image: a part they never read cannot make them cost more,
// however large it is. It checks the scalar fields, the parts read, and
// of a map read entry by entry the values of those entries only (a
// lookup by key costs the same in any map).
func (img *Image) WithinCostBoundsFor(p *ImageParts) bool {
	if len(img.Registry) > maxNameSize || len(img.Repository) > maxNameSize || len(img.Source) > maxNameSize ||
		len(img.MediaType) > maxNameSize || len(img.Tag) > maxTagSize || len(img.Digest) > maxDigestSize ||
		len(img.Reference) > 2*maxNameSize+maxTagSize+maxDigestSize {
		return false
	}
	if !partWithinBounds(img.Labels, p.Labels, p.LabelKeys) || !partWithinBounds(img.Annotations, p.Annotations, p.AnnotationKeys) {
		return false
	}
	if p.Layers {
		if len(img.Layers) > maxLayers {
			return false
		}
		for _, l := range img.Layers {
			if len(l.Digest) > maxDigestSize || len(l.MediaType) > maxNameSize {
				return false
			}
		}
	}
	if p.Platforms {
		if len(img.Platforms) > maxPlatforms {
			return false
		}
		for _, pl := range img.Platforms {
			if len(pl) > maxNameSize {
				return false
			}
		}
	}
	if p.Referrers {
		if len(img.Referrers) > maxReferrers {
			return false
		}
		for _, r := range img.Referrers {
			if len(r.ArtifactType) > maxNameSize || len(r.Digest) > maxNameSize {
				return false
			}
		}
	}
	return true
}

func partWithinBounds(m map[string]string, whole bool, keys []string) bool {
	if whole {
		return mapWithinBounds(m)
	}
	for _, k := range keys {
		if len(m[k]) > maxStringSize {
			return false
		}
	}
	return true
}

func mapWithinBounds(m map[string]string) bool {
	if len(m) > maxMapEntries {
		return false
	}
	for k, v := range m {
		if len(k) > maxNameSize || len(v) > maxStringSize {
			return false
		}
	}
	return true
}

// RuntimeCostLimit returns the cost at which one evaluation of an
// expression is stopped (see WithRuntimeCostLimit).
func (e *Env) RuntimeCostLimit() uint64 { return e.runtimeLimit }

// StaticCostLimit returns the largest worst-case cost an expression may
// have to compile (see WithStaticCostLimit).
func (e *Env) StaticCostLimit() uint64 { return e.staticLimit }
