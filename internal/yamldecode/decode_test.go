package yamldecode

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

type spec struct {
	Name     string            `yaml:"name" required:"true"`
	Priority int               `yaml:"priority"`
	Enabled  bool              `yaml:"enabled"`
	Labels   map[string]string `yaml:"labels"`
	Tags     []string          `yaml:"tags"`
	Every    time.Duration     `yaml:"every"`
	Inner    *inner            `yaml:"inner"`
}

type inner struct {
	Host string `json:"host" required:"true"`
}

func decode(t *testing.T, src string) (spec, []string) {
	t.Helper()
	var n yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(src), &n))
	var s spec
	d := &Decoder{Ignore: func(k string) bool { return strings.HasPrefix(k, "x-") }}
	d.Decode(n.Content[0], reflect.ValueOf(&s).Elem(), "")
	var problems []string
	for _, p := range d.Problems {
		problems = append(problems, fmt.Sprintf("%d:%d: %s: %s", p.Node.Line, p.Node.Column, p.Path, p.Msg))
	}
	return s, problems
}

func TestDecodeValid(t *testing.T) {
	s, problems := decode(t, `
x-base: &base {priority: 3, labels: {env: prod, gdpr: true}}
<<: *base
name: p
tags: [a, b]
every: 90m
inner: {host: r.example.com}
`)
	assert.Empty(t, problems)
	assert.Equal(t, spec{Name: "p", Priority: 3, Labels: map[string]string{"env": "prod", "gdpr": "true"},
		Tags: []string{"a", "b"}, Every: 90 * time.Minute, Inner: &inner{Host: "r.example.com"}}, s)
}

func TestDecodeReportsEveryProblem(t *testing.T) {
	_, problems := decode(t, `priorty: 1
enabled: maybe
tags: a
labels: {env: [x]}
every: soon
inner:
  hots: x
name: p
name: q
`)
	// Callers sort by position; the decoder finds duplicates first.
	assert.ElementsMatch(t, []string{
		`1:1: priorty: unknown field "priorty" (did you mean "priority"?)`,
		`2:10: enabled: expected true or false, got "maybe"`,
		`3:7: tags: expected a list, got "a"`,
		`4:15: labels.env: expected a string, got a list`,
		`5:8: every: expected a duration such as 90m or 2160h, got "soon"`,
		`7:3: inner.hots: unknown field "hots" (did you mean "host"?)`,
		`6:1: inner.host: missing required field "host"`,
		`9:1: name: duplicate key "name"`,
	}, problems)
}
