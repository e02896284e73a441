package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/celpolicy/celpolicy/conditions"
)

// ImageMetadata reads an image like Image, but without its Referrers:
// no referrers API call, no referrers tag, no cosign tags, so an uncached
// image costs two requests (manifest and config) instead of up to seven.
// It is for callers whose policies never read image.referrers, such as a
// replication pass of policies that neither test referrers nor copy
// them. Caching is as for Image.
func (c *Client) ImageMetadata(ctx context.Context, ref string) (*conditions.Image, error) {
	img, err := c.imageMetadata(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("read image %q: %w", ref, err)
	}
	return img, nil
}

// imageMetadata is Client.image without the referrers lookup; keep the
// two alike.
func (c *Client) imageMetadata(ctx context.Context, s string) (*conditions.Image, error) {
	r, err := c.parse(s)
	if err != nil {
		return nil, err
	}
	digest := r.digest
	if digest == "" {
		d, fresh, ok := c.cache.tag(r.tagKey())
		switch {
		case fresh:
			digest = d
		case ok:
			d, err := c.head(ctx, r)
			switch {
			case err == nil:
				digest = d
				c.cache.setTag(r.tagKey(), digest)
			case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnauthorized), ctx.Err() != nil:
				return nil, err
			}
		}
	}
	meta, err := c.meta(ctx, r, digest)
	if err != nil {
		return nil, err
	}
	if digest == "" {
		c.cache.setTag(r.tagKey(), meta.Digest)
	}
	img := clone(meta)
	img.Registry, img.Repository, img.Tag = r.registry, r.repository, r.tag
	img.Referrers = nil
	img.Source = r.source
	img.Reference = r.registry + "/" + r.repository
	if r.tag != "" {
		img.Reference += ":" + r.tag
	} else {
		img.Reference += "@" + img.Digest
	}
	return img, nil
}
