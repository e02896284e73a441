package registry

import (
	"context"
	"fmt"
	"slices"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/google/go-containerregistry/pkg/name"
)

// Repositories lists the repositories of a registry (its catalog, all
// pages) that match any of the doublestar patterns, sorted; no patterns
// means all. host is host[:port] or the Name of a configured Host.
func (c *Client) Repositories(ctx context.Context, host string, patterns []string) ([]string, error) {
	for _, p := range patterns {
		if !doublestar.ValidatePattern(p) {
			return nil, fmt.Errorf("list repositories of %q: invalid pattern %q", host, p)
		}
	}
	reg, err := c.registry(host)
	if err != nil {
		return nil, fmt.Errorf("list repositories of %q: %w", host, err)
	}
	release, err := c.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("list repositories of %q: %w", host, err)
	}
	defer release()
	all, err := c.puller.Catalog(ctx, reg)
	if err != nil {
		return nil, fmt.Errorf("list repositories of %q: %w", host, classify(err))
	}
	repos := []string{}
	for _, r := range all {
		if len(patterns) == 0 || slices.ContainsFunc(patterns, func(p string) bool {
			ok, _ := doublestar.Match(p, r)
			return ok
		}) {
			repos = append(repos, r)
		}
	}
	slices.Sort(repos)
	return slices.Compact(repos), nil
}

// Tags lists the tags of a repository ("registry/path", Docker Hub names
// as in docker pull), all pages, sorted. Signature and referrers tags
// (sha256-<hex>...) are listed like any other.
func (c *Client) Tags(ctx context.Context, repository string) ([]string, error) {
	repo, err := c.repository(repository)
	if err != nil {
		return nil, fmt.Errorf("list tags of %q: %w", repository, err)
	}
	release, err := c.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tags of %q: %w", repository, err)
	}
	defer release()
	tags, err := c.puller.List(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("list tags of %q: %w", repository, classify(err))
	}
	slices.Sort(tags)
	return slices.Compact(tags), nil
}

// registry resolves a configured Host's Name or a host[:port].
func (c *Client) registry(host string) (name.Registry, error) {
	for _, h := range c.hosts {
		if h.Name != "" && h.Name == host {
			host = h.Host
			break
		}
	}
	reg, err := name.NewRegistry(host, name.WeakValidation)
	if err != nil {
		return name.Registry{}, err
	}
	if c.hosts[registryKey(reg)].Insecure {
		return name.NewRegistry(host, name.WeakValidation, name.Insecure)
	}
	return reg, nil
}
