package registry_test

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/registry/registrytest"
)

// flaky answers the first `fail` manifest requests with status and
// header, then lets them through.
type flaky struct {
	inner  http.Handler
	fail   int64
	status int
	header http.Header
	armed  atomic.Bool
	seen   atomic.Int64
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.armed.Load() && strings.Contains(r.URL.Path, "/manifests/") && f.seen.Add(1) <= f.fail {
		for k, v := range f.header {
			w.Header()[k] = v
		}
		w.WriteHeader(f.status)
		return
	}
	f.inner.ServeHTTP(w, r)
}

func TestRetries(t *testing.T) {
	httpDate := newFakeClock().Now().Add(45 * time.Second).Format(http.TimeFormat)
	tests := []struct {
		name      string
		fail      int64
		status    int
		header    http.Header
		retries   int
		wantErr   string
		wantWaits func(t *testing.T, waits []time.Duration)
	}{
		{"429 with Retry-After seconds", 2, http.StatusTooManyRequests, http.Header{"Retry-After": {"7"}}, 4, "",
			func(t *testing.T, w []time.Duration) {
				assert.Equal(t, []time.Duration{7 * time.Second, 7 * time.Second}, w)
			}},
		{"503 with Retry-After date", 1, http.StatusServiceUnavailable, http.Header{"Retry-After": {httpDate}}, 4, "",
			func(t *testing.T, w []time.Duration) { assert.Equal(t, []time.Duration{45 * time.Second}, w) }},
		{"500 backs off exponentially", 3, http.StatusInternalServerError, nil, 4, "",
			func(t *testing.T, w []time.Duration) {
				require.Len(t, w, 3)
				for i, d := range w {
					base := 250 * time.Millisecond << i
					assert.GreaterOrEqual(t, d, base/2)
					assert.LessOrEqual(t, d, base)
				}
			}},
		{"gives up after the retries", 10, http.StatusBadGateway, nil, 2, "502",
			func(t *testing.T, w []time.Duration) { assert.Len(t, w, 2) }},
		{"Retry-After too long is not waited for", 1, http.StatusTooManyRequests, http.Header{"Retry-After": {"3600"}}, 4, "429",
			func(t *testing.T, w []time.Duration) { assert.Empty(t, w) }},
		{"404 is not retried", 1, http.StatusNotFound, nil, 4, "not found",
			func(t *testing.T, w []time.Duration) { assert.Empty(t, w) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &flaky{inner: registrytest.MemoryHandler(), fail: tc.fail, status: tc.status, header: tc.header}
			host := registrytest.Handler(t, f)
			push(t, host+"/app:v1", newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil))
			f.armed.Store(true)

			c, _, clock := newClient(t, registry.WithRetries(tc.retries), registry.WithCosignTags(false))
			img, err := c.Image(context.Background(), host+"/app:v1")
			if tc.wantErr == "" {
				require.NoError(t, err)
				assert.Equal(t, "linux/amd64", img.Platforms[0])
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Contains(t, err.Error(), host+"/app:v1")
			}
			tc.wantWaits(t, clock.Waits())
		})
	}
}

func TestRetriesConnectionErrors(t *testing.T) {
	host := closedPort(t)
	c, _, clock := newClient(t, registry.WithRetries(3))
	_, err := c.Image(context.Background(), host+"/app:v1")
	require.ErrorContains(t, err, "connection refused")
	// Loopback is tried over https and http, each retried three times.
	assert.Len(t, clock.Waits(), 6)
}

// stuckClock never lets a wait end, and says when one starts.
type stuckClock struct {
	once    sync.Once
	waiting chan struct{}
}

func (c *stuckClock) Now() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }
func (c *stuckClock) After(time.Duration) <-chan time.Time {
	c.once.Do(func() { close(c.waiting) })
	return nil
}

func TestRetryWaitHonoursContext(t *testing.T) {
	f := &flaky{inner: registrytest.MemoryHandler(), fail: 100, status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"30"}}}
	f.armed.Store(true)
	host := registrytest.Handler(t, f)
	clock := &stuckClock{waiting: make(chan struct{})}
	c, err := registry.New(registry.WithClock(clock), registry.WithKeychain(emptyKeychain()))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-clock.waiting
		cancel()
	}()
	_, err = c.Image(ctx, host+"/app:v1")
	assert.ErrorIs(t, err, context.Canceled)
}

