package conditions

// WithinCostBounds reports whether every field of img is within the input
// bounds the static cost estimate assumes. For such an image no
// expression that compiled can cost more at run time than its estimate,
// so an evaluation can only fail on the image's content, never on the
// runtime cost limit (when that limit is at least the estimate). The
// policy index relies on it to skip policies without changing errors.
func (img *Image) WithinCostBounds() bool {
	if len(img.Registry) > maxNameSize || len(img.Repository) > maxNameSize || len(img.Source) > maxNameSize ||
		len(img.MediaType) > maxNameSize || len(img.Tag) > maxTagSize || len(img.Digest) > maxDigestSize ||
		len(img.Reference) > 2*maxNameSize+maxTagSize+maxDigestSize ||
		len(img.Layers) > maxLayers || len(img.Platforms) > maxPlatforms || len(img.Referrers) > maxReferrers ||
		!mapWithinBounds(img.Labels) || !mapWithinBounds(img.Annotations) {
		return false
	}
	for _, l := range img.Layers {
		if len(l.Digest) > maxDigestSize || len(l.MediaType) > maxNameSize {
			return false
		}
	}
	for _, p := range img.Platforms {
		if len(p) > maxNameSize {
			return false
		}
	}
	for _, r := range img.Referrers {
		if len(r.ArtifactType) > maxNameSize || len(r.Digest) > maxNameSize {
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
