package conditions

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

var shapeSeed = flag.Uint64("shapes.seed", 1, "seed of the random literals of TestShapesCompileLikeFullCompile")

// A literal writes the source text of one random literal.
type literal func(r *rand.Rand) string

// anyString is a quoted string of random characters, escapes among them, in
// single or double quotes.
func anyString(r *rand.Rand) string {
	const chars = `abcxyz019./-_:*?[]{}^$+ "'\` + "\n\t\r"
	var b strings.Builder
	for range r.IntN(12) {
		b.WriteByte(chars[r.IntN(len(chars))])
	}
	return quote(r, b.String())
}

// quote writes s as a CEL string with simple escapes only.
func quote(r *rand.Rand, s string) string {
	q := `"`
	if r.IntN(2) == 0 {
		q = `'`
	}
	var b strings.Builder
	b.WriteString(q)
	for _, c := range []byte(s) {
		switch c {
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case '"', '\'':
			if string(c) == q || r.IntN(2) == 0 {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteString(q)
	return b.String()
}

// oneOf picks a value and quotes it.
func oneOf(values ...string) literal {
	return func(r *rand.Rand) string { return quote(r, values[r.IntN(len(values))]) }
}

// anyInt is a decimal int: small, large, with leading zeros, or too large
// for an int64.
func anyInt(r *rand.Rand) string {
	switch r.IntN(6) {
	case 0:
		return "0"
	case 1:
		return "00" + strconv.Itoa(r.IntN(100))
	case 2:
		return strconv.FormatInt(r.Int64(), 10)
	case 3:
		return "9223372036854775808"
	default:
		return strconv.Itoa(r.IntN(100000))
	}
}

func smallInt(r *rand.Rand) string { return strconv.Itoa(r.IntN(1000)) }

// strOrNum is a string or an int: one shape text, two shapes.
func strOrNum(r *rand.Rand) string {
	if r.IntN(2) == 0 {
		return anyInt(r)
	}
	return anyString(r)
}

func verbatim(s string) literal { return func(*rand.Rand) string { return s } }

var (
	regexPattern   = oneOf(`^v[0-9]+\.[0-9]+\.7$`, `^release-7\.`, `^1\.25`, `(`, `[a-`, `.*`, `a{2,1}`)
	globPattern    = oneOf("team7/**", "library/*", "[", "a/{b", "**/x", "team*/**")
	durationText   = oneOf("1h", "30m", "2160h", "-5s", "bogus", "", "1.5h")
	timestampText  = oneOf("2026-01-01T00:00:00Z", "2026-13-01T00:00:00Z", "yesterday")
	versionText    = oneOf("1.25.0", "v1.2.3", "latest", "1.x", "")
	constraintText = oneOf(">= 1.25, < 2", "~1.2", "^0.1", ">>1", "", "1.25.3")
	formatText     = oneOf("%s", "%d", "%s-%d", "%x", "%%", "%", "%.2f")
	labelKey       = oneOf("team", "scan.date", "missing", "", "t\"x")
)

// shapeForms are expression templates: each %s is a literal written by
// the matching generator. They cover the benchmark workloads and the
// literals, scopes and syntax a shape could get wrong.
var shapeForms = []struct {
	name  string
	text  string
	lits  []literal
	scope Scope
	vars  bool
	// alone: no expression of the form shares a template (see Shapes).
	alone bool
}{
	{name: "standard", text: `image.registry == %s && image.repository.startsWith(%s) && image.tag.matches(%s) && image.labels[%s] == %s && image.size < %s`,
		lits: []literal{anyString, anyString, regexPattern, labelKey, anyString, anyInt}},
	{name: "mixed label", text: `image.labels[%s] == %s`, lits: []literal{labelKey, anyString}},
	{name: "mixed glob", text: `image.repository.glob(%s)`, lits: []literal{globPattern}},
	{name: "mixed regex", text: `image.tag.matches(%s)`, lits: []literal{regexPattern}},
	{name: "mixed size", text: `image.registry == %s && image.size > %s`, lits: []literal{anyString, anyInt}},
	{name: "mixed age", text: `image.registry == %s && image.age > duration(%s)`, lits: []literal{anyString, durationText}},
	{name: "mixed label or tag", text: `image.labels[%s] == %s || image.tag.matches(%s)`, lits: []literal{labelKey, anyString, regexPattern}},
	{name: "mixed glob or age", text: `image.repository.glob(%s) || image.registry == %s && image.age > duration(%s)`,
		lits: []literal{globPattern, anyString, durationText}},
	{name: "multi-line with comment", text: "image.registry == %s\n  // a comment with \"quotes\" and 12\n  && image.tag != %s\n\n\t&& image.size <= %s",
		lits: []literal{anyString, anyString, anyInt}},
	{name: "list", text: `image.registry in [%s, %s, %s] && image.size in [%s, %s]`, lits: []literal{anyString, anyString, anyString, anyInt, anyInt}},
	{name: "map", text: `{%s: %s, %s: 1}[image.tag] == %s`, lits: []literal{oneOf("a", "b", "1.25.3"), anyInt, oneOf("a", "b"), anyInt}},
	{name: "map optional index", text: `{%s: %s}[?image.tag].orValue(%s) == image.repository`, lits: []literal{anyString, anyString, anyString}},
	{name: "negative number", text: `image.size > -%s && image.size - %s < 10`, lits: []literal{smallInt, smallInt}, alone: true},
	{name: "has macro", text: `has(image.labels.team) && image.labels.team == %s`, lits: []literal{anyString}},
	{name: "exists macro", text: `image.platforms.exists(p, p == %s) && image.size < %s`, lits: []literal{anyString, anyInt}, alone: true},
	{name: "variables", text: `variables.team == %s && image.labels[%s] == variables.team`, lits: []literal{anyString, labelKey}, vars: true},
	{name: "target scope", text: `target.labels[%s] == %s && target.name.startsWith(%s)`, lits: []literal{labelKey, anyString, anyString}, scope: TargetScope},
	{name: "target in image scope", text: `target.name == %s`, lits: []literal{anyString}, alone: true},
	{name: "string or int", text: `image.labels[%s] == %s && image.size != %s`, lits: []literal{strOrNum, strOrNum, strOrNum}},
	{name: "timestamp", text: `image.created > timestamp(%s) && now - image.created < duration(%s)`, lits: []literal{timestampText, durationText}},
	{name: "semver", text: `isSemver(image.tag) && semver(image.tag).satisfies(%s) && semver(%s) <= semver(image.tag)`,
		lits: []literal{constraintText, versionText}},
	{name: "format", text: `%s.format([image.tag]) == %s`, lits: []literal{formatText, anyString}},
	{name: "string concat", text: `%s + image.repository + %s + string(image.size + %s)`, lits: []literal{anyString, anyString, anyInt}},
	{name: "raw and verbatim literals", text: `image.tag.matches(r%s) && image.size < 0x10 + %s && double(image.size) > 1.5 && %s == b"x" && '''a%s'''.size() > 0`,
		lits: []literal{oneOf(`a\.b`, `^v`), anyInt, verbatim(`b"x"`), verbatim("y")}},
	{name: "uint and float", text: `uint(image.size) < %su && double(image.size) > %s.5`, lits: []literal{anyInt, anyInt}, alone: true},
	{name: "conditional", text: `(image.size > %s ? image.tag : %s) == %s`, lits: []literal{anyInt, anyString, anyString}},
	{name: "non-ASCII", text: `image.labels[%s] == "é" || image.tag == %s`, lits: []literal{labelKey, anyString}, alone: true},
	{name: "type error", text: `image.size == %s`, lits: []literal{anyString}, alone: true},
	{name: "struct", text: `celpolicy.Target{name: %s}.name == image.repository`, lits: []literal{anyString}, scope: TargetScope},
}

// TestShapesCompileLikeFullCompile compiles many expressions of each
// form with one Shapes and each on its own, and requires the same result:
// acceptance, errors, checked expression, positions, type, cost, and
// values on a few images.
func TestShapesCompileLikeFullCompile(t *testing.T) {
	seed := *shapeSeed
	r := rand.New(rand.NewPCG(seed, seed))
	base, err := NewEnv()
	require.NoError(t, err)
	withVars, err := base.WithVariables(Variable{Name: "team", Type: cel.StringType})
	require.NoError(t, err)
	shapes := NewShapes()
	images := shapeImages()
	target := &Target{Name: "eu-prod", Host: "registry.eu.example.com", Labels: map[string]string{"team": "t7", "gdpr": "true"}}
	vars := variableMap{"team": types.String("t7")}
	const perForm = 60
	for _, f := range shapeForms {
		env := base
		if f.vars {
			env = withVars
		}
		before := shapes.full.Load()
		compiles := 0
		for i := range perForm {
			args := make([]any, len(f.lits))
			for j, lit := range f.lits {
				args[j] = lit(r)
			}
			text := fmt.Sprintf(f.text, args...)
			if i == 0 && f.name == "standard" {
				// The benchmark's own first policy, escapes and all.
				text = `image.registry == "reg0.example.com" && image.repository.startsWith("team0/") && image.tag.matches("^v[0-9]+\\.[0-9]+\\.0$") && image.labels["team"] == "t0" && image.size < 1000`
			}
			full, fullErr := env.Compile(text, f.scope, nil)
			shared, sharedErr := env.Compile(text, f.scope, nil, WithShapes(shapes))
			compiles++
			where := fmt.Sprintf("form %q, expression %q (seed %d)", f.name, text, seed)
			if fullErr != nil || sharedErr != nil {
				require.Equal(t, fullErr, sharedErr, where)
				continue
			}
			requireSameProgram(t, full, shared, where)
			for _, img := range images {
				act := NewActivation(img, testNow).WithTarget(target).WithVariables(vars)
				want, wantErr := full.Eval(context.Background(), act)
				got, gotErr := shared.Eval(context.Background(), act)
				require.Equal(t, fmt.Sprint(wantErr), fmt.Sprint(gotErr), where)
				if wantErr == nil {
					require.Equal(t, ToJSON(want), ToJSON(got), where)
				}
			}
		}
		sharedCompiles := compiles - int(shapes.full.Load()-before)
		if f.alone {
			assert.Zero(t, sharedCompiles, "form %q", f.name)
		} else {
			assert.Positive(t, sharedCompiles, "form %q", f.name)
		}
		t.Logf("%-26s %2d of %d shared", f.name, sharedCompiles, compiles)
	}
}

func requireSameProgram(t *testing.T, full, shared *Program, where string) {
	t.Helper()
	require.True(t, full.OutputType().IsExactType(shared.OutputType()), where)
	require.Equal(t, full.CostEstimate(), shared.CostEstimate(), where)
	fa, sa := full.AST(), shared.AST()
	fpb, err := cel.AstToCheckedExpr(fa)
	require.NoError(t, err, where)
	spb, err := cel.AstToCheckedExpr(sa)
	require.NoError(t, err, where)
	if !proto.Equal(fpb, spb) {
		require.Equal(t, fpb.String(), spb.String(), where) // a readable diff
		t.Fatalf("%s: checked expressions differ", where)
	}
	// The proto keeps start positions only; explain and lint read spans.
	require.Equal(t, fa.NativeRep().SourceInfo().OffsetRanges(), sa.NativeRep().SourceInfo().OffsetRanges(), where)
	require.Equal(t, fa.Source().Content(), sa.Source().Content(), where)
	require.Equal(t, fa.Source().Description(), sa.Source().Description(), where)
}

type variableMap map[string]ref.Val

func (m variableMap) Variable(name string) (ref.Val, bool) {
	v, ok := m[name]
	return v, ok
}

// shapeImages are images the forms above match in different ways.
func shapeImages() []*Image {
	var out []*Image
	for _, ref := range []string{"reg7.example.com/team7/app:v1.2.7", "docker.io/library/nginx:1.25.3", "a/b:release-7.1"} {
		img := &Image{Reference: ref, Labels: map[string]string{"team": "t7", "scan.date": "2026-11-20"},
			Size: 10, Created: testNow.Add(-100 * 24 * 60 * 60 * 1e9), Platforms: []string{"linux/amd64"}}
		if err := img.Normalize(); err != nil {
			panic(err)
		}
		out = append(out, img)
	}
	return out
}

// TestShapesShare compiles 100 expressions of one shape, concurrently, and
// requires that only the first was parsed and type-checked.
func TestShapesShare(t *testing.T) {
	env, err := NewEnv()
	require.NoError(t, err)
	shapes := NewShapes()
	text := func(i int) string {
		return fmt.Sprintf(`image.registry == "reg%d.example.com" && image.repository.startsWith('team%d/') && image.tag.matches("^v[0-9]+\\.%d$") && image.size < %d`,
			i%50, i, i, 1000+i)
	}
	_, err = env.Compile(text(0), ImageScope, cel.BoolType, WithShapes(shapes))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := 1; i < 100; i++ {
		wg.Go(func() {
			_, err := env.Compile(text(i), ImageScope, cel.BoolType, WithShapes(shapes))
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, int64(1), shapes.full.Load(), "full compiles")

	// A literal a validator rejects is compiled in full, for cel-go's error.
	_, err = env.Compile(strings.Replace(text(3), `^v`, `(`, 1), ImageScope, cel.BoolType, WithShapes(shapes))
	require.Error(t, err)
	assert.Equal(t, int64(2), shapes.full.Load(), "full compiles")

	// Another scope is another environment: another shape.
	_, err = env.Compile(text(4), TargetScope, cel.BoolType, WithShapes(shapes))
	require.NoError(t, err)
	assert.Equal(t, int64(3), shapes.full.Load(), "full compiles")
}