func TestUserAgent(t *testing.T) {
	var mu sync.Mutex
	agents := map[string]bool{}
	inner := registrytest.MemoryHandler()
	host := registrytest.Handler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents[r.UserAgent()] = true
		mu.Unlock()
		inner.ServeHTTP(w, r)
	}))
	push(t, host+"/app:v1", newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil))
	mu.Lock()
	clear(agents)
	mu.Unlock()

	c, _, _ := newClient(t, registry.WithVersion("1.2.3"))
	_, err := c.Image(context.Background(), host+"/app:v1")
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, agents)
	for ua := range agents {
		assert.True(t, strings.HasPrefix(ua, "celpolicy/1.2.3 "), ua)
	}
}

func TestInsecureHost(t *testing.T) {
	host := registrytest.Memory(t)
	push(t, host+"/app:v1", newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil))
	_, port, err := net.SplitHostPort(host)
	require.NoError(t, err)
	// A name that is not loopback, so ggcr would use https only, dialled
	// to the loopback registry all the same.
	named := "registry.test:" + port
	loopback := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, host)
	}}

	tests := []struct {
		name     string
		insecure bool
		wantErr  string
	}{
		{"plain http allowed", true, ""},
		{"https only", false, "server gave HTTP response to HTTPS client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := registry.New(registry.WithTransport(loopback), registry.WithKeychain(emptyKeychain()),
				registry.WithHosts(registry.Host{Name: "dev", Host: named, Insecure: tc.insecure}), registry.WithClock(newFakeClock()))
			require.NoError(t, err)
			img, err := c.Image(context.Background(), named+"/app:v1")
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "dev", img.Source)
			tags, err := c.Tags(context.Background(), named+"/app")
			require.NoError(t, err)
			assert.Equal(t, []string{"v1"}, tags)
		})
	}
}

func TestCAFile(t *testing.T) {
	srv := httptest.NewUnstartedServer(registrytest.MemoryHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case's handshake errors
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	ref, err := name.ParseReference(host + "/app:v1")
	require.NoError(t, err)
	img := newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil)
	require.NoError(t, remote.Write(ref, img, remote.WithTransport(srv.Client().Transport)))

	tests := []struct {
		name    string
		host    registry.Host
		wantErr string
	}{
		{"trusted with the ca file", registry.Host{Host: host, CAFile: ca}, ""},
		{"untrusted without it", registry.Host{Host: host}, "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := registry.New(registry.WithHosts(tc.host), registry.WithKeychain(emptyKeychain()), registry.WithClock(newFakeClock()))
			require.NoError(t, err)
			img, err := c.Image(context.Background(), host+"/app:v1")
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []string{"linux/amd64"}, img.Platforms)
		})
	}
}

func emptyKeychain() authn.Keychain { return authn.NewMultiKeychain() }

// TestVersionCheckOncePerRegistry: go-containerregistry checks a
// registry's version (GET /v2/) for every repository it talks to; a
// Client asks once, and again after a minute.
func TestVersionCheckOncePerRegistry(t *testing.T) {
	var pings atomic.Int64
	inner := registrytest.MemoryHandler()
	host := registrytest.Handler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			pings.Add(1)
		}
		inner.ServeHTTP(w, r)
	}))
	var refs []string
	for _, repo := range []string{"a", "b", "c", "d"} {
		refs = append(refs, host+"/"+repo+":v1")
		push(t, refs[len(refs)-1], newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil))
	}
	clock := newFakeClock()
	c, err := registry.New(registry.WithHosts(registry.Host{Host: host, Insecure: true}),
		registry.WithKeychain(emptyKeychain()), registry.WithClock(clock), registry.WithCosignTags(false))
	require.NoError(t, err)
	pings.Store(0)

	for _, r := range c.Images(context.Background(), refs) {
		require.NoError(t, r.Err)
	}
	assert.Equal(t, int64(1), pings.Load(), "one check for four repositories")

	// go-containerregistry checks a repository once per Client; a fifth
	// one, a minute later, is checked again.
	push(t, host+"/e:v1", newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil))
	pings.Store(0)
	clock.Advance(2 * time.Minute)
	_, err = c.Tags(context.Background(), host+"/e")
	require.NoError(t, err)
	assert.Equal(t, int64(1), pings.Load(), "asked again after a minute")
}
