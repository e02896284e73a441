package registry_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/registry/registrytest"
)

func TestRepositories(t *testing.T) {
	pages := &paginate{inner: registrytest.MemoryHandler()}
	host := registrytest.Handler(t, pages)
	for _, repo := range []string{"library/nginx", "library/redis", "team/app", "team/sub/tool", "other"} {
		push(t, host+"/"+repo+":v1", newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil))
	}

	tests := []struct {
		name     string
		host     string
		patterns []string
		want     []string
	}{
		{"all", host, nil, []string{"library/nginx", "library/redis", "other", "team/app", "team/sub/tool"}},
		{"one level", host, []string{"team/*"}, []string{"team/app"}},
		{"any depth", host, []string{"team/**"}, []string{"team/app", "team/sub/tool"}},
		{"several patterns", host, []string{"library/n*", "other"}, []string{"library/nginx", "other"}},
		{"braces", host, []string{"library/{redis,postgres}"}, []string{"library/redis"}},
		{"none match", host, []string{"nope/*"}, []string{}},
		{"by inventory name", "local", []string{"other"}, []string{"other"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _ := newClient(t, registry.WithPageSize(2), registry.WithHosts(registry.Host{Name: "local", Host: host}))
			pages.pages.Store(0)
			got, err := c.Repositories(context.Background(), tc.host, tc.patterns)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, int64(3), pages.pages.Load(), "5 repositories in pages of 2")
		})
	}
}

func TestRepositoriesErrors(t *testing.T) {
	host := registrytest.Memory(t)
	c, _, _ := newClient(t, registry.WithRetries(0))
	tests := []struct {
		name, host string
		patterns   []string
		message    string
	}{
		{"bad pattern", host, []string{"team/[a"}, `invalid pattern "team/[a"`},
		{"bad host", "a b", nil, `list repositories of "a b"`},
		{"unreachable", closedPort(t), nil, "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Repositories(context.Background(), tc.host, tc.patterns)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.message)
			assert.Contains(t, err.Error(), tc.host)
		})
	}
}

func TestTags(t *testing.T) {
	pages := &paginate{inner: registrytest.MemoryHandler()}
	host := registrytest.Handler(t, pages)
	img := newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil)
	for _, tag := range []string{"v2", "v1", "latest", "v1.1", "v10"} {
		push(t, host+"/team/app:"+tag, img)
	}
	c, _, _ := newClient(t, registry.WithPageSize(2))

	got, err := c.Tags(context.Background(), host+"/team/app")
	require.NoError(t, err)
	assert.Equal(t, []string{"latest", "v1", "v1.1", "v10", "v2"}, got)
	assert.Equal(t, int64(3), pages.pages.Load())

	_, err = c.Tags(context.Background(), host+"/team/missing")
	assert.ErrorIs(t, err, registry.ErrNotFound)
	assert.Contains(t, err.Error(), `list tags of "`+host+`/team/missing"`)

	_, err = c.Tags(context.Background(), "Bad Repo")
	assert.ErrorContains(t, err, `list tags of "Bad Repo"`)
}
