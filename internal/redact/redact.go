package redact

import (
	"errors"
	"net/url"
	"strings"
)

// URL returns raw without user information, query and fragment.
func URL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	return u.String()
}

// Error returns err's message with the URL an HTTP client error quotes
// redacted, and any other occurrence of secretURL replaced by its
// redacted form.
func Error(err error, secretURL string) string {
	var ue *url.Error
	msg := err.Error()
	if errors.As(err, &ue) {
		msg = strings.ReplaceAll(msg, ue.URL, URL(ue.URL))
	}
	if secretURL != "" {
		msg = strings.ReplaceAll(msg, secretURL, URL(secretURL))
	}
	return msg
}

// Wrap returns err with the message Error gives, still wrapping err for
// errors.Is and errors.As.
func Wrap(err error, secretURL string) error {
	if err == nil {
		return nil
	}
	return &wrapped{err: err, msg: Error(err, secretURL)}
}

type wrapped struct {
	err error
	msg string
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }
