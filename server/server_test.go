package server

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "celpolicy_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	var notReady error = errors.New("no policy set loaded")
	h, err := New(WithReadiness(func() error { return notReady }), WithMetrics(reg, "/m"))
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()

	code, body := get(t, srv, "/healthz")
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok\n", body)

	code, body = get(t, srv, "/readyz")
	assert.Equal(t, 503, code)
	assert.Equal(t, "not ready: no policy set loaded\n", body)
	notReady = nil
	code, _ = get(t, srv, "/readyz")
	assert.Equal(t, 200, code)

	code, body = get(t, srv, "/m")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, "celpolicy_test_total 1")

	code, _ = get(t, srv, "/metrics")
	assert.Equal(t, 404, code)
	resp, err := http.Post(srv.URL+"/healthz", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestOptionsValidate(t *testing.T) {
	for _, opt := range []Option{WithReadiness(nil), WithMetrics(nil, "/m"), WithMetrics(prometheus.NewRegistry(), "m")} {
		_, err := New(opt)
		assert.Error(t, err)
	}
}
