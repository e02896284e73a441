package registry

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Errors callers branch on; every error of this package also names the
// reference or repository it is about.
var (
	// ErrNotFound: the registry has no such repository, tag or digest.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: the registry refused the credentials, or asked for
	// some and none were found.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnsupportedMediaType: the manifest is of a kind this package does
	// not read, such as Docker schema 1.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
)

// classify adds the matching sentinel to a registry error.
func classify(err error) error {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return err
	}
	switch terr.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	return err
}

// isNotFound reports whether the registry answered 404.
func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}
