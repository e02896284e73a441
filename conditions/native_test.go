package conditions

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/cel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// compileBoth compiles expr for the native evaluator and for cel-go's
// interpreter alone, both untracked, as the engine plans them.
func compileBoth(t testing.TB, env *Env, expr string, scope Scope, want *cel.Type) (native, interp *Program) {
	t.Helper()
	native, err := env.Compile(expr, scope, want, PlanUntrackedBelow(math.MaxUint64))
	require.NoError(t, err, expr)
	interp, err = env.Compile(expr, scope, want, PlanUntrackedBelow(math.MaxUint64), PlanWithCEL())
	require.NoError(t, err, expr)
	require.Nil(t, interp.native, "PlanWithCEL must plan with cel-go: %s", expr)
	return native, interp
}

// agree evaluates both programs and fails unless they give the same value
// or the same error.
func agree(t testing.TB, native, interp *Program, act *Activation, what string) {
	t.Helper()
	ctx := context.Background()
	nv, nerr := native.Eval(ctx, act)
	iv, ierr := interp.Eval(ctx, act)
	if ierr != nil || nerr != nil {
		require.Errorf(t, nerr, "native returned %v, cel-go failed with %v: %s", nv, ierr, what)
		require.Errorf(t, ierr, "cel-go returned %v, native failed with %v: %s", iv, nerr, what)
		require.Equal(t, ierr.Error(), nerr.Error(), what)
		return
	}
	require.Equal(t, iv.Value(), nv.Value(), what)
	require.Equal(t, iv.Type(), nv.Type(), what)
	// The typed entry points agree with Eval.
	switch iv.Value().(type) {
	case bool:
		b, err := native.EvalBool(ctx, act)
		require.NoError(t, err)
		require.Equal(t, iv.Value(), b, what)
	case string:
		s, err := native.EvalString(ctx, act)
		require.NoError(t, err)
		require.Equal(t, iv.Value(), s, what)
	}
}

