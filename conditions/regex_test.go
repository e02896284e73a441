package conditions

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSimpleRegexCovers(t *testing.T) {
	for _, c := range []struct {
		pattern string
		simple  bool
	}{
		{`^v[0-9]+\.[0-9]+\.7$`, true},
		{`^release-7\.`, true},
		{`t7`, true},
		{`^$`, true},
		{``, true},
		{`a.?b*c+$`, true},
		{`(x)[^/]+`, true},
		{`(?i)latest`, false},
		{`a|b`, true}, // the parser makes it [a-b]
		{`ab|cd`, false},
		{`\bword`, false},
		{`(ab)+`, false},
		{`a{2,3}`, true}, // simplified to aaa?
		{`^a^`, false},
	} {
		_, ok := compileSimpleRegex(c.pattern, nil)
		require.Equal(t, c.simple, ok, c.pattern)
	}
}

// TestSimpleRegexAgreesWithRegexp matches random patterns of the simple
// subset, and some outside it, against random strings both ways.
func TestSimpleRegexAgreesWithRegexp(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	alphabet := []string{"a", "b", "7", ".", "-", "/", "\n", "é", "\xff", "v", "1"}
	atoms := []string{"a", "b", "7", `\.`, "-", "/", ".", "[0-9]", "[^/]", "[a-c]", "é", `\d`, `\w`, "[é-ë]", `\n`, "(a)", "(?:b)", "[^a]", `\x{FFFD}`}
	reps := []string{"", "", "", "?", "*", "+", "??", "*?", "{2}", "{1,3}", "{2,}"}
	covered := 0
	for range 3000 {
		var p strings.Builder
		if r.IntN(2) == 0 {
			p.WriteString("^")
		}
		for range r.IntN(6) {
			p.WriteString(atoms[r.IntN(len(atoms))])
			p.WriteString(reps[r.IntN(len(reps))])
		}
		if r.IntN(2) == 0 {
			p.WriteString("$")
		}
		pattern := p.String()
		want := regexp.MustCompile(pattern)
		got, ok := compileSimpleRegex(pattern, nil)
		if !ok {
			continue
		}
		covered++
		for range 30 {
			var s strings.Builder
			for range r.IntN(8) {
				s.WriteString(alphabet[r.IntN(len(alphabet))])
			}
			in := s.String()
			require.Equal(t, want.MatchString(in), got.MatchString(in), "seed %d: %q on %q", seed, pattern, in)
		}
	}
	require.Greater(t, covered, 2000)
}

func TestParseRegexIsRegexpCompile(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(seed, 11))
	parts := []string{"a", "(", ")", "[", "]", "*", "+", "?", "{2}", "{1,", "\\", "\\d", "\\p{Greek}", "\\pX", "(?i)", "(?P<n>", "|", "^", "$", ".", "-", "x{1001}", "\\Q", "\\E", "[[:alpha:]]", "[[:foo:]]", "\xff"}
	for range 5000 {
		var p strings.Builder
		for range r.IntN(7) {
			p.WriteString(parts[r.IntN(len(parts))])
		}
		_, err := regexp.Compile(p.String())
		_, perr := parseRegex(p.String())
		require.Equal(t, err == nil, perr == nil, "seed %d: %q", seed, p.String())
	}
	_, err := regexp.Compile(strings.Repeat("a{1000}", 1000))
	_, perr := parseRegex(strings.Repeat("a{1000}", 1000))
	require.Equal(t, err == nil, perr == nil, "a pattern too large")
}
