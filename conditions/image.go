package conditions

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// Image is an image as policies see it: the value of `image` in every
// expression. Field names in CEL are the JSON names.
//
// The zero value of a field means "unknown": a policy that reads an empty
// Tag or a zero Created sees the zero value, not an error. Age is derived
// from Created and the evaluation clock; callers leave it zero.
type Image struct {
	// Registry is the normalized host[:port]; Docker Hub is "docker.io".
	Registry string `json:"registry"`
	// Repository is the path inside the registry, e.g. "library/nginx".
	Repository string `json:"repository"`
	// Tag is empty for an image addressed by digest only.
	Tag string `json:"tag,omitempty"`
	// Digest is the manifest (or index) digest, "sha256:<hex>".
	Digest string `json:"digest,omitempty"`
	// Reference is registry/repository[:tag][@digest].
	Reference string `json:"reference"`
	// MediaType of the manifest or index.
	MediaType string `json:"mediaType,omitempty"`
	// Labels are the config labels (Dockerfile LABEL).
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations are the manifest's, and for an index the index's.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Created is the config's creation time.
	Created time.Time `json:"created,omitzero"`
	// Age is now - Created, filled in by the evaluator from its clock;
	// zero when Created is unknown.
	Age time.Duration `json:"age,omitempty"`
	// Size in bytes: config plus layers (for an index, see the registry
	// package for how platforms are counted).
	Size int64 `json:"size,omitempty"`
	// Layers of the image, in order.
	Layers []Layer `json:"layers,omitempty"`
	// Platforms as "os/arch[/variant]".
	Platforms []string `json:"platforms,omitempty"`
	// Referrers are artifacts that refer to the image: signatures, SBOMs.
	Referrers []Referrer `json:"referrers,omitempty"`
	// Source is the inventory name of the registry the image was read from.
	Source string `json:"source,omitempty"`
}

// Layer is one layer of an image.
type Layer struct {
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType,omitempty"`
	Size      int64  `json:"size"`
}

// Referrer is an artifact that refers to an image (OCI 1.1 referrers).
type Referrer struct {
	ArtifactType string `json:"artifactType"`
	Digest       string `json:"digest"`
}

// Target is a registry of the inventory as an action's `where`,
// `repository`, `tag` and `reason` expressions see it: the value of
// `target`.
type Target struct {
	Name   string            `json:"name"`
	Host   string            `json:"host"`
	Labels map[string]string `json:"labels,omitempty"`
}

// dockerHub is the name policies see for Docker Hub, whatever alias the
// reference used.
const dockerHub = "docker.io"

// Normalize fills Registry, Repository, Tag and Digest from Reference when
// they are empty, and rewrites Reference to its canonical form:
// registry/repository:tag, or registry/repository@digest without a tag.
// Docker Hub references become "docker.io/library/name" as in `docker pull`.
func (img *Image) Normalize() error {
	if img.Reference == "" {
		if img.Registry == "" || img.Repository == "" {
			return fmt.Errorf("image: reference, or registry and repository, are required")
		}
		img.Reference = img.Registry + "/" + img.Repository
		if img.Tag != "" {
			img.Reference += ":" + img.Tag
		}
		if img.Digest != "" {
			img.Reference += "@" + img.Digest
		}
	}
	reg, repo, tag, digest, err := ParseReference(img.Reference)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		field *string
		value string
		name  string
	}{{&img.Registry, reg, "registry"}, {&img.Repository, repo, "repository"}, {&img.Tag, tag, "tag"}, {&img.Digest, digest, "digest"}} {
		if *f.field == "" {
			*f.field = f.value
		} else if f.value != "" && normalizeHost(*f.field) != f.value && *f.field != f.value {
			return fmt.Errorf("image: %s %q disagrees with reference %q", f.name, *f.field, img.Reference)
		}
	}
	img.Registry = normalizeHost(img.Registry)
	// The tag form reads best in reasons and logs; the digest stays in
	// its own field.
	img.Reference = img.Registry + "/" + img.Repository
	if img.Tag != "" {
		img.Reference += ":" + img.Tag
	} else if img.Digest != "" {
		img.Reference += "@" + img.Digest
	}
	return nil
}

// ParseReference splits an image reference into normalized registry,
// repository, tag and digest. "nginx" is docker.io/library/nginx:latest.
func ParseReference(ref string) (registry, repository, tag, digest string, err error) {
	if ref == "" {
		return "", "", "", "", fmt.Errorf("image reference is empty")
	}
	base := ref
	if i := strings.Index(ref, "@"); i >= 0 {
		d, err := name.NewDigest(ref, name.WeakValidation)
		if err != nil {
			return "", "", "", "", fmt.Errorf("parse image reference %q: %w", ref, err)
		}
		digest = d.DigestStr()
		base = ref[:i]
	}
	t, err := name.NewTag(base, name.WeakValidation)
	if err != nil {
		return "", "", "", "", fmt.Errorf("parse image reference %q: %w", ref, err)
	}
	registry = normalizeHost(t.RegistryStr())
	repository = t.RepositoryStr()
	// name.NewTag defaults the tag to "latest"; keep a digest-only
	// reference tagless, as it was written.
	if digest == "" || hasExplicitTag(base) {
		tag = t.TagStr()
	}
	return registry, repository, tag, digest, nil
}

func hasExplicitTag(base string) bool {
	i := strings.LastIndex(base, ":")
	return i >= 0 && !strings.Contains(base[i:], "/")
}

func normalizeHost(host string) string {
	switch host {
	case name.DefaultRegistry, "registry-1.docker.io", "docker.io":
		return dockerHub
	}
	return host
}
