package registry_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/registry"
)

func TestOptionsValidate(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	tests := []struct {
		name    string
		opt     registry.Option
		message string
	}{
		{"cache size", registry.WithCacheSize(0), "cache size must be greater than zero"},
		{"tag cache size", registry.WithTagCacheSize(-1), "tag cache size must be greater than zero"},
		{"ttl", registry.WithTagTTL(-1), "tag ttl must not be negative"},
		{"concurrency", registry.WithConcurrency(0), "concurrency must be greater than zero"},
		{"retries", registry.WithRetries(-1), "retries must not be negative"},
		{"page size", registry.WithPageSize(0), "page size must be greater than zero"},
		{"empty version", registry.WithVersion(""), "version"},
		{"version with space", registry.WithVersion("1 2"), "without spaces"},
		{"nil transport", registry.WithTransport(nil), "transport must not be nil"},
		{"nil keychain", registry.WithKeychain(nil), "keychain must not be nil"},
		{"nil clock", registry.WithClock(nil), "clock must not be nil"},
		{"host without host", registry.WithHosts(registry.Host{Name: "x"}), "host is required"},
		{"bad host", registry.WithHosts(registry.Host{Host: "a b"}), `host "a b"`},
		{"duplicate host", registry.WithHosts(registry.Host{Host: "docker.io"}, registry.Host{Host: "index.docker.io"}), "configured twice"},
		{"duplicate name", registry.WithHosts(registry.Host{Name: "a", Host: "r1.test"}, registry.Host{Name: "a", Host: "r2.test"}), `name "a" already used`},
		{"missing ca file", registry.WithHosts(registry.Host{Host: "r.test", CAFile: "/nonexistent/ca.pem"}), "read ca file"},
		{"ca file without pem", registry.WithHosts(registry.Host{Host: "r.test", CAFile: notPEM}), "holds no PEM certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := registry.New(tc.opt)
			assert.Nil(t, c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.message)
		})
	}
}

func TestDefaultsWork(t *testing.T) {
	c, err := registry.New()
	require.NoError(t, err)
	assert.NotNil(t, c)
}

// TestDependencies keeps the registry package below the policy model:
// it may see conditions, never engine or what builds on it.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".", "./registrytest").Output()
	require.NoError(t, err)
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"/engine", "/actions", "/schedule", "/server", "/cmd/"} {
			assert.False(t, strings.HasPrefix(dep, "github.com/celpolicy/celpolicy") && strings.Contains(dep, banned), "registry imports %s", dep)
		}
	}
}

func TestCAFileNeedsAnHTTPTransport(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, []byte(testCA), 0o600))
	_, err := registry.New(registry.WithTransport(&countingTransport{}), registry.WithHosts(registry.Host{Host: "r.test", CAFile: ca}))
	assert.ErrorContains(t, err, "needs an *http.Transport")
}

// testCA is a self-signed certificate used only as PEM input.
const testCA = `-----BEGIN CERTIFICATE-----
MIIBdDCCARugAwIBAgIUd71wrBe7gKqgTXARAlBCWkhb8LgwCgYIKoZIzj0EAwIw
DzENMAsGA1UEAwwEdGVzdDAgFw0yNjExMjcwNzUyMjJaGA8yMTI2MTEwMzA3NTIy
MlowDzENMAsGA1UEAwwEdGVzdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABE8w
HvaUuB4mpK0alu4krSnDvHk9i3+dmlgn8/drWpS02wf+tZEV87klTX2qS2yPAxK9
Osnr8P7yt85nu1qFRH6jUzBRMB0GA1UdDgQWBBRfgK/R6DCh/lvce/pywKvlst1T
PjAfBgNVHSMEGDAWgBRfgK/R6DCh/lvce/pywKvlst1TPjAPBgNVHRMBAf8EBTAD
AQH/MAoGCCqGSM49BAMCA0cAMEQCIDRb1uPkIW+rcP3y8EH3jACTkIJ2oXObyk9f
h6sDgvWvAiBZGziLkTv/mb/90LqxbL+PeHBDtUf6Z2JayE2NcAwZLQ==
-----END CERTIFICATE-----`
