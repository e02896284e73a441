package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/celpolicy/celpolicy/conditions"
)

// Client reads image metadata from registries and remembers it. It is safe
// for concurrent use; one Client per process lets every caller share its
// caches, its authenticated connections and its bound on requests in
// flight.
type Client struct {
	o      *options
	rt     http.RoundTripper // per-host CAs and remembered version checks, under retries
	puller *remote.Puller
	cache  *caches
	disk   *diskCache    // nil without WithDiskCache
	slots  chan struct{} // one token per request in flight
	flight singleflight.Group
	hosts  map[string]Host // by registry as policies see it
	parsed *lru.Cache[string, imageRef]
}

// New returns a Client. With no options it reads public and docker-login
// registries over HTTPS; see the With... options for the defaults.
func New(opts ...Option) (*Client, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, fmt.Errorf("registry client: %w", err)
		}
	}
	base, err := newHostTransport(o.transport, o.roots)
	if err != nil {
		return nil, fmt.Errorf("registry client: %w", err)
	}
	// Reads and, through RemoteOptions, writes share the connections and
	// the version checks.
	rt := newPingCache(base, o.clock)
	puller, err := remote.NewPuller(
		remote.WithTransport(&retryTransport{inner: rt, retries: o.retries, clock: o.clock}),
		remote.WithAuthFromKeychain(o.keychain),
		remote.WithUserAgent("celpolicy/"+o.version),
		remote.WithPageSize(o.pageSize),
		// Retrying is retryTransport's job; ggcr's would retry again on
		// top of it, with real sleeps and without Retry-After.
		remote.WithRetryPredicate(func(error) bool { return false }),
		remote.WithRetryStatusCodes(),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
	)
	if err != nil {
		return nil, fmt.Errorf("registry client: %w", err)
	}
	cache, err := newCaches(o)
	if err != nil {
		return nil, fmt.Errorf("registry client: %w", err)
	}
	var disk *diskCache
	if o.diskDir != "" {
		if disk, err = openDiskCache(o.diskDir, o.diskEntries, o.logger); err != nil {
			o.logger.Warn("continuing without the disk cache", "error", err)
		}
	}
	hosts := make(map[string]Host, len(o.hosts))
	for _, h := range o.hosts {
		hosts[registryKey(mustRegistry(h.Host))] = h
	}
	parsed, err := lru.New[string, imageRef](o.tagCacheSize)
	if err != nil {
		return nil, fmt.Errorf("registry client: %w", err)
	}
	return &Client{
		parsed: parsed,
		o:      o,
		rt:     rt,
		puller: puller,
		cache:  cache,
		disk:   disk,
		slots:  make(chan struct{}, o.concurrency),
		hosts:  hosts,
	}, nil
}

// Image reads the image a reference (tag or digest) names, as policies see
// it. A tag read within the tag TTL of an earlier one, and an image whose
// digest is cached, cost no registry request.
func (c *Client) Image(ctx context.Context, ref string) (*conditions.Image, error) {
	img, err := c.image(ctx, ref, true)
	if err != nil {
		return nil, fmt.Errorf("read image %q: %w", ref, err)
	}
	return img, nil
}

// Result is the outcome of reading one reference with Images.
type Result struct {
	Reference string
	Image     *conditions.Image
	Err       error
}

