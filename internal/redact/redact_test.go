package redact

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestURL(t *testing.T) {
	tests := map[string]string{
		"https://bot:tok@hooks.example.com/a/b?token=x#frag": "https://hooks.example.com/a/b",
		"http://127.0.0.1:8080/hook":                         "http://127.0.0.1:8080/hook",
		"":                                                   "",
		"://bad":                                             "(unparsable URL)",
	}
	for in, want := range tests {
		assert.Equal(t, want, URL(in), in)
	}
}

func TestError(t *testing.T) {
	secret := "https://u:p@h.example.com/x?token=s"
	err := fmt.Errorf("notify: %w", &url.Error{Op: "Post", URL: secret, Err: errors.New("refused")})
	assert.Equal(t, "notify: Post \"https://h.example.com/x\": refused", Error(err, ""))
	assert.Equal(t, "posting to https://h.example.com/x failed", Error(errors.New("posting to "+secret+" failed"), secret))
}

func TestWrap(t *testing.T) {
	secret := "https://h.example.com/x?token=s"
	base := &url.Error{Op: "Post", URL: secret, Err: context.DeadlineExceeded}
	err := Wrap(base, secret)
	assert.NotContains(t, err.Error(), "token=s")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NoError(t, Wrap(nil, secret))
}
