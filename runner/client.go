package runner

import (
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/registry"
)

// NewClient returns the registry client a pass uses when Options.Client
// is nil: configured by the inventory of set (Hosts), over connections of
// its own (go-containerregistry's default transport settings: keep-alive,
// 50 idle connections per host, enough for the pass's images and their
// uploads at once). opts come last and may override any of it.
func NewClient(set *engine.PolicySet, opts ...registry.Option) (*registry.Client, error) {
	return registry.New(append([]registry.Option{
		registry.WithHosts(Hosts(set)...),
		registry.WithTransport(remote.DefaultTransport.(*http.Transport).Clone()),
	}, opts...)...)
}
