package registry

import (
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// RemoteOptions returns go-containerregistry remote options that reach
// registries the way the Client does, over its connections: its hosts'
// CAs, its remembered version checks, its retries (408,
// 429, 5xx and connection errors, Retry-After honoured, on the Client's
// clock), its keychain and its User-Agent, with ggcr's own retries off.
// Package actions writes with them, so that copying is configured like
// reading. wrap, when not nil, wraps the transport under ggcr's
// authentication (to count bytes, say).
func (c *Client) RemoteOptions(wrap func(http.RoundTripper) http.RoundTripper) []remote.Option {
	var rt http.RoundTripper = &retryTransport{inner: c.rt, retries: c.o.retries, clock: c.o.clock}
	if wrap != nil {
		rt = wrap(rt)
	}
	return []remote.Option{
		remote.WithTransport(rt),
		remote.WithAuthFromKeychain(c.o.keychain),
		remote.WithUserAgent("celpolicy/" + c.o.version),
		remote.WithRetryPredicate(func(error) bool { return false }),
		remote.WithRetryStatusCodes(),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
	}
}

// Repository parses "host/path" as the Client's hosts say: plain HTTP
// for an Insecure one.
func (c *Client) Repository(s string) (name.Repository, error) {
	return c.repository(s)
}
