package actions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/registry"
)

// Replicator copies images to the destinations verdicts name. It is safe
// for concurrent use; one per process lets copies share connections and
// what it learnt about where blobs already are.
type Replicator struct {
	client *registry.Client
	o      *options
	remote []remote.Option
	puller *remote.Puller
	retry  retrier
	// mounts remembers, per destination registry and blob digest, a
	// repository that holds the blob, so that a copy to another
	// repository of that registry mounts it instead of uploading it.
	mounts *lru.Cache[string, string]
}

// NewReplicator returns the replicate executor. client reaches the
// registries: its hosts, credentials, CAs and per-request retries apply
// to writes too.
func NewReplicator(client *registry.Client, opts ...Option) (*Replicator, error) {
	if client == nil {
		return nil, errors.New("actions: replicator needs a registry client")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	ropts := client.RemoteOptions(func(rt http.RoundTripper) http.RoundTripper { return countingTransport{rt} })
	puller, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, fmt.Errorf("actions: %w", err)
	}
	mounts, err := lru.New[string, string](o.mountCacheSize)
	if err != nil {
		return nil, fmt.Errorf("actions: %w", err)
	}
	return &Replicator{client: client, o: o, remote: ropts, puller: puller,
		retry: retrier{retries: o.retries, clock: o.clock}, mounts: mounts}, nil
}

// copyPlan is what a copy sends: the manifest to push and the digest the
// destination ends up holding.
type copyPlan struct {
	want     string          // digest at the destination
	push     remote.Taggable // nil until fetched
	filtered string          // "2 of 3 platforms", for a filtered index
	skip     string          // why nothing is copied
}

// Execute copies t.Image to t.Verdict.Destination.
func (r *Replicator) Execute(ctx context.Context, t Task) (Result, error) {
	res, err := r.execute(ctx, t)
	lvl, msg := slog.LevelInfo, "replicate"
	attrs := []slog.Attr{slog.String("image", imageRef(t.Image)), slog.String("policy", t.Policy),
		slog.String("target", t.Target), slog.String("outcome", string(res.Outcome)), slog.Bool("dryRun", t.DryRun)}
	if t.Verdict != nil {
		attrs = append(attrs, slog.String("destination", t.Verdict.Destination))
	}
	if res.Bytes > 0 {
		attrs = append(attrs, slog.Int64("bytes", res.Bytes))
	}
	if err != nil {
		lvl = slog.LevelError
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	r.o.logger.LogAttrs(ctx, lvl, msg, attrs...)
	return res, err
}

func (r *Replicator) execute(ctx context.Context, t Task) (Result, error) {
	res := Result{Outcome: Failed, DryRun: t.DryRun}
	if t.Image == nil || t.Verdict == nil || t.Verdict.Destination == "" {
		return res, errors.New("replicate: the task has no image or no destination")
	}
	src, err := r.source(t.Image)
	if err != nil {
		return res, err
	}
	dst, err := r.reference(t.Verdict.Destination)
	if err != nil {
		return res, fmt.Errorf("destination: %w", err)
	}
	var plan copyPlan
	if len(t.Verdict.Platforms) == 0 {
		plan.want = t.Image.Digest
	} else {
		if plan, err = r.filter(ctx, src, t.Image, t.Verdict.Platforms); err != nil {
			return res, err
		}
		if plan.skip != "" {
			res.Outcome, res.Detail = Skipped, plan.skip
			return res, nil
		}
	}
	held, err := r.head(ctx, dst)
	if err != nil {
		return res, fmt.Errorf("check destination %s: %w", dst, err)
	}
	// Referrers refer to the source digest: they only belong at the
	// destination when it holds that digest.
	referrers := t.Verdict.Referrers && len(t.Image.Referrers) > 0 && plan.want == t.Image.Digest
	if held != "" && held == plan.want {
		res.Outcome, res.Detail = Present, "destination holds "+short(held)
		if referrers && !t.DryRun {
			n, bytes, attempts, err := r.referrers(ctx, t.Image, src, dst.Context())
			res.Bytes, res.Attempts = bytes, attempts
			if n > 0 {
				res.Detail += fmt.Sprintf(", %d referrers copied", n)
			}
			if err != nil {
				res.Outcome = Failed
				return res, err
			}
		}
		return res, nil
	}
	res.Outcome = Copied
	res.Detail = describe(plan, held, referrers, t)
	if t.DryRun {
		return res, nil
	}
	var counter byteCount
	cctx := withCounter(ctx, &counter)
	attempts, err := r.retry.do(cctx, retryableRegistry, func(ctx context.Context) error {
		return r.push(ctx, src, dst, &plan)
	})
	res.Attempts = attempts
	res.Bytes = counter.Load()
	if err != nil {
		res.Outcome = Failed
		return res, fmt.Errorf("copy to %s: %w", dst, err)
	}
	r.remember(dst.Context(), t.Image)
	if referrers {
		n, bytes, attempts, err := r.referrers(ctx, t.Image, src, dst.Context())
		res.Bytes += bytes
		res.Attempts = max(res.Attempts, attempts)
		res.Detail = strings.Replace(res.Detail, "with referrers", fmt.Sprintf("with %d referrers", n), 1)
		if err != nil {
			res.Outcome = Failed
			return res, fmt.Errorf("copy referrers to %s: %w", dst.Context(), err)
		}
	}
	if res.Attempts == 1 {
		res.Attempts = 0
	}
	return res, nil
}

func describe(plan copyPlan, held string, referrers bool, t Task) string {
	d := short(plan.want)
	if plan.filtered != "" {
		d += " (" + plan.filtered + ")"
	}
	if held != "" {
		d += ", replacing " + short(held)
	}
	if referrers {
		d += ", with referrers"
		if t.DryRun {
			d = strings.Replace(d, "with referrers", fmt.Sprintf("with %d referrers", len(t.Image.Referrers)), 1)
		}
	}
	return d
}

// push sends the plan's manifest and everything it points to.
func (r *Replicator) push(ctx context.Context, src name.Reference, dst name.Reference, plan *copyPlan) error {
	if plan.push == nil {
		desc, err := r.puller.Get(ctx, src)
		if err != nil {
			return fmt.Errorf("read source %s: %w", src, err)
		}
		plan.push = desc
	}
	pusher, err := remote.NewPusher(append(r.remote, remote.WithJobs(r.o.jobs))...)
	if err != nil {
		return err
	}
	return pusher.Push(ctx, dst, r.mountable(plan.push, dst.Context()))
}

// head returns the digest dst holds, or "" when it holds nothing.
func (r *Replicator) head(ctx context.Context, dst name.Reference) (string, error) {
	desc, err := r.puller.Head(ctx, dst)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return "", nil
		}
		return "", err
	}
	return desc.Digest.String(), nil
}

