package registry

import (
	"maps"
	"slices"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/celpolicy/celpolicy/conditions"
)

// caches holds what a Client remembers between reads. Each map is a
// bounded, concurrency-safe LRU; entries are never changed after they are
// added, only replaced.
//
//   - meta: digest → what the manifest and config say. Content under a
//     digest never changes, so entries live until evicted.
//   - tags: registry/repository:tag → digest, trusted for the tag TTL.
//   - referrers: registry/repository@digest → referrers, trusted for the
//     tag TTL too: a signature can be added to an image at any time.
type caches struct {
	meta      *lru.Cache[string, *conditions.Image]
	tags      *lru.Cache[string, timed[string]]
	referrers *lru.Cache[string, timed[[]conditions.Referrer]]
	ttl       time.Duration
	clock     Clock
}

// timed is a cached value and when the registry last confirmed it.
type timed[T any] struct {
	value T
	at    time.Time
}

func newCaches(o *options) (*caches, error) {
	meta, err := lru.New[string, *conditions.Image](o.cacheSize)
	if err != nil {
		return nil, err
	}
	tags, err := lru.New[string, timed[string]](o.tagCacheSize)
	if err != nil {
		return nil, err
	}
	refs, err := lru.New[string, timed[[]conditions.Referrer]](o.tagCacheSize)
	if err != nil {
		return nil, err
	}
	return &caches{meta: meta, tags: tags, referrers: refs, ttl: o.tagTTL, clock: o.clock}, nil
}

// fresh reports whether a value confirmed at `at` is still within the TTL.
func (c *caches) fresh(at time.Time) bool {
	return c.ttl > 0 && c.clock.Now().Sub(at) < c.ttl
}

// tag returns the cached digest of a tag, and whether it is still fresh.
func (c *caches) tag(key string) (digest string, fresh, ok bool) {
	e, ok := c.tags.Get(key)
	if !ok {
		return "", false, false
	}
	return e.value, c.fresh(e.at), true
}

func (c *caches) setTag(key, digest string) {
	c.tags.Add(key, timed[string]{value: digest, at: c.clock.Now()})
}

func (c *caches) freshReferrers(key string) ([]conditions.Referrer, bool) {
	e, ok := c.referrers.Get(key)
	if !ok || !c.fresh(e.at) {
		return nil, false
	}
	return e.value, true
}

func (c *caches) setReferrers(key string, refs []conditions.Referrer) {
	c.referrers.Add(key, timed[[]conditions.Referrer]{value: refs, at: c.clock.Now()})
}

// clone copies an image deeply, so a caller that changes what it was
// given cannot change the cache.
func clone(img *conditions.Image) *conditions.Image {
	out := *img
	out.Labels = maps.Clone(img.Labels)
	out.Annotations = maps.Clone(img.Annotations)
	out.Layers = slices.Clone(img.Layers)
	out.Platforms = slices.Clone(img.Platforms)
	out.Referrers = slices.Clone(img.Referrers)
	return &out
}
