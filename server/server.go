package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type options struct {
	ready       func() error
	gatherer    prometheus.Gatherer
	metricsPath string
}

// Option configures the handler.
type Option func(*options) error

// WithReadiness sets the readiness check of /readyz: ready when it
// returns nil. Default: always ready.
func WithReadiness(check func() error) Option {
	return func(o *options) error {
		if check == nil {
			return errors.New("readiness check must not be nil")
		}
		o.ready = check
		return nil
	}
}

// WithMetrics serves the metrics of g at path. Default: no metrics.
func WithMetrics(g prometheus.Gatherer, path string) Option {
	return func(o *options) error {
		if g == nil {
			return errors.New("metrics gatherer must not be nil")
		}
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("metrics path %q must start with /", path)
		}
		o.gatherer, o.metricsPath = g, path
		return nil
	}
}

// New returns the handler: GET /healthz answers 200 while the process
// runs; GET /readyz answers 200 when the readiness check passes and 503
// with its error otherwise; GET <metrics path> serves Prometheus metrics.
// It is safe for concurrent use.
func New(opts ...Option) (http.Handler, error) {
	o := options{ready: func() error { return nil }}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := o.ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready:", err)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if o.gatherer != nil {
		mux.Handle("GET "+o.metricsPath, promhttp.HandlerFor(o.gatherer, promhttp.HandlerOpts{}))
	}
	return mux, nil
}
