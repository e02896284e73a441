package actions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/stretchr/testify/assert"

	"github.com/celpolicy/celpolicy/registry"
)

func TestRetryableRegistry(t *testing.T) {
	status := func(code int, codes ...transport.ErrorCode) error {
		e := &transport.Error{StatusCode: code}
		for _, c := range codes {
			e.Errors = append(e.Errors, transport.Diagnostic{Code: c})
		}
		return fmt.Errorf("copy: %w", e)
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"500", status(http.StatusInternalServerError), true},
		{"502", status(http.StatusBadGateway), true},
		{"503", status(http.StatusServiceUnavailable), true},
		{"429", status(http.StatusTooManyRequests), true},
		{"408", status(http.StatusRequestTimeout), true},
		{"416 after a broken upload", status(http.StatusRequestedRangeNotSatisfiable), true},
		{"upload session lost", status(http.StatusNotFound, transport.BlobUploadUnknownErrorCode), true},
		{"digest of a broken upload", status(http.StatusBadRequest, transport.DigestInvalidErrorCode), true},
		{"404", status(http.StatusNotFound, transport.ManifestUnknownErrorCode), false},
		{"401", status(http.StatusUnauthorized, transport.UnauthorizedErrorCode), false},
		{"403", status(http.StatusForbidden, transport.DeniedErrorCode), false},
		{"connection reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{"connection refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{"cut off", io.ErrUnexpectedEOF, true},
		{"unknown host", &net.DNSError{Err: "no such host", IsNotFound: true}, false},
		{"cancelled", context.Canceled, false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), false},
		{"other", errors.New("manifest invalid"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, retryableRegistry(tc.err))
		})
	}
}

// stepClock fires at once and records the waits.
type stepClock struct{ waits []time.Duration }

func (c *stepClock) Now() time.Time { return time.Time{} }
func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	ch <- time.Time{}
	return ch
}

func TestRetrierBackoff(t *testing.T) {
	clock := &stepClock{}
	r := retrier{retries: 4, clock: clock}
	calls := 0
	attempts, err := r.do(context.Background(), func(error) bool { return true }, func(context.Context) error {
		calls++
		return errors.New("still failing")
	})
	assert.Error(t, err)
	assert.Equal(t, 5, attempts)
	assert.Equal(t, 5, calls)
	if assert.Len(t, clock.waits, 4) {
		for i, w := range clock.waits {
			base := registry.RetryBaseWait << i
			assert.GreaterOrEqual(t, w, base/2, "wait %d", i)
			assert.LessOrEqual(t, w, base, "wait %d", i)
		}
	}

	// A Retry-After the server asks for is waited instead.
	clock.waits = nil
	attempts, err = r.do(context.Background(), retryableWebhook, func(context.Context) error {
		if len(clock.waits) == 0 {
			return &webhookError{status: http.StatusTooManyRequests, wait: 3 * time.Second, hasWait: true}
		}
		return nil
	})
	assert.NoError(t, err)
	assert.Equal(t, 2, attempts)
	assert.Equal(t, []time.Duration{3 * time.Second}, clock.waits)

	// A cancelled context stops at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	attempts, _ = r.do(ctx, func(error) bool { return true }, func(context.Context) error { return errors.New("x") })
	assert.Equal(t, 1, attempts)
}
