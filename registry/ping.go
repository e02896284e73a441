package registry

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// errPlainHTTP answers an HTTPS version check of a registry known to
// speak plain HTTP.
var errPlainHTTP = errors.New("http: server gave HTTP response to HTTPS client (remembered)")

// pingTTL is how long a registry's answer to the version check is reused.
const pingTTL = time.Minute

// pingCache answers a registry's version check from memory after the
// first answer, for pingTTL. go-containerregistry checks once per
// repository it talks to, so a pass over many repositories would repeat
// the same request, and for a plain-HTTP registry a TLS handshake bound
// to fail, once per repository: on a replication pass that does not copy,
// that was a fifth of the requests. Only unauthenticated checks answered 200 or 401 (the
// challenge), and HTTPS attempts answered in plain HTTP, are remembered;
// a host that answered in plain HTTP is not asked over HTTPS again.
type pingCache struct {
	inner    http.RoundTripper
	clock    Clock
	mu       sync.Mutex
	seen     map[string]pingAnswer    // by scheme://host
	inflight map[string]chan struct{} // closed when the check is answered
}

type pingAnswer struct {
	status int
	header http.Header
	body   []byte
	err    error
	at     time.Time
}

func newPingCache(inner http.RoundTripper, clock Clock) *pingCache {
	return &pingCache{inner: inner, clock: clock, seen: map[string]pingAnswer{}, inflight: map[string]chan struct{}{}}
}

func (p *pingCache) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || req.URL.Path != "/v2/" || req.Header.Get("Authorization") != "" {
		return p.inner.RoundTrip(req)
	}
	key := req.URL.Scheme + "://" + req.URL.Host
	for {
		p.mu.Lock()
		a, ok := p.lookup(key, req.URL)
		if ok {
			p.mu.Unlock()
			if a.err != nil {
				return nil, a.err
			}
			return &http.Response{Status: http.StatusText(a.status), StatusCode: a.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: a.header.Clone(), Body: io.NopCloser(bytes.NewReader(a.body)), ContentLength: int64(len(a.body)), Request: req}, nil
		}
		// Concurrent checks of one registry wait for the first.
		if wait, busy := p.inflight[key]; busy {
			p.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
		}
		done := make(chan struct{})
		p.inflight[key] = done
		p.mu.Unlock()
		resp, err := p.check(key, req)
		p.mu.Lock()
		delete(p.inflight, key)
		close(done)
		p.mu.Unlock()
		return resp, err
	}
}

// lookup returns a remembered answer; p.mu is held.
func (p *pingCache) lookup(key string, u *url.URL) (pingAnswer, bool) {
	if a, ok := p.seen[key]; ok && p.clock.Now().Sub(a.at) < pingTTL {
		return a, true
	}
	if u.Scheme == "https" {
		// ggcr races HTTPS against plain HTTP for a registry that may be
		// reached insecurely, and cancels the loser: a TLS handshake
		// begun for nothing each time. A host that answered in plain
		// HTTP is not asked over HTTPS again.
		if h, ok := p.seen["http://"+u.Host]; ok && h.err == nil && p.clock.Now().Sub(h.at) < pingTTL {
			return pingAnswer{err: errPlainHTTP, at: h.at}, true
		}
	}
	return pingAnswer{}, false
}

// check asks the registry and remembers what may be remembered.
func (p *pingCache) check(key string, req *http.Request) (*http.Response, error) {
	resp, err := p.inner.RoundTrip(req)
	switch {
	case err != nil:
		if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
			p.remember(key, pingAnswer{err: err, at: p.clock.Now()})
		}
		return nil, err
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized:
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if rerr != nil {
			return nil, rerr
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		p.remember(key, pingAnswer{status: resp.StatusCode, header: resp.Header.Clone(), body: body, at: p.clock.Now()})
	}
	return resp, nil
}

func (p *pingCache) remember(key string, a pingAnswer) {
	p.mu.Lock()
	p.seen[key] = a
	p.mu.Unlock()
}
