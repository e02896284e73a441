package actions

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/celpolicy/celpolicy/registry"
)

// Defaults, in one place. Each With... option names the one it overrides.
const (
	defaultRetries        = 4
	defaultJobs           = 4
	defaultWebhookTimeout = 10 * time.Second
	defaultMountCacheSize = 65536
)

// Option configures the standard executors. An option given an invalid
// value makes the constructor fail.
type Option func(*options) error

type options struct {
	logger         *slog.Logger
	clock          registry.Clock
	retries        int
	jobs           int
	webhookTimeout time.Duration
	httpClient     *http.Client
	secret         func(url string) []byte
	version        string
	mountCacheSize int
}

func newOptions(opts []Option) (*options, error) {
	o := &options{
		logger:         slog.New(slog.DiscardHandler),
		clock:          realClock{},
		retries:        defaultRetries,
		jobs:           defaultJobs,
		webhookTimeout: defaultWebhookTimeout,
		version:        "dev",
		mountCacheSize: defaultMountCacheSize,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, fmt.Errorf("actions: %w", err)
		}
	}
	if o.httpClient == nil {
		o.httpClient = &http.Client{}
	}
	return o, nil
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// WithLogger sets the audit log: one record per copy, block, notification
// and deletion, and per failure. Default: discarded.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		o.logger = l
		return nil
	}
}

// WithClock sets the time source for waits between retries and for event
// times. Default the system clock.
func WithClock(c registry.Clock) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("clock must not be nil")
		}
		o.clock = c
		return nil
	}
}

// WithRetries sets how many times a copy or a notification that failed
// with 408, 429, 5xx or a connection error is tried again, with
// exponential backoff and jitter. These retries are on top of the registry
// client's per-request retries: a copy is retried whole (blobs already
// sent are not sent again) when a request of it could not be. Zero
// disables them. Default 4.
func WithRetries(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("retries must not be negative, got %d", n)
		}
		o.retries = n
		return nil
	}
}

// WithJobs bounds the blobs and manifests uploaded at once for one image.
// Default 4.
func WithJobs(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("jobs must be greater than zero, got %d", n)
		}
		o.jobs = n
		return nil
	}
}

// WithWebhookTimeout bounds each attempt to deliver a notification.
// Default 10s.
func WithWebhookTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("webhook timeout must be greater than zero, got %s", d)
		}
		o.webhookTimeout = d
		return nil
	}
}

// WithHTTPClient sets the client notifications are posted with; its
// Timeout, if any, applies on top of WithWebhookTimeout. Default a plain
// http.Client.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("http client must not be nil")
		}
		o.httpClient = c
		return nil
	}
}

// WithWebhookSecret sets where the HMAC secret of a webhook comes from:
// secret(url) returns the key, or nil to send the event unsigned. With a
// key, the body is signed with HMAC-SHA256 and the signature sent as
// "X-Celpolicy-Signature: sha256=<hex>". The policy format has no secret
// field, so that secrets stay out of policy files: the CLI reads one from
// an environment variable or a file. Default: no secret.
func WithWebhookSecret(secret func(url string) []byte) Option {
	return func(o *options) error {
		if secret == nil {
			return errors.New("webhook secret function must not be nil")
		}
		o.secret = secret
		return nil
	}
}

// WithVersion sets the version in the notifier's User-Agent,
// "celpolicy/<version>". Default "dev".
func WithVersion(v string) Option {
	return func(o *options) error {
		if v == "" {
			return errors.New("version must not be empty")
		}
		o.version = v
		return nil
	}
}

// WithMountCacheSize bounds how many blobs the Replicator remembers
// having written, by destination registry, so that a later copy to
// another repository of that registry mounts them instead of uploading
// them again. Default 65536.
func WithMountCacheSize(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("mount cache size must be greater than zero, got %d", n)
		}
		o.mountCacheSize = n
		return nil
	}
}
