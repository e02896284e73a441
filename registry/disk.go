package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// diskLayout names the cache's directory under the one the caller gives,
// so that a later format can live next to this one.
const diskLayout = "registry-v1"

// diskCache keeps, in a directory shared by processes, what a Client may
// reuse after it exits:
//
//   - blobs/sha256-<hex>: manifests and image configs by digest, as the
//     registry sent them, after a line with their media type. Content
//     under a digest never changes, and each read checks the content
//     against its digest.
//   - tags/<sha256 of the tag>: the digest a tag had when last read, with
//     the tag itself to check against. It is never trusted as the tag's
//     digest: it only says that a HEAD request (which Docker Hub does not
//     count as a pull) is likely to find the image in blobs.
//
// An entry that cannot be read or fails its check is ignored with a
// warning, so a damaged cache costs requests, never a wrong answer.
// Entries are written to a temporary file and renamed into place, so
// concurrent processes never see half of one. Each directory is cut back
// to its newest entries, up to a limit, when the cache is opened.
type diskCache struct {
	blobs, tags string
	logger      *slog.Logger
	// warnedWrite keeps a full or read-only disk from logging a warning
	// per entry.
	warnedWrite atomic.Bool
}

// openDiskCache creates the cache's directories under dir and prunes
// them to limit entries each.
func openDiskCache(dir string, limit int, logger *slog.Logger) (*diskCache, error) {
	if !filepath.IsAbs(dir) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("disk cache %q: %w", dir, err)
		}
		dir = abs
	}
	root := filepath.Join(dir, diskLayout)
	d := &diskCache{blobs: filepath.Join(root, "blobs"), tags: filepath.Join(root, "tags"), logger: logger}
	for _, sub := range []string{d.blobs, d.tags} {
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return nil, fmt.Errorf("disk cache: %w", err)
		}
		d.prune(sub, limit)
	}
	return d, nil
}

// blob returns the media type and content cached under digest, if any
// and intact.
func (d *diskCache) blob(digest string) (mediaType string, content []byte, ok bool) {
	file, ok := blobFile(digest)
	if !ok {
		return "", nil, false
	}
	path := filepath.Join(d.blobs, file)
	data, err := os.ReadFile(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			d.logger.Warn("disk cache: entry ignored", "file", path, "error", err)
		}
		return "", nil, false
	}
	mt, content, found := bytes.Cut(data, []byte("\n"))
	sum := sha256.Sum256(content)
	if !found || "sha256:"+hex.EncodeToString(sum[:]) != digest {
		d.logger.Warn("disk cache: entry ignored", "file", path, "error", "content does not match its digest")
		return "", nil, false
	}
	return string(mt), content, true
}

// putBlob caches content under digest, which the caller has checked.
func (d *diskCache) putBlob(digest, mediaType string, content []byte) {
	file, ok := blobFile(digest)
	if !ok || strings.ContainsAny(mediaType, "\r\n") {
		return
	}
	data := make([]byte, 0, len(mediaType)+1+len(content))
	data = append(append(append(data, mediaType...), '\n'), content...)
	d.write(filepath.Join(d.blobs, file), data)
}

// tag returns the digest a tag was last seen at, if recorded and intact.
func (d *diskCache) tag(key string) (string, bool) {
	path := filepath.Join(d.tags, tagFile(key))
	data, err := os.ReadFile(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			d.logger.Warn("disk cache: entry ignored", "file", path, "error", err)
		}
		return "", false
	}
	k, digest, _ := strings.Cut(strings.TrimSuffix(string(data), "\n"), "\n")
	if _, ok := blobFile(digest); k != key || !ok {
		d.logger.Warn("disk cache: entry ignored", "file", path, "error", "not a record of tag "+key)
		return "", false
	}
	return digest, true
}

func (d *diskCache) setTag(key, digest string) {
	if _, ok := blobFile(digest); !ok || strings.ContainsAny(key, "\r\n") {
		return
	}
	d.write(filepath.Join(d.tags, tagFile(key)), []byte(key+"\n"+digest+"\n"))
}

// write puts data at path through a temporary file and a rename.
func (d *diskCache) write(path string, data []byte) {
	err := func() error {
		f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), path)
		}
		if err != nil {
			_ = os.Remove(f.Name())
		}
		return err
	}()
	if err != nil && !d.warnedWrite.Swap(true) {
		d.logger.Warn("disk cache: cannot write, continuing without storing entries", "file", path, "error", err)
	}
}

// prune removes the oldest entries (and leftover temporary files) of dir
// beyond limit.
func (d *diskCache) prune(dir string, limit int) {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) <= limit {
		return
	}
	type aged struct {
		name string
		at   time.Time
	}
	files := make([]aged, 0, len(entries))
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile, by another process
		}
		files = append(files, aged{e.Name(), info.ModTime()})
	}
	slices.SortFunc(files, func(a, b aged) int { return a.at.Compare(b.at) })
	for _, f := range files[:max(len(files)-limit, 0)] {
		if err := os.Remove(filepath.Join(dir, f.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			d.logger.Warn("disk cache: cannot prune", "file", filepath.Join(dir, f.name), "error", err)
			return
		}
	}
}

// blobFile is the file name of a sha256 digest; other digests are not
// cached.
func blobFile(digest string) (string, bool) {
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(h) != 64 || strings.IndexFunc(h, func(r rune) bool { return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') }) >= 0 {
		return "", false
	}
	return "sha256-" + h, true
}

func tagFile(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