func TestNativeCases(t *testing.T) {
	env, err := NewEnv()
	require.NoError(t, err)
	img := testImage()
	img.Labels["empty"] = ""
	target := &Target{Name: "eu-prod", Host: "registry.eu.example.com", Labels: map[string]string{"gdpr": "true"}}
	for _, c := range []struct {
		expr   string
		scope  Scope
		native bool
		want   any // bool or string; an error when errText is set
		err    string
	}{
		{`image.registry == "docker.io"`, ImageScope, true, true, ""},
		{`image.labels["team"] == "web"`, ImageScope, true, true, ""},
		{`image.labels.team != "web"`, ImageScope, true, false, ""},
		{`image.labels["owner"] == "x"`, ImageScope, true, nil, "no such key: owner"},
		{`image.labels.owner == "x"`, ImageScope, true, nil, "no such key: owner"},
		{`image.labels["owner"] == "x" || true`, ImageScope, true, true, ""},
		{`false && image.labels["owner"] == "x"`, ImageScope, true, false, ""},
		{`image.labels["owner"] == "x" && true`, ImageScope, true, nil, "no such key: owner"},
		{`image.labels["a"] == "x" && image.labels["b"] == "x"`, ImageScope, true, nil, "no such key: a"},
		{`!(image.labels["a"] == "x")`, ImageScope, true, nil, "no such key: a"},
		{`has(image.labels.team) && !has(image.labels.owner)`, ImageScope, true, true, ""},
		{`"team" in image.labels && !("owner" in image.labels)`, ImageScope, true, true, ""},
		{`image.repository.startsWith("library/") && image.reference.endsWith(":1.25.3") && image.digest.contains("0123")`, ImageScope, true, true, ""},
		{`image.tag.matches("^1\\.25\\.[0-9]+$")`, ImageScope, true, true, ""},
		{`matches(image.tag, "^2")`, ImageScope, true, false, ""},
		{`image.repository.glob("library/**")`, ImageScope, true, true, ""},
		{`image.registry in ["quay.io", "docker.io"]`, ImageScope, true, true, ""},
		{`image.size in [1, 12345]`, ImageScope, true, true, ""},
		{`"linux/arm64/v8" in image.platforms`, ImageScope, true, true, ""},
		{`image.size < 20000 && image.size >= 12345 && image.size != 1`, ImageScope, true, true, ""},
		{`image.age > duration("2160h") && image.age <= duration("2401h")`, ImageScope, true, true, ""},
		{`image.created < now && image.created > timestamp("2026-01-01T00:00:00Z")`, ImageScope, true, true, ""},
		{`image.tag < "2" && "e" > image.registry`, ImageScope, true, true, ""},
		{`(image.tag == "" ? "latest" : image.tag) == "1.25.3"`, ImageScope, true, true, ""},
		{`image.tag == "" ? "latest" : image.tag`, ImageScope, true, "1.25.3", ""},
		{`(image.labels["x"] == "" ? "a" : "b") == "a"`, ImageScope, true, nil, "no such key: x"},
		{`image.labels.empty == "" && image.mediaType.contains("index")`, ImageScope, true, true, ""},
		{`target.labels["gdpr"] == "true" && target.name.startsWith("eu-") && target.host != ""`, TargetScope, true, true, ""},
		{`target.labels["pci"] == "true"`, TargetScope, true, nil, "no such key: pci"},
		{`image.source + "/" + image.tag`, ImageScope, false, "docker-hub/1.25.3", ""},
		{`size(image.layers) == 2`, ImageScope, false, true, ""},
		{`image.labels.exists(k, k == "team")`, ImageScope, false, true, ""},
		{`semver(image.tag) > semver("1.2.0")`, ImageScope, false, true, ""},
	} {
		t.Run(c.expr, func(t *testing.T) {
			want := cel.BoolType
			if _, ok := c.want.(string); ok {
				want = cel.StringType
			}
			native, interp := compileBoth(t, env, c.expr, c.scope, want)
			assert.Equal(t, c.native, native.native != nil, "covered by the native evaluator")
			act := NewActivation(img, testNow).WithTarget(target)
			agree(t, native, interp, act, c.expr)
			v, err := native.Eval(context.Background(), act)
			if c.err != "" {
				require.EqualError(t, err, c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, v.Value())
		})
	}
}

func TestNativeWithoutTarget(t *testing.T) {
	env, err := NewEnv()
	require.NoError(t, err)
	native, interp := compileBoth(t, env, `target.name == "x" || target.labels["a"] == "b"`, TargetScope, cel.BoolType)
	require.NotNil(t, native.native)
	agree(t, native, interp, NewActivation(testImage(), testNow), "no target bound")
}

// TestNativeAgreesWithCEL generates random expressions of the subset the
// native evaluator covers, mixed with some it does not, and checks that
// native and cel-go evaluation give the same value or the same error on
// random images.
func TestNativeAgreesWithCEL(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	env, err := NewEnv()
	require.NoError(t, err)
	images := make([]*Image, 40)
	for i := range images {
		images[i] = randomImage(r)
	}
	targets := []*Target{
		{Name: "eu-prod", Host: "reg.eu.example.com", Labels: map[string]string{"gdpr": "true", "env": "prod"}},
		{Name: "us-dev", Host: "reg.us.example.com"},
	}
	n, covered := 600, 0
	if testing.Short() {
		n = 150
	}
	for i := range n {
		g := exprGen{r: r, scope: ImageScope}
		if i%3 == 0 {
			g.scope = TargetScope
		}
		var expr string
		want := cel.BoolType
		if i%10 == 0 {
			expr, want = g.str(3), cel.StringType
		} else {
			expr = g.boolean(4)
		}
		native, interp := compileBoth(t, env, expr, g.scope, want)
		if native.native != nil {
			covered++
		} else {
			require.True(t, g.outside, "the native evaluator covers %s", expr)
		}
		for _, img := range images {
			act := NewActivation(img, testNow)
			if g.scope == TargetScope {
				act = act.WithTarget(targets[r.IntN(len(targets))])
			}
			agree(t, native, interp, act, fmt.Sprintf("seed %d: %s on %+v", seed, expr, img))
		}
	}
	t.Logf("%d of %d expressions evaluated natively", covered, n)
	require.Greater(t, covered, n/2, "most generated expressions are in the native subset")
}

func randomImage(r *rand.Rand) *Image {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	img := &Image{
		Registry:   pick("docker.io", "reg7.example.com", "quay.io", "ré.example.com"),
		Repository: pick("team7/app", "library/nginx", "team70/x/y", "a"),
		Tag:        pick("v1.2.7", "release-7.1", "latest", "", "1.25.3", "Ünï"),
		MediaType:  pick("", "application/vnd.oci.image.index.v1+json"),
		Size:       int64(r.IntN(3000)),
		Source:     pick("", "hub"),
	}
	img.Reference = img.Registry + "/" + img.Repository
	if img.Tag != "" {
		img.Reference += ":" + img.Tag
	}
	if r.IntN(2) == 0 {
		img.Digest = "sha256:" + strings.Repeat("ab", 32)
	}
	if r.IntN(3) > 0 {
		img.Labels = map[string]string{}
		for _, k := range []string{"team", "env", "scan"} {
			if r.IntN(2) == 0 {
				img.Labels[k] = pick("t7", "prod", "", "passed")
			}
		}
	}
	if r.IntN(2) == 0 {
		img.Annotations = map[string]string{"team": pick("t7", "x")}
	}
	if r.IntN(3) > 0 {
		img.Created = testNow.Add(-time.Duration(r.IntN(200*24)) * time.Hour)
	}
	if r.IntN(2) == 0 {
		img.Platforms = []string{"linux/amd64", pick("linux/arm64", "windows/amd64")}
	}
	return img
}

// exprGen writes random expressions; outside is set when one uses
// something the native evaluator leaves to cel-go.
type exprGen struct {
	r       *rand.Rand
	scope   Scope
	outside bool
}

func (g *exprGen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g *exprGen) strLit() string {
	return fmt.Sprintf("%q", g.pick("t7", "prod", "", "docker.io", "reg7.example.com", "team7/", "v1", "latest", "Ünï", "passed", "a"))
}

func (g *exprGen) str(depth int) string {
	n := 9
	if g.scope == TargetScope {
		n = 11
	}
	if depth <= 0 {
		n = 4
	}
	switch g.r.IntN(n) {
	case 0:
		return g.strLit()
	case 1:
		return "image." + g.pick("registry", "repository", "tag", "digest", "reference", "mediaType", "source")
	case 2:
		return fmt.Sprintf("image.%s[%s]", g.pick("labels", "annotations"), g.pick(`"team"`, `"env"`, `"scan"`))
	case 3:
		return "image.labels." + g.pick("team", "env")
	case 4:
		return fmt.Sprintf("(%s ? %s : %s)", g.boolean(depth-1), g.str(depth-1), g.str(depth-1))
	case 5:
		return fmt.Sprintf("image.labels[%s]", g.str(depth-1))
	case 6:
		g.outside = true
		return fmt.Sprintf("(%s + %s)", g.str(depth-1), g.str(depth-1))
	case 7:
		g.outside = true
		return fmt.Sprintf(`image.labels[?"team"].orValue(%s)`, g.strLit())
	case 8:
		return "image." + g.pick("registry", "tag")
	case 9:
		return "target." + g.pick("name", "host")
	default:
		return fmt.Sprintf("target.labels[%s]", g.pick(`"gdpr"`, `"env"`))
	}
}

func (g *exprGen) boolean(depth int) string {
	n := 16
	if depth <= 0 {
		n = 10
	}
	switch g.r.IntN(n) {
	case 0:
		return fmt.Sprintf("%s %s %s", g.str(depth-1), g.pick("==", "!=", "<", "<=", ">", ">="), g.str(depth-1))
	case 1:
		return fmt.Sprintf("%s.%s(%s)", g.str(depth-1), g.pick("startsWith", "endsWith", "contains"), g.str(depth-1))
	case 2:
		return fmt.Sprintf("%s.matches(%q)", g.str(depth-1), g.pick(`^v[0-9]+\.[0-9]+\.7$`, `^release-7\.`, `t7`, `^$`, `(?i)LATEST`))
	case 3:
		return fmt.Sprintf("%s.glob(%q)", g.str(depth-1), g.pick("team7/**", "*/nginx", "**", "v1.*", "{a,b}*"))
	case 4:
		return fmt.Sprintf("image.size %s %d", g.pick("==", "!=", "<", "<=", ">", ">="), g.r.IntN(3000))
	case 5:
		return fmt.Sprintf("image.age %s duration(%q)", g.pick("<", "<=", ">", ">=", "==", "!="), g.pick("0s", "720h", "2160h30m", "1h"))
	case 6:
		return fmt.Sprintf("image.created %s %s", g.pick("<", ">", "==", "!=", ">="),
			g.pick("now", `timestamp("2026-06-01T00:00:00Z")`, `timestamp("0001-01-01T00:00:00Z")`))
	case 7:
		return fmt.Sprintf("%s in %s", g.str(depth-1), g.pick(`["t7", "prod"]`, `[]`, "image.platforms", "image.labels", "image.annotations"))
	case 8:
		return fmt.Sprintf("has(image.%s.%s)", g.pick("labels", "annotations"), g.pick("team", "env"))
	case 9:
		return g.pick("true", "false", `image.size in [0, 1, 2999]`, `"linux/amd64" in image.platforms`)
	case 10, 11:
		return fmt.Sprintf("(%s %s %s)", g.boolean(depth-1), g.pick("&&", "||"), g.boolean(depth-1))
	case 12:
		return fmt.Sprintf("(%s && %s && %s)", g.boolean(depth-1), g.boolean(depth-1), g.boolean(depth-1))
	case 13:
		return "!" + "(" + g.boolean(depth-1) + ")"
	case 14:
		return fmt.Sprintf("(%s ? %s : %s)", g.boolean(depth-1), g.boolean(depth-1), g.boolean(depth-1))
	default:
		g.outside = true
		return g.pick("size(image.tag) > 3", "image.platforms.exists(p, p.startsWith(\"linux\"))", `image.labels.?team.hasValue()`)
	}
}
