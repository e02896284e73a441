package registrytest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// Environment and defaults of the integration harness.
const (
	// IntegrationEnv set to "1" turns a missing registry binary from a
	// skip into a failure, so CI cannot pass without running the tests.
	IntegrationEnv = "CELPOLICY_INTEGRATION"
	// BinaryEnv names another registry binary than DefaultBinary.
	BinaryEnv = "CELPOLICY_REGISTRY_BIN"
	// DefaultBinary is where Debian's docker-registry package installs
	// the distribution registry.
	DefaultBinary = "/usr/bin/docker-registry"

	startTimeout = 30 * time.Second
	startTries   = 3
)

// Memory starts go-containerregistry's in-memory registry on 127.0.0.1 and
// returns its host:port. It is closed at the test's cleanup.
func Memory(t testing.TB, opts ...ggcrregistry.Option) string {
	t.Helper()
	return Handler(t, MemoryHandler(opts...))
}

// MemoryHandler is go-containerregistry's in-memory registry, without its
// request log, for a test to wrap in middleware and serve with Handler.
func MemoryHandler(opts ...ggcrregistry.Option) http.Handler {
	return ggcrregistry.New(append([]ggcrregistry.Option{ggcrregistry.Logger(discardLogger())}, opts...)...)
}

// Handler serves h on 127.0.0.1 (a registry wrapped by a test's
// middleware, say) and returns its host:port.
func Handler(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// Binary returns the path of the distribution registry binary, or skips
// the test (fails it when IntegrationEnv is "1") when it is missing.
func Binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(BinaryEnv)
	if bin == "" {
		bin = DefaultBinary
	}
	if _, err := exec.LookPath(bin); err != nil {
		msg := fmt.Sprintf("registry binary %s not found (%v): install it with `apt-get install docker-registry`, or set %s", bin, err, BinaryEnv)
		if os.Getenv(IntegrationEnv) == "1" {
			t.Fatalf("%s is 1 but %s", IntegrationEnv, msg)
		}
		t.Skipf("integration test skipped: %s, and set %s=1 to make this a failure", msg, IntegrationEnv)
	}
	return bin
}

// Start runs a distribution registry (plain HTTP, filesystem storage in a
// temporary directory, deletes enabled) on 127.0.0.1 and returns its
// host:port once /v2/ answers. It is killed at the test's cleanup. Each
// call starts a separate registry, so a test may start two.
func Start(t testing.TB) string {
	t.Helper()
	bin := Binary(t)
	var errs []string
	for range startTries {
		host, err := start(t, bin)
		if err == nil {
			return host
		}
		// Most likely the free port was taken between finding and binding.
		errs = append(errs, err.Error())
	}
	t.Fatalf("start registry %s:\n%s", bin, strings.Join(errs, "\n"))
	return ""
}

func start(t testing.TB, bin string) (string, error) {
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		return "", err
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	config := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(config, []byte(Config(filepath.Join(dir, "data"), host, hex.EncodeToString(secret))), 0o600); err != nil {
		return "", err
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, "serve", config)
	out := &syncWriter{w: &log}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	if err := waitReady(host, exited); err != nil {
		stop()
		return "", fmt.Errorf("%w; registry log:\n%s", err, log.String())
	}
	t.Cleanup(stop)
	return host, nil
}

// Config is the config.yml Start writes.
func Config(root, addr, secret string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
`, root, addr, secret)
}

// waitReady polls /v2/ until it answers 200, the process exits or the
// start timeout passes.
func waitReady(host string, exited <-chan error) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.After(startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("registry exited before answering: %v", err)
		case <-deadline:
			return fmt.Errorf("registry did not answer http://%s/v2/ within %s", host, startTimeout)
		case <-tick.C:
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
