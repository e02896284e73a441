// Package registry reads image metadata from container registries as
// policies see it (a conditions.Image), lists repositories and tags, and
// caches what it read.
//
// The smallest use:
//
//	c, err := registry.New(registry.WithVersion("1.0.0"))
//	...
//	img, err := c.Image(ctx, "nginx:1.25") // img.Registry == "docker.io"
//
// # What an image is made of
//
// For an image manifest, Labels and Created come from the config, Platforms
// from the config's os/architecture/variant, Annotations from the manifest,
// and Size is the config plus the layers as the manifest states them
// (compressed bytes). Artifacts whose config is not an image config
// (signatures, SBOMs, charts) have no labels, created time or platform.
//
// For an index (multi-platform image) the rules are:
//   - Annotations are the index's own.
//   - Platforms are the index entries' platforms, in index order.
//   - Size is summed over all platform manifests: each platform's config
//     plus layers. A blob two platforms share counts twice; the manifests
//     themselves do not count.
//   - Layers are the platforms' layers one after another, in index order,
//     so that they add up to Size with the configs.
//   - Labels are merged over the platforms; where two disagree, the first
//     platform in index order wins.
//   - Created is the newest of the platforms' created times.
//   - Build attestations (platform unknown/unknown) are left out.
//
// Referrers come from the OCI 1.1 referrers API or, where a registry lacks
// it, from the sha256-<hex> tag of the referrers tag schema; cosign's
// sha256-<hex>.sig, .att and .sbom tags are added (see WithCosignTags).
//
// # Caches
//
// A Client keeps three bounded LRU caches, all safe for concurrent use:
//   - image metadata by repository and digest (WithCacheSize): content
//     under a digest never changes, so entries stay until evicted;
//   - tag → digest, trusted for the tag TTL (WithTagTTL); after it, a HEAD
//     request says whether the tag moved, and the manifest is only read
//     again if it did;
//   - referrers by digest, trusted for the tag TTL too, since a signature
//     can be added to an image at any time.
//
// So reading a tag again within the TTL costs no request, and after it one
// HEAD (plus the referrers lookup). Concurrent reads of the same image
// share one fetch, and requests in flight are bounded per Client
// (WithConcurrency).
//
// With WithDiskCache, manifests and configs are also kept on disk by
// digest, with the digest each tag was last read at, for the Clients of
// later processes: such a Client asks a tag it finds there with one HEAD,
// and reads nothing more unless the tag moved. Every entry is checked
// against its digest when read; a damaged one is ignored with a warning
// (WithLogger). A digest given in a reference is always asked of the
// registry, so an image deleted since is not reported as there.
//
// # Transport
//
// Credentials come from authn.DefaultKeychain (WithKeychain). Requests
// answered 408, 429 or 5xx, or failing to connect, are retried with
// exponential backoff, waiting what Retry-After asks for when the registry
// says (WithRetries). Registries that need plain HTTP or a private CA are
// configured with WithHosts; the User-Agent is celpolicy/<version>
// (WithVersion). go-containerregistry checks a registry's version
// (GET /v2/) once per repository it talks to; a Client remembers the
// answer (the challenge, or that a host speaks plain HTTP) for a minute,
// so that it asks each registry about once whatever the repositories.
package registry
