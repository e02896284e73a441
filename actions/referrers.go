package actions

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/celpolicy/celpolicy/conditions"
)

// cosignSuffixes are the tags cosign keeps artifacts under, next to the
// image, by the artifact type package registry gives them.
var cosignSuffixes = map[string]string{
	"application/vnd.dev.cosign.artifact.sig.v1+json":  ".sig",
	"application/vnd.dev.cosign.artifact.att.v1+json":  ".att",
	"application/vnd.dev.cosign.artifact.sbom.v1+json": ".sbom",
}

// referrers copies the artifacts that refer to img (img.Referrers, as the
// registry client found them) to dst, which must hold img's digest. Each
// is copied by digest; ggcr keeps the destination's referrers tag
// (sha256-<hex>) up to date when the registry lacks the referrers API,
// and cosign's sha256-<hex>.sig/.att/.sbom tags are copied as tags. An
// artifact the destination already holds is not sent again. It returns
// how many artifacts were copied, the bytes sent and the most attempts
// one of them needed.
func (r *Replicator) referrers(ctx context.Context, img *conditions.Image, src name.Reference, dst name.Repository) (copied int, sent int64, attempts int, err error) {
	srcRepo := src.Context()
	for _, ref := range img.Referrers {
		var counter byteCount
		cctx := withCounter(ctx, &counter)
		did := false
		n, err := r.retry.do(cctx, retryableRegistry, func(ctx context.Context) error {
			var err error
			did, err = r.referrer(ctx, img.Digest, ref, srcRepo, dst)
			return err
		})
		attempts = max(attempts, n)
		sent += counter.Load()
		if err != nil {
			return copied, sent, attempts, fmt.Errorf("referrer %s: %w", ref.Digest, err)
		}
		if did {
			copied++
		}
	}
	return copied, sent, attempts, nil
}

// referrer copies one artifact, and its cosign tag when it has one.
func (r *Replicator) referrer(ctx context.Context, subject string, ref conditions.Referrer, srcRepo, dst name.Repository) (bool, error) {
	var tag string
	if suffix, ok := cosignSuffixes[ref.ArtifactType]; ok {
		// Only when the source's tag is really this artifact: cosign's
		// OCI 1.1 mode uses the same artifact types without tags.
		t := strings.Replace(subject, ":", "-", 1) + suffix
		desc, err := r.puller.Head(ctx, srcRepo.Tag(t))
		if err == nil && desc.Digest.String() == ref.Digest {
			tag = t
		}
	}
	var target name.Reference = dst.Digest(ref.Digest)
	if tag != "" {
		target = dst.Tag(tag)
	}
	held, err := r.head(ctx, target)
	if err != nil {
		return false, err
	}
	if held == ref.Digest {
		return false, nil
	}
	desc, err := r.puller.Get(ctx, srcRepo.Digest(ref.Digest))
	if err != nil {
		return false, fmt.Errorf("read %s: %w", srcRepo.Digest(ref.Digest), err)
	}
	pusher, err := remote.NewPusher(append(r.remote, remote.WithJobs(r.o.jobs))...)
	if err != nil {
		return false, err
	}
	if err := pusher.Push(ctx, target, desc); err != nil {
		return false, err
	}
	return true, nil
}
