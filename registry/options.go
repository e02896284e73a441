package registry

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Defaults, in one place. Each With... option names the one it overrides.
const (
	defaultCacheSize    = 4096
	defaultDiskEntries  = 10000
	defaultTagCacheSize = 16384
	defaultTagTTL       = 30 * time.Second
	defaultConcurrency  = 8
	defaultRetries      = 4
	defaultPageSize     = 1000
	defaultVersion      = "dev"
)

// Host is the caller's configuration of one registry: how to reach it and
// the inventory name images read from it carry as their Source. It is plain
// data so that the registry package needs nothing from the policy model.
type Host struct {
	// Name is the inventory name, copied to Image.Source; may be empty.
	Name string
	// Host is host[:port] as it appears in image references.
	Host string
	// Insecure allows plain HTTP to this host (local registries).
	Insecure bool
	// CAFile is a PEM bundle trusted for this host in addition to the
	// system roots; empty means the system roots only.
	CAFile string
}

// Clock is the time source for cache expiry and retry waits; tests inject
// one so that nothing sleeps for real.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Option configures a Client. An option that is given an invalid value
// makes New fail.
type Option func(*options) error

type options struct {
	cacheSize    int
	tagCacheSize int
	tagTTL       time.Duration
	concurrency  int
	retries      int
	pageSize     int
	version      string
	cosignTags   bool
	diskDir      string
	diskEntries  int
	logger       *slog.Logger
	transport    http.RoundTripper
	keychain     authn.Keychain
	clock        Clock
	hosts        []Host
	roots        map[string]*x509.CertPool // host → roots, from Host.CAFile
}

func defaultOptions() *options {
	return &options{
		cacheSize:    defaultCacheSize,
		tagCacheSize: defaultTagCacheSize,
		tagTTL:       defaultTagTTL,
		concurrency:  defaultConcurrency,
		retries:      defaultRetries,
		pageSize:     defaultPageSize,
		version:      defaultVersion,
		cosignTags:   true,
		diskEntries:  defaultDiskEntries,
		logger:       slog.New(slog.DiscardHandler),
		transport:    remote.DefaultTransport,
		keychain:     authn.DefaultKeychain,
		clock:        realClock{},
		roots:        map[string]*x509.CertPool{},
	}
}

// WithCacheSize bounds the number of image metadata entries kept by digest
// (least recently used first out). Default 4096.
func WithCacheSize(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("cache size must be greater than zero, got %d", n)
		}
		o.cacheSize = n
		return nil
	}
}

// WithDiskCache keeps manifests and image configs by digest, and the
// digest each tag was last read at, in dir between processes. A later
// Client with the same dir (a second run, say) then asks the registry
// whether a known tag moved with one HEAD request, and reads the manifest
// and config only of digests it has not seen. Entries are checked when
// read (content against its digest); a damaged one is ignored with a
// warning to the WithLogger logger, as is a dir that cannot be created.
// Several processes may share dir. Empty disables it. Default disabled.
func WithDiskCache(dir string) Option {
	return func(o *options) error {
		o.diskDir = dir
		return nil
	}
}

// WithDiskCacheSize bounds the entries of the disk cache, each of its two
// kinds (blobs: a manifest or a config, typically 1–20 KiB; tags: under
// 200 bytes), to n: when a Client opens the cache, the oldest written
// beyond n are removed. Default 10000 (about two blobs per image read).
func WithDiskCacheSize(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("disk cache size must be greater than zero, got %d", n)
		}
		o.diskEntries = n
		return nil
	}
}

// WithLogger sets where the Client warns about what it works around,
// such as a damaged disk cache entry. Default: discarded.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		o.logger = l
		return nil
	}
}

// WithTagCacheSize bounds the number of tag → digest, referrers and
// parsed-reference entries kept, each. Default 16384.
func WithTagCacheSize(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("tag cache size must be greater than zero, got %d", n)
		}
		o.tagCacheSize = n
		return nil
	}
}

// WithTagTTL sets how long a tag's digest, and an image's referrers, are
// trusted before the registry is asked again. Zero asks every time (a HEAD
// per tag read). Default 30s.
func WithTagTTL(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("tag ttl must not be negative, got %s", d)
		}
		o.tagTTL = d
		return nil
	}
}

// WithConcurrency bounds the registry requests a Client has in flight at
// once, over all its calls. Default 8.
func WithConcurrency(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("concurrency must be greater than zero, got %d", n)
		}
		o.concurrency = n
		return nil
	}
}

// WithRetries sets how many times a request that failed with 408, 429, 5xx
// or a connection error is tried again. Zero disables retries. Default 4.
func WithRetries(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("retries must not be negative, got %d", n)
		}
		o.retries = n
		return nil
	}
}

// WithPageSize sets the page size asked for when listing repositories and
// tags. Default 1000 (the most some registries accept).
func WithPageSize(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("page size must be greater than zero, got %d", n)
		}
		o.pageSize = n
		return nil
	}
}

// WithVersion sets the version in the User-Agent header,
// "celpolicy/<version>". Default "dev".
func WithVersion(version string) Option {
	return func(o *options) error {
		if version == "" || strings.IndexFunc(version, func(r rune) bool {
			return unicode.IsSpace(r) || unicode.IsControl(r) || r == '/'
		}) >= 0 {
			return fmt.Errorf("version %q must be non-empty without spaces or slashes", version)
		}
		o.version = version
		return nil
	}
}

// WithCosignTags toggles looking for cosign's sha256-<hex>.sig, .att and
// .sbom tags when listing an image's referrers (three HEAD requests per
// uncached image). Default true.
func WithCosignTags(enabled bool) Option {
	return func(o *options) error {
		o.cosignTags = enabled
		return nil
	}
}

// WithTransport sets the innermost HTTP transport; retries, per-host CAs,
// authentication and the user agent are layered on top of it. Default
// remote.DefaultTransport. A host with a CAFile needs an *http.Transport.
func WithTransport(t http.RoundTripper) Option {
	return func(o *options) error {
		if t == nil {
			return errors.New("transport must not be nil")
		}
		o.transport = t
		return nil
	}
}

// WithKeychain sets where credentials come from. Default
// authn.DefaultKeychain (the docker config file and credential helpers).
func WithKeychain(k authn.Keychain) Option {
	return func(o *options) error {
		if k == nil {
			return errors.New("keychain must not be nil")
		}
		o.keychain = k
		return nil
	}
}

// WithClock sets the time source for cache expiry and retry waits.
// Default the system clock.
func WithClock(c Clock) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("clock must not be nil")
		}
		o.clock = c
		return nil
	}
}

// WithHosts configures registries that need more than the defaults:
// plain HTTP, a private CA, or an inventory name for Image.Source. Hosts
// not listed are reached over HTTPS with the system roots. Default none.
func WithHosts(hosts ...Host) Option {
	return func(o *options) error {
		for _, h := range hosts {
			if h.Host == "" {
				return fmt.Errorf("host %q: host is required", h.Name)
			}
			reg, err := name.NewRegistry(h.Host)
			if err != nil {
				return fmt.Errorf("host %q: %w", h.Host, err)
			}
			key := registryKey(reg)
			for _, seen := range o.hosts {
				if registryKey(mustRegistry(seen.Host)) == key {
					return fmt.Errorf("host %q: configured twice", h.Host)
				}
				if h.Name != "" && seen.Name == h.Name {
					return fmt.Errorf("host %q: name %q already used by %q", h.Host, h.Name, seen.Host)
				}
			}
			if h.CAFile != "" {
				pool, err := loadRoots(h.CAFile)
				if err != nil {
					return fmt.Errorf("host %q: %w", h.Host, err)
				}
				o.roots[reg.RegistryStr()] = pool
			}
			o.hosts = append(o.hosts, h)
		}
		return nil
	}
}

func loadRoots(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read ca file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca file %q holds no PEM certificate", file)
	}
	return pool, nil
}

// registryKey is the name policies see for a registry: Docker Hub's
// aliases are all "docker.io".
func registryKey(reg name.Registry) string {
	if reg.RegistryStr() == name.DefaultRegistry {
		return "docker.io"
	}
	return reg.RegistryStr()
}

// mustRegistry parses a host already validated by WithHosts.
func mustRegistry(host string) name.Registry {
	reg, _ := name.NewRegistry(host)
	return reg
}
