package registry

import (
	"context"
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
	img, err := c.image(ctx, ref, false)
	if err != nil {
		return nil, fmt.Errorf("read image %q: %w", ref, err)
	}
	return img, nil
}
