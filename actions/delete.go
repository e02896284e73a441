package actions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/registry"
)

// Delete scopes.
const (
	ScopeTag      = "tag"
	ScopeManifest = "manifest"
)

// tagLookups bounds the HEAD requests in flight when a delete must learn
// which tags share a manifest.
const tagLookups = 8

// Deleter removes tags or manifests from the registry an image was read
// from, for retention.
//
// Scope "tag" removes the tag alone. Registries that cannot delete a tag
// by itself (the CNCF distribution registry before v3 answers such a
// request with an error) are asked to delete the manifest by digest,
// which removes every tag on it, but only when no other tag of the
// repository points at that manifest; otherwise the task fails and
// nothing is deleted. Scope "manifest" deletes the manifest by digest,
// and with it every tag on it.
//
// The image is deleted as it was decided: when its tag points at another
// digest by the time the deletion runs, nothing is deleted and the
// result says so (Skipped).
type Deleter struct {
	client *registry.Client
	o      *options
	remote []remote.Option
	puller *remote.Puller
}

// NewDeleter returns the delete executor. client reaches the registries.
func NewDeleter(client *registry.Client, opts ...Option) (*Deleter, error) {
	if client == nil {
		return nil, errors.New("actions: deleter needs a registry client")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	ropts := client.RemoteOptions(nil)
	puller, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, fmt.Errorf("actions: %w", err)
	}
	return &Deleter{client: client, o: o, remote: ropts, puller: puller}, nil
}

// Execute deletes t.Image as t.Action's scope says.
func (d *Deleter) Execute(ctx context.Context, t Task) (Result, error) {
	res, err := d.execute(ctx, t)
	attrs := []slog.Attr{slog.String("image", imageRef(t.Image)), slog.String("policy", t.Policy),
		slog.String("outcome", string(res.Outcome)), slog.String("detail", res.Detail), slog.Bool("dryRun", t.DryRun)}
	if t.Action != nil {
		attrs = append(attrs, slog.String("scope", t.Action.Scope))
	}
	lvl := slog.LevelInfo
	if err != nil {
		lvl = slog.LevelError
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	d.o.logger.LogAttrs(ctx, lvl, "delete", attrs...)
	return res, err
}

func (d *Deleter) execute(ctx context.Context, t Task) (Result, error) {
	res := Result{Outcome: Failed, DryRun: t.DryRun}
	if t.Action == nil || t.Image == nil {
		return res, errors.New("delete: the task has no action or no image")
	}
	ref := t.Action.Reference
	if ref == "" {
		ref = imageRef(t.Image)
	}
	reg, repository, tag, digest, err := conditions.ParseReference(ref)
	if err != nil {
		return res, fmt.Errorf("delete: %w", err)
	}
	if digest == "" {
		digest = t.Image.Digest
	}
	repo, err := d.client.Repository(reg + "/" + repository)
	if err != nil {
		return res, fmt.Errorf("delete: %w", err)
	}
	scope := t.Action.Scope
	if scope == "" {
		scope = ScopeTag
	}
	if scope != ScopeTag && scope != ScopeManifest {
		return res, fmt.Errorf("delete: unknown scope %q (want %s or %s)", scope, ScopeTag, ScopeManifest)
	}
	if scope == ScopeTag && tag == "" {
		return res, fmt.Errorf("delete %s: scope tag needs a tag", ref)
	}
	if digest == "" {
		return res, fmt.Errorf("delete %s: the digest decided about is unknown", ref)
	}
	if tag != "" {
		// Delete what was decided about, not what the tag points at now.
		now, err := d.head(ctx, repo.Tag(tag))
		if err != nil {
			return res, fmt.Errorf("delete %s: %w", ref, err)
		}
		switch {
		case now == "" && scope == ScopeTag:
			res.Outcome, res.Detail = Skipped, "tag already gone"
			return res, nil
		case now != "" && now != digest:
			res.Outcome, res.Detail = Skipped, fmt.Sprintf("tag moved to %s since it was decided about; not deleted", short(now))
			return res, nil
		}
	}
	if scope == ScopeManifest {
		res.Outcome, res.Detail = Deleted, "manifest "+short(digest)+" and every tag on it"
		if t.DryRun {
			return res, nil
		}
		err := d.delete(ctx, repo.Digest(digest))
		if isStatus(err, http.StatusNotFound) {
			res.Outcome, res.Detail = Skipped, "manifest already gone"
			return res, nil
		}
		if err != nil {
			res.Outcome = Failed
			return res, fmt.Errorf("delete manifest %s: %w", repo.Digest(digest), err)
		}
		return res, nil
	}
	res.Outcome, res.Detail = Deleted, "tag "+tag
	if t.DryRun {
		return res, nil
	}
	err = d.delete(ctx, repo.Tag(tag))
	if err == nil {
		return res, nil
	}
	if !cannotDeleteTag(err) {
		res.Outcome = Failed
		return res, fmt.Errorf("delete tag %s: %w", repo.Tag(tag), err)
	}
	// The registry deletes manifests only: do so when this tag is the
	// manifest's only one.
	others, err := d.sharing(ctx, repo, tag, digest)
	if err != nil {
		res.Outcome = Failed
		return res, fmt.Errorf("delete tag %s: the registry deletes manifests only, and its tags could not be checked: %w", repo.Tag(tag), err)
	}
	if len(others) > 0 {
		res.Outcome = Failed
		return res, fmt.Errorf("delete tag %s: the registry deletes manifests only, and tags %s share manifest %s; nothing deleted",
			repo.Tag(tag), strings.Join(others, ", "), short(digest))
	}
	if err := d.delete(ctx, repo.Digest(digest)); err != nil {
		res.Outcome = Failed
		return res, fmt.Errorf("delete tag %s by its manifest %s: %w", repo.Tag(tag), short(digest), err)
	}
	res.Detail = fmt.Sprintf("tag %s, by deleting its manifest %s (its only tag)", tag, short(digest))
	return res, nil
}

func (d *Deleter) delete(ctx context.Context, ref name.Reference) error {
	p, err := remote.NewPusher(d.remote...)
	if err != nil {
		return err
	}
	return p.Delete(ctx, ref)
}

func (d *Deleter) head(ctx context.Context, ref name.Reference) (string, error) {
	desc, err := d.puller.Head(ctx, ref)
	if isStatus(err, http.StatusNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return desc.Digest.String(), nil
}

// sharing returns the tags other than tag that point at digest.
func (d *Deleter) sharing(ctx context.Context, repo name.Repository, tag, digest string) ([]string, error) {
	tags, err := d.client.Tags(ctx, repo.Name())
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var others []string
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(tagLookups)
	for _, other := range tags {
		if other == tag {
			continue
		}
		g.Go(func() error {
			h, err := d.head(gctx, repo.Tag(other))
			if err != nil {
				return err
			}
			if h == digest {
				mu.Lock()
				others = append(others, other)
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	slices.Sort(others)
	return others, nil
}

func isStatus(err error, code int) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == code
}

// cannotDeleteTag says whether a registry refused to delete a tag because
// it deletes manifests by digest only. Distribution before v3 answers 400
// or 405 (DIGEST_INVALID or UNSUPPORTED).
func cannotDeleteTag(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	switch terr.StatusCode {
	case http.StatusMethodNotAllowed:
		return true
	case http.StatusBadRequest:
		for _, e := range terr.Errors {
			if e.Code == transport.UnsupportedErrorCode || e.Code == transport.DigestInvalidErrorCode {
				return true
			}
		}
	}
	return false
}
