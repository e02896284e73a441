package actions

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/celpolicy/celpolicy/registry"
)

// retrier runs an operation again after errors that may go away by
// themselves.
type retrier struct {
	retries int
	clock   registry.Clock
}

// waitHint is an error that says how long the server asked to wait.
type waitHint interface{ retryAfter() (time.Duration, bool) }

// do runs fn until it succeeds, fails for good, or the retries run out,
// and returns how many attempts it made.
func (r retrier) do(ctx context.Context, retryable func(error) bool, fn func(ctx context.Context) error) (int, error) {
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || attempt > r.retries || ctx.Err() != nil || !retryable(err) {
			return attempt, err
		}
		wait := registry.Backoff(attempt - 1)
		var h waitHint
		if errors.As(err, &h) {
			if d, ok := h.retryAfter(); ok {
				if d > registry.MaxRetryAfter {
					return attempt, err
				}
				wait = d
			}
		}
		select {
		case <-ctx.Done():
			return attempt, err
		case <-r.clock.After(wait):
		}
	}
}

// retryableRegistry reports whether a registry operation that failed with
// err may succeed when run again from the start: the registry was
// overloaded or failing (408, 429, 5xx), the connection broke, or an
// upload session was left unusable by a broken request.
func retryableRegistry(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		if registry.RetryableStatus(terr.StatusCode) || terr.StatusCode == http.StatusRequestedRangeNotSatisfiable {
			return true
		}
		for _, e := range terr.Errors {
			switch e.Code {
			case transport.BlobUploadInvalidErrorCode, transport.BlobUploadUnknownErrorCode,
				transport.DigestInvalidErrorCode, transport.TooManyRequestsErrorCode, transport.UnavailableErrorCode:
				return true
			}
		}
		return false
	}
	return connectionError(err)
}

// connectionError reports whether err is a broken, refused or timed-out
// connection.
func connectionError(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return !dnsErr.IsNotFound
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr)
}