// source is the image the policies decided about, pinned to its digest.
func (r *Replicator) source(img *conditions.Image) (name.Reference, error) {
	repo, err := r.client.Repository(img.Registry + "/" + img.Repository)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", imageRef(img), err)
	}
	switch {
	case img.Digest != "":
		return repo.Digest(img.Digest), nil
	case img.Tag != "":
		return repo.Tag(img.Tag), nil
	}
	return nil, fmt.Errorf("source %s: neither tag nor digest", imageRef(img))
}

// reference parses host/repository:tag or @digest with the client's host
// configuration.
func (r *Replicator) reference(s string) (name.Reference, error) {
	reg, repository, tag, digest, err := conditions.ParseReference(s)
	if err != nil {
		return nil, err
	}
	repo, err := r.client.Repository(reg + "/" + repository)
	if err != nil {
		return nil, err
	}
	if tag != "" {
		return repo.Tag(tag), nil
	}
	return repo.Digest(digest), nil
}

func imageRef(img *conditions.Image) string {
	if img == nil {
		return ""
	}
	if img.Reference != "" {
		return img.Reference
	}
	return img.Registry + "/" + img.Repository + ":" + img.Tag
}

// short abbreviates a digest for people: sha256:0123456789ab.
func short(digest string) string {
	if i := strings.IndexByte(digest, ':'); i >= 0 && len(digest) > i+13 {
		return digest[:i+13]
	}
	return digest
}

// filter plans the copy of an index reduced to the platforms asked for.
func (r *Replicator) filter(ctx context.Context, src name.Reference, img *conditions.Image, platforms []string) (copyPlan, error) {
	want, err := parsePlatforms(platforms)
	if err != nil {
		return copyPlan{}, err
	}
	desc, err := r.puller.Get(ctx, src)
	if err != nil {
		return copyPlan{}, fmt.Errorf("read source %s: %w", src, err)
	}
	if !desc.MediaType.IsIndex() {
		// A single image: copied when its platform is wanted or unknown.
		for _, p := range img.Platforms {
			if !matchesAny(p, want) {
				return copyPlan{skip: fmt.Sprintf("platform %s is not among %s", p, strings.Join(platforms, ", "))}, nil
			}
		}
		return copyPlan{want: desc.Digest.String(), push: desc}, nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return copyPlan{}, err
	}
	return filterIndex(idx, desc.Digest.String(), desc, want, platforms)
}

// remember notes where the blobs of a copied image now are.
func (r *Replicator) remember(dst name.Repository, img *conditions.Image) {
	for _, l := range img.Layers {
		r.mounts.Add(dst.RegistryStr()+" "+l.Digest, dst.RepositoryStr())
	}
}

// mountable wraps what is pushed so that blobs the destination registry
// holds in another repository are mounted from there.
func (r *Replicator) mountable(t remote.Taggable, dst name.Repository) remote.Taggable {
	desc, ok := t.(*remote.Descriptor)
	if !ok {
		if idx, ok := t.(v1.ImageIndex); ok {
			return &mountIndex{base: idx, r: r, dst: dst}
		}
		return t
	}
	switch {
	case desc.MediaType.IsIndex():
		if idx, err := desc.ImageIndex(); err == nil {
			return &mountIndex{base: idx, r: r, dst: dst}
		}
	case desc.MediaType.IsImage():
		if img, err := desc.Image(); err == nil {
			return &mountImage{Image: img, r: r, dst: dst}
		}
	}
	return t
}