// Images reads many references with at most the Client's concurrency in
// flight. One failure does not stop the others: each Result, in the order
// of refs, carries its image or its error.
func (c *Client) Images(ctx context.Context, refs []string) []Result {
	results := make([]Result, len(refs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(c.o.concurrency, len(refs)) {
		wg.Go(func() {
			for i := range next {
				img, err := c.Image(ctx, refs[i])
				results[i] = Result{Reference: refs[i], Image: img, Err: err}
			}
		})
	}
	for i := range refs {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

// image reads an image; withReferrers says whether to look up its
// referrers too (up to five more requests for an uncached image).
func (c *Client) image(ctx context.Context, s string, withReferrers bool) (*conditions.Image, error) {
	r, err := c.parse(s)
	if err != nil {
		return nil, err
	}
	digest := r.digest
	// known is the digest the tag had when last read, here or by an
	// earlier process: it is only ever checked, never trusted.
	var known string
	if digest == "" {
		d, fresh, ok := c.cache.tag(r.tagKey())
		if !ok && c.disk != nil {
			d, ok = c.disk.tag(r.tagKey())
		}
		known = d
		switch {
		case fresh:
			digest = d
		case ok:
			// The tag was seen before: a HEAD says whether it moved,
			// and the body is only fetched if it did.
			d, err := c.head(ctx, r)
			switch {
			case err == nil:
				digest = d
				c.cache.setTag(r.tagKey(), digest)
			case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnauthorized), ctx.Err() != nil:
				return nil, err
			default:
				// Some registries answer HEAD badly (no digest header,
				// 405): reading the tag below says what is there.
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
	if r.digest == "" && meta.Digest != known && c.disk != nil {
		c.disk.setTag(r.tagKey(), meta.Digest)
	}
	var refs []conditions.Referrer
	if withReferrers {
		if refs, err = c.referrers(ctx, r, meta.Digest); err != nil {
			return nil, err
		}
	}
	img := clone(meta)
	img.Registry, img.Repository, img.Tag = r.registry, r.repository, r.tag
	img.Referrers = slices.Clone(refs)
	img.Source = r.source
	// conditions' canonical form, as Image.Normalize writes it; built here
	// because parsing it again would be most of a warm read's cost.
	img.Reference = r.registry + "/" + r.repository
	if r.tag != "" {
		img.Reference += ":" + r.tag
	} else {
		img.Reference += "@" + img.Digest
	}
	return img, nil
}

func (c *Client) head(ctx context.Context, r imageRef) (string, error) {
	release, err := c.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	desc, err := c.puller.Head(ctx, r.ref)
	if err != nil {
		return "", classify(err)
	}
	return desc.Digest.String(), nil
}

// meta returns what the manifest and config of an image say, from the
// caches when the digest is known and cached. The disk cache is asked
// only about a digest the registry named for r's tag in this process:
// one given in the reference is read from the registry, so that an image
// deleted since an earlier run is not reported as there.
func (c *Client) meta(ctx context.Context, r imageRef, digest string) (*conditions.Image, error) {
	ref := r.ref
	if digest != "" {
		if m, ok := c.cache.meta.Get(r.digestKey(digest)); ok {
			return m, nil
		}
		ref = r.repo.Digest(digest)
	}
	return shared(ctx, &c.flight, "meta "+ref.Name(), func(ctx context.Context) (*conditions.Image, error) {
		release, err := c.acquire(ctx)
		if err != nil {
			return nil, err
		}
		defer release()
		var m *conditions.Image
		cached, ok := manifest{}, false
		if r.digest == "" {
			cached, ok = c.diskManifest(digest)
		}
		if ok {
			m, err = c.parseManifest(ctx, r, cached, 0)
		} else {
			m, err = c.readManifest(ctx, r, ref, 0)
		}
		if err != nil {
			return nil, err
		}
		c.cache.meta.Add(r.digestKey(m.Digest), m)
		return m, nil
	})
}

// acquire takes one of the Client's request slots, or gives up with ctx.
func (c *Client) acquire(ctx context.Context) (release func(), err error) {
	select {
	case c.slots <- struct{}{}:
		return func() { <-c.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// shared runs fn once for concurrent callers with the same key. A caller
// whose leader gave up (its context ended) runs fn itself rather than
// inherit someone else's cancellation.
func shared[T any](ctx context.Context, g *singleflight.Group, key string, fn func(context.Context) (T, error)) (T, error) {
	ch := g.DoChan(key, func() (any, error) { return fn(ctx) })
	var zero T
	select {
	case <-ctx.Done():
		return zero, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			if res.Shared && ctx.Err() == nil &&
				(errors.Is(res.Err, context.Canceled) || errors.Is(res.Err, context.DeadlineExceeded)) {
				return fn(ctx)
			}
			return zero, res.Err
		}
		return res.Val.(T), nil
	}
}

// imageRef is a parsed reference: the names policies see and the ggcr
// names used on the wire.
type imageRef struct {
	registry, repository, tag, digest string
	source                            string
	repo                              name.Repository
	ref                               name.Reference // digest if given, else tag
}

func (r imageRef) tagKey() string { return r.registry + "/" + r.repository + ":" + r.tag }

func (r imageRef) digestKey(digest string) string {
	return r.registry + "/" + r.repository + "@" + digest
}

func (c *Client) parse(s string) (imageRef, error) {
	if r, ok := c.parsed.Get(s); ok {
		return r, nil
	}
	reg, repository, tag, digest, err := conditions.ParseReference(s)
	if err != nil {
		return imageRef{}, err
	}
	repo, err := c.repository(reg + "/" + repository)
	if err != nil {
		return imageRef{}, err
	}
	r := imageRef{registry: reg, repository: repository, tag: tag, digest: digest,
		source: c.hosts[reg].Name, repo: repo}
	if digest != "" {
		r.ref = repo.Digest(digest)
	} else {
		r.ref = repo.Tag(tag)
	}
	c.parsed.Add(s, r)
	return r, nil
}

// repository parses registry/repository, plain HTTP if its host says so.
func (c *Client) repository(s string) (name.Repository, error) {
	repo, err := name.NewRepository(s, name.WeakValidation)
	if err != nil {
		return name.Repository{}, err
	}
	if c.hosts[registryKey(repo.Registry)].Insecure {
		return name.NewRepository(s, name.WeakValidation, name.Insecure)
	}
	return repo, nil
}
