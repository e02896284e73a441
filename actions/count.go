package actions

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
)

var errNoLayer = errors.New("index child is neither image nor index")

// byteCount adds up the bytes a copy sent.
type byteCount = atomic.Int64

type counterKey struct{}

func withCounter(ctx context.Context, c *byteCount) context.Context {
	return context.WithValue(ctx, counterKey{}, c)
}

// countingTransport adds the body of each upload the registry accepted to
// the counter of the request's context: blobs and manifests sent, not
// those found already there or mounted.
type countingTransport struct{ inner http.RoundTripper }

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.inner.RoundTrip(req)
	if err != nil || resp.StatusCode >= 300 || req.ContentLength <= 0 {
		return resp, err
	}
	switch req.Method {
	case http.MethodPatch, http.MethodPut, http.MethodPost:
		if c, ok := req.Context().Value(counterKey{}).(*byteCount); ok {
			c.Add(req.ContentLength)
		}
	}
	return resp, err
}
