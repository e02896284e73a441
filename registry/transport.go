package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// retryTransport tries a request again after 408, 429, 5xx and connection
// errors, waiting as long as the registry's Retry-After asks or else an
// exponentially growing, jittered pause. ggcr's own retry neither honours
// Retry-After nor takes a clock, so it is switched off in favour of this.
type retryTransport struct {
	inner   http.RoundTripper
	retries int
	clock   Clock
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := t.inner.RoundTrip(req)
		if attempt >= t.retries || !retryable(req, resp, err) {
			return resp, err
		}
		wait, ok := t.wait(attempt, resp)
		if !ok {
			return resp, err
		}
		if resp != nil {
			// Drain a little so the connection can be reused.
			_, _ = io.CopyN(io.Discard, resp.Body, 4096)
			resp.Body.Close()
		}
		if err := sleep(req.Context(), t.clock, wait); err != nil {
			return nil, err
		}
		if req, err = rewind(req); err != nil {
			return nil, err
		}
	}
}

// wait says how long to pause before the next attempt, and false when the
// registry asked for a longer pause than is worth waiting.
func (t *retryTransport) wait(attempt int, resp *http.Response) (time.Duration, bool) {
	if resp != nil {
		if d, ok := RetryAfter(resp.Header.Get("Retry-After"), t.clock.Now()); ok {
			return d, d <= MaxRetryAfter
		}
	}
	return Backoff(attempt), true
}

func retryable(req *http.Request, resp *http.Response, err error) bool {
	if req.Context().Err() != nil {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	if err != nil {
		return temporary(err)
	}
	return RetryableStatus(resp.StatusCode)
}

// temporary reports whether a transport error may go away by itself:
// refused or reset connections, timeouts, cut-off responses. TLS and
// certificate errors, and a plain-HTTP server answering an HTTPS request,
// will not.
func temporary(err error) bool {
	var certErr *tls.CertificateVerificationError
	var authErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recErr tls.RecordHeaderError
	if errors.As(err, &certErr) || errors.As(err, &authErr) || errors.As(err, &hostErr) || errors.As(err, &recErr) {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

func sleep(ctx context.Context, clock Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-clock.After(d):
		return nil
	}
}

// rewind returns a request whose body can be sent again.
func rewind(req *http.Request) (*http.Request, error) {
	if req.GetBody == nil {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("rewind request body: %w", err)
	}
	r := req.Clone(req.Context())
	r.Body = body
	return r, nil
}

// hostTransport sends requests for a host with its own CA through a
// transport that trusts it, and everything else through the default.
type hostTransport struct {
	def    http.RoundTripper
	byHost map[string]http.RoundTripper
}

func newHostTransport(base http.RoundTripper, roots map[string]*x509.CertPool) (http.RoundTripper, error) {
	if len(roots) == 0 {
		return base, nil
	}
	ht, ok := base.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("a host ca file needs an *http.Transport, the transport given is %T", base)
	}
	t := &hostTransport{def: base, byHost: map[string]http.RoundTripper{}}
	for host, pool := range roots {
		c := ht.Clone()
		if c.TLSClientConfig == nil {
			c.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c.TLSClientConfig.RootCAs = pool
		t.byHost[host] = c
	}
	return t, nil
}

func (t *hostTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if rt, ok := t.byHost[req.URL.Host]; ok {
		return rt.RoundTrip(req)
	}
	return t.def.RoundTrip(req)
}
