package registry

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/celpolicy/celpolicy/conditions"
)

// cosignTags are the tag suffixes cosign stores signatures, attestations
// and SBOMs under, next to the image, and the artifact types its OCI 1.1
// mode gives the same artifacts.
var cosignTags = []struct{ suffix, artifactType string }{
	{".sig", "application/vnd.dev.cosign.artifact.sig.v1+json"},
	{".att", "application/vnd.dev.cosign.artifact.att.v1+json"},
	{".sbom", "application/vnd.dev.cosign.artifact.sbom.v1+json"},
}

// referrers lists the artifacts that refer to an image, cached for the tag
// TTL.
func (c *Client) referrers(ctx context.Context, r imageRef, digest string) ([]conditions.Referrer, error) {
	key := r.digestKey(digest)
	if refs, ok := c.cache.freshReferrers(key); ok {
		return refs, nil
	}
	return shared(ctx, &c.flight, "referrers "+key, func(ctx context.Context) ([]conditions.Referrer, error) {
		release, err := c.acquire(ctx)
		if err != nil {
			return nil, err
		}
		defer release()
		refs, err := c.fetchReferrers(ctx, r, digest)
		if err != nil {
			return nil, fmt.Errorf("list referrers: %w", err)
		}
		c.cache.setReferrers(key, refs)
		return refs, nil
	})
}

// fetchReferrers asks the OCI 1.1 referrers API; ggcr falls back to the
// sha256-<hex> index tag of the referrers tag schema when the registry
// lacks the API. Cosign's own sha256-<hex>.sig/.att/.sbom tags are looked
// for too, since that is where cosign keeps signatures by default.
func (c *Client) fetchReferrers(ctx context.Context, r imageRef, digest string) ([]conditions.Referrer, error) {
	idx, err := remote.Referrers(r.repo.Digest(digest), remote.Reuse(c.puller), remote.WithContext(ctx))
	if err != nil {
		return nil, classify(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var refs []conditions.Referrer
	for _, m := range im.Manifests {
		refs = append(refs, conditions.Referrer{ArtifactType: m.ArtifactType, Digest: m.Digest.String()})
	}
	if !c.o.cosignTags {
		return refs, nil
	}
	base := strings.Replace(digest, ":", "-", 1)
	for _, ct := range cosignTags {
		desc, err := c.puller.Head(ctx, r.repo.Tag(base+ct.suffix))
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cosign tag %s: %w", base+ct.suffix, classify(err))
		}
		d := desc.Digest.String()
		if !slices.ContainsFunc(refs, func(x conditions.Referrer) bool { return x.Digest == d }) {
			refs = append(refs, conditions.Referrer{ArtifactType: ct.artifactType, Digest: d})
		}
	}
	return refs, nil
}
