package registry_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/registry/registrytest"
)

// diskFixture is a registry with an image and a two-platform index, and a
// disk cache directory a first Client has filled by reading both.
type diskFixture struct {
	host, dir  string
	refs       []string
	first      []*conditions.Image
	firstCount int // requests the first Client made, pings left out
}

func newDiskFixture(t *testing.T) diskFixture {
	t.Helper()
	f := diskFixture{host: registrytest.Memory(t), dir: t.TempDir()}
	push(t, f.host+"/team/app:v1", newImage(t, platformSpec{os: "linux", arch: "amd64", labels: map[string]string{"build": "1"}, created: built}, nil))
	arm := newImage(t, platformSpec{os: "linux", arch: "arm64", labels: map[string]string{"team": "a"}}, nil)
	amd := newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil)
	push(t, f.host+"/team/multi:v1", newIndex(t, nil, []v1.Image{arm, amd},
		[]*v1.Platform{{OS: "linux", Architecture: "arm64"}, {OS: "linux", Architecture: "amd64"}}))
	f.refs = []string{f.host + "/team/app:v1", f.host + "/team/multi:v1"}

	c, ct, _ := newClient(t, registry.WithDiskCache(f.dir))
	f.first = readAll(t, c, f.refs)
	f.firstCount = len(withoutPings(ct.Requests()))
	// The image: manifest and config; the index: itself, and a manifest
	// and a config per platform.
	require.Equal(t, 2+5, f.firstCount, "%q", ct.Requests())
	return f
}

func readAll(t *testing.T, c *registry.Client, refs []string) []*conditions.Image {
	t.Helper()
	var out []*conditions.Image
	for _, ref := range refs {
		img, err := c.ImageMetadata(context.Background(), ref)
		require.NoError(t, err)
		out = append(out, img)
	}
	return out
}

// withoutPings drops the version checks (GET /v2/): they are the
// transport's business, not the cache's.
func withoutPings(requests []string) []string {
	return slices.DeleteFunc(slices.Clone(requests), func(r string) bool { return r == "GET /v2/" })
}

// cacheFiles lists the disk cache's entries, by kind ("blobs", "tags").
func cacheFiles(t *testing.T, dir string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			kind := filepath.Base(filepath.Dir(path))
			out[kind] = append(out[kind], path)
		}
		return err
	}))
	return out
}

func TestDiskCacheSecondClientAsksOneHeadPerTag(t *testing.T) {
	f := newDiskFixture(t)
	files := cacheFiles(t, f.dir)
	assert.Len(t, files["blobs"], 7, "every manifest and config read")
	assert.Len(t, files["tags"], 2, "every tag read")

	// A new Client, as a second process would make it: one HEAD per tag
	// says the tag has not moved; everything else comes from disk.
	c, ct, _ := newClient(t, registry.WithDiskCache(f.dir))
	again := readAll(t, c, f.refs)
	assert.Equal(t, f.first, again)
	assert.Equal(t, []string{"HEAD /v2/team/app/manifests/v1", "HEAD /v2/team/multi/manifests/v1"}, withoutPings(ct.Requests()))

	// Nothing changed, so nothing was written.
	assert.Equal(t, files, cacheFiles(t, f.dir))
}

func TestDiskCacheOffMakesNoFiles(t *testing.T) {
	host := registrytest.Memory(t)
	push(t, host+"/app:v1", newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil))
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", dir)
	t.Setenv("HOME", dir)
	c, _, _ := newClient(t, registry.WithDiskCache(""))
	readAll(t, c, []string{host + "/app:v1"})
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestDiskCacheTagMovedIsReadAgain(t *testing.T) {
	f := newDiskFixture(t)
	moved := newImage(t, platformSpec{os: "linux", arch: "amd64", labels: map[string]string{"build": "2"}}, nil)
	push(t, f.host+"/team/app:v1", moved)

	c, ct, _ := newClient(t, registry.WithDiskCache(f.dir))
	img, err := c.ImageMetadata(context.Background(), f.refs[0])
	require.NoError(t, err)
	assert.Equal(t, digestOf(t, moved), img.Digest)
	assert.Equal(t, map[string]string{"build": "2"}, img.Labels, "no stale metadata")
	assert.Equal(t, []string{
		"HEAD /v2/team/app/manifests/v1",
		"GET /v2/team/app/manifests/" + digestOf(t, moved),
		"GET /v2/team/app/blobs/" + configDigest(t, moved),
	}, withoutPings(ct.Requests()))

	// The new digest is remembered for the tag: a third Client asks only
	// the HEAD.
	c, ct, _ = newClient(t, registry.WithDiskCache(f.dir))
	img, err = c.ImageMetadata(context.Background(), f.refs[0])
	require.NoError(t, err)
	assert.Equal(t, digestOf(t, moved), img.Digest)
	assert.Equal(t, []string{"HEAD /v2/team/app/manifests/v1"}, withoutPings(ct.Requests()))
}

func configDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	h, err := img.ConfigName()
	require.NoError(t, err)
	return h.String()
}

func TestDiskCacheDamagedEntriesAreIgnored(t *testing.T) {
	tests := []struct {
		name   string
		damage func(path string) error
	}{
		{"truncated", func(p string) error { return os.Truncate(p, 10) }},
		{"emptied", func(p string) error { return os.WriteFile(p, nil, 0o600) }},
		{"one byte changed", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)-2] ^= 0x20
			return os.WriteFile(p, b, 0o600)
		}},
		{"unreadable", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Mkdir(p, 0o700) // reading a directory fails
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newDiskFixture(t)
			files := cacheFiles(t, f.dir)
			for _, p := range append(files["blobs"], files["tags"]...) {
				require.NoError(t, tc.damage(p))
			}
			var log bytes.Buffer
			c, ct, _ := newClient(t, registry.WithDiskCache(f.dir),
				registry.WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
			again := readAll(t, c, f.refs)
			assert.Equal(t, f.first, again, "the registry's answer, not the damaged one")
			assert.Len(t, withoutPings(ct.Requests()), f.firstCount, "everything read again: %q", ct.Requests())
			assert.Contains(t, log.String(), "level=WARN msg=\"disk cache: entry ignored\"")
			assert.Contains(t, log.String(), f.dir)
		})
	}
}

func TestDiskCacheDamagedBlobBehindIntactTag(t *testing.T) {
	f := newDiskFixture(t)
	for _, p := range cacheFiles(t, f.dir)["blobs"] {
		require.NoError(t, os.Truncate(p, 100))
	}
	c, ct, _ := newClient(t, registry.WithDiskCache(f.dir))
	assert.Equal(t, f.first, readAll(t, c, f.refs))
	// The HEADs find the digests the tags name; their manifests and
	// configs are read again, by digest.
	requests := withoutPings(ct.Requests())
	assert.Len(t, requests, 2+f.firstCount, "%q", requests)
	assert.Contains(t, requests, "GET /v2/team/app/manifests/"+f.first[0].Digest)
}

func TestDiskCacheDigestReferenceAsksTheRegistry(t *testing.T) {
	f := newDiskFixture(t)
	digest := f.first[0].Digest
	for _, r := range []string{f.host + "/team/app@" + digest, f.refs[0]} {
		ref, err := name.ParseReference(r)
		require.NoError(t, err)
		require.NoError(t, remote.Delete(ref))
	}

	// The disk still holds the manifest, but a digest reference is not
	// confirmed by any HEAD: the registry is asked, and says it is gone.
	c, _, _ := newClient(t, registry.WithDiskCache(f.dir))
	_, err := c.ImageMetadata(context.Background(), f.host+"/team/app@"+digest)
	require.ErrorIs(t, err, registry.ErrNotFound)
	_, err = c.ImageMetadata(context.Background(), f.refs[0])
	require.ErrorIs(t, err, registry.ErrNotFound, "nor is the tag served from the disk")
}

func TestDiskCacheIsPrunedToItsSize(t *testing.T) {
	f := newDiskFixture(t)
	files := cacheFiles(t, f.dir)
	// Age the entries one second apart, in name order, so that the
	// newest are known.
	var all []string
	for _, kind := range []string{"blobs", "tags"} {
		slices.Sort(files[kind])
		for i, p := range files[kind] {
			at := time.Now().Add(time.Duration(i-len(files[kind])) * time.Second)
			require.NoError(t, os.Chtimes(p, at, at))
		}
		all = append(all, files[kind]...)
	}
	// A leftover temporary file of a process that died while writing.
	tmp := filepath.Join(filepath.Dir(files["blobs"][0]), ".tmp-123")
	require.NoError(t, os.WriteFile(tmp, []byte("half"), 0o600))
	require.NoError(t, os.Chtimes(tmp, time.Unix(0, 0), time.Unix(0, 0)))

	_, _, _ = newClient(t, registry.WithDiskCache(f.dir), registry.WithDiskCacheSize(2))
	got := cacheFiles(t, f.dir)
	assert.Equal(t, files["blobs"][len(files["blobs"])-2:], got["blobs"], "the newest two blobs")
	assert.Equal(t, files["tags"], got["tags"], "two tags: within the size")
	assert.NoFileExists(t, tmp)
}

func TestDiskCacheUnusableDirectoryIsWarnedAbout(t *testing.T) {
	host := registrytest.Memory(t)
	push(t, host+"/app:v1", newImage(t, platformSpec{os: "linux", arch: "amd64"}, nil))
	notDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))

	var log bytes.Buffer
	c, _, _ := newClient(t, registry.WithDiskCache(notDir), registry.WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	img, err := c.ImageMetadata(context.Background(), host+"/app:v1")
	require.NoError(t, err)
	assert.NotEmpty(t, img.Digest)
	assert.True(t, strings.Contains(log.String(), "continuing without the disk cache") && strings.Contains(log.String(), notDir), log.String())
}
