package conditions

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func testImage() *Image {
	return &Image{
		Registry:    "docker.io",
		Repository:  "library/nginx",
		Tag:         "1.25.3",
		Digest:      "sha256:" + "ab" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd",
		Reference:   "docker.io/library/nginx:1.25.3",
		MediaType:   "application/vnd.oci.image.index.v1+json",
		Labels:      map[string]string{"team": "web", "scan.date": "2026-11-20"},
		Annotations: map[string]string{"org.opencontainers.image.source": "https://example.com/nginx"},
		Created:     testNow.Add(-100 * 24 * time.Hour),
		Size:        12345,
		Layers:      []Layer{{Digest: "sha256:aa", Size: 100}, {Digest: "sha256:bb", Size: 200}},
		Platforms:   []string{"linux/amd64", "linux/arm64/v8"},
		Referrers:   []Referrer{{ArtifactType: "application/vnd.dev.cosign.artifact.sig.v1+json", Digest: "sha256:cc"}},
		Source:      "docker-hub",
	}
}

func TestEvalImageFields(t *testing.T) {
	env, err := NewEnv()
	require.NoError(t, err)
	target := &Target{Name: "eu-prod", Host: "registry.eu.example.com", Labels: map[string]string{"gdpr": "true"}}
	tests := []struct {
		name  string
		expr  string
		scope Scope
		want  any
	}{
		{"registry", `image.registry == "docker.io"`, ImageScope, true},
		{"repository prefix", `image.repository.startsWith("library/")`, ImageScope, true},
		{"label index", `image.labels["team"] == "web"`, ImageScope, true},
		{"optional key with dot", `image.labels[?"scan.date"].orValue("") == "2026-11-20"`, ImageScope, true},
		{"optional field", `image.labels.?owner.orValue("nobody")`, ImageScope, "nobody"},
		{"has label", `has(image.labels.team)`, ImageScope, true},
		{"annotations", `image.annotations["org.opencontainers.image.source"].endsWith("/nginx")`, ImageScope, true},
		{"created", `image.created < now`, ImageScope, true},
		{"age from clock", `image.age > duration("2160h")`, ImageScope, true},
		{"size", `image.size`, ImageScope, int64(12345)},
		{"layers", `size(image.layers) == 2 && image.layers[1].size == 200`, ImageScope, true},
		{"platforms", `"linux/arm64/v8" in image.platforms`, ImageScope, true},
		{"referrers", `image.referrers.exists(r, r.artifactType.contains("cosign"))`, ImageScope, true},
		{"source", `image.source`, ImageScope, "docker-hub"},
		{"media type", `image.mediaType.endsWith("index.v1+json")`, ImageScope, true},
		{"digest", `image.digest.startsWith("sha256:")`, ImageScope, true},
		{"reference", `image.reference`, ImageScope, "docker.io/library/nginx:1.25.3"},
		{"glob", `image.repository.glob("library/*")`, ImageScope, true},
		{"glob doublestar", `"team7/a/b/c".glob("team7/**")`, ImageScope, true},
		{"glob no match", `image.repository.glob("team*/**")`, ImageScope, false},
		{"semver compare", `semver(image.tag) >= semver("1.25.0")`, ImageScope, true},
		{"semver less", `semver("v1.2.3") < semver("1.10.0")`, ImageScope, true},
		{"semver satisfies", `semver(image.tag).satisfies(">= 1.25, < 2")`, ImageScope, true},
		{"semver fields", `semver("2.3.4-rc.1").major() * 100 + semver("2.3.4").minor() * 10 + semver("2.3.4").patch()`, ImageScope, int64(234)},
		{"prerelease", `semver("2.3.4-rc.1").prerelease()`, ImageScope, "rc.1"},
		{"isSemver", `isSemver("latest") || !isSemver(image.tag)`, ImageScope, false},
		{"compareTo", `semver("1.0.0").compareTo(semver("1.0.1"))`, ImageScope, int64(-1)},
		{"semver equal", `semver("1.0") == semver("1.0.0")`, ImageScope, true},
		{"ext strings", `image.repository.split("/")[1].upperAscii()`, ImageScope, "NGINX"},
		{"ext lists", `image.platforms.slice(0, 1)`, ImageScope, []any{"linux/amd64"}},
		{"ext sets", `sets.contains(image.platforms, ["linux/amd64"])`, ImageScope, true},
		{"target", `target.labels.gdpr == "true" && target.name == "eu-prod"`, TargetScope, true},
		{"target host", `target.host + "/mirror/" + image.repository`, TargetScope, "registry.eu.example.com/mirror/library/nginx"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prg, err := env.Compile(tc.expr, tc.scope, nil)
			require.NoError(t, err)
			act := NewActivation(testImage(), testNow).WithTarget(target)
			got, err := prg.Eval(context.Background(), act)
			require.NoError(t, err)
			assert.Equal(t, tc.want, ToJSON(got))
		})
	}
}

func TestCompileErrors(t *testing.T) {
	env, err := NewEnv()
	require.NoError(t, err)
	env, err = env.WithVariables(Variable{Name: "team", Type: cel.StringType})
	require.NoError(t, err)
	tests := []struct {
		name       string
		expr       string
		scope      Scope
		want       *cel.Type
		line, col  int
		msgContain string
	}{
		{"syntax", `image.tag ==`, ImageScope, cel.BoolType, 1, 13, "Syntax error"},
		{"unknown field", `image.tags == "x"`, ImageScope, cel.BoolType, 1, 6, "undefined field 'tags'"},
		{"wrong result type", `image.tag`, ImageScope, cel.BoolType, 1, 1, "must be of type bool, but it is string"},
		{"wrong result type string", `image.size > 3`, TargetScope, cel.StringType, 1, 1, "must be of type string, but it is bool"},
		{"type mismatch", `image.size == "big"`, ImageScope, cel.BoolType, 1, 12, "no matching overload"},
		{"undefined variable", `variables.owner == "x"`, ImageScope, cel.BoolType, 1, 1, `undefined variable "owner" (declared before this point: team)`},
		{"target in match", `target.name == "x"`, ImageScope, cel.BoolType, 1, 1, "target is not available here"},
		{"second line", "image.tag == \"a\" &&\n  image.nope", ImageScope, cel.BoolType, 2, 8, "undefined field 'nope'"},
		{"bad regex", `image.tag.matches("^v[0-9")`, ImageScope, cel.BoolType, 1, 19, "invalid matches argument"},
		{"bad glob", `image.repository.glob("team[")`, ImageScope, cel.BoolType, 1, 23, `invalid glob pattern "team["`},
		{"bad semver literal", `semver(image.tag) > semver("one")`, ImageScope, cel.BoolType, 1, 28, `"one" is not a semantic version`},
		{"bad constraint", `semver(image.tag).satisfies(">=> 1")`, ImageScope, cel.BoolType, 1, 29, "invalid semver constraint"},
		{"bad duration", `image.age > duration("90 days")`, ImageScope, cel.BoolType, 1, 22, "invalid duration"},
		{"static cost", `image.labels.all(k, image.annotations.all(a, image.labels[k].matches(image.annotations[a])))`,
			ImageScope, cel.BoolType, 1, 1, "worst-case cost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.Compile(tc.expr, tc.scope, tc.want)
			var ce *CompileError
			require.ErrorAs(t, err, &ce)
			require.NotEmpty(t, ce.Issues)
			is := ce.Issues[0]
			assert.Contains(t, is.Message, tc.msgContain)
			assert.Equal(t, tc.line, is.Line, "line")
			assert.Equal(t, tc.col, is.Column, "column")
		})
	}
}

func TestCompileReportsEveryIssue(t *testing.T) {
	env, err := NewEnv()
	require.NoError(t, err)
	_, err = env.Compile(`image.a == 1 && image.b == 2`, ImageScope, cel.BoolType)
	var ce *CompileError
	require.ErrorAs(t, err, &ce)
	assert.Len(t, ce.Issues, 2)
}

type mapVars map[string]ref.Val

func (m mapVars) Variable(name string) (ref.Val, bool) { v, ok := m[name]; return v, ok }

func TestVariables(t *testing.T) {
	env, err := NewEnv()
	require.NoError(t, err)
	env, err = env.WithVariables(Variable{Name: "team", Type: cel.StringType})
	require.NoError(t, err)
	prg, err := env.Compile(`variables.team == "web"`, ImageScope, cel.BoolType)
	require.NoError(t, err)
	act := NewActivation(testImage(), testNow).WithVariables(mapVars{"team": types.String("web")})
	ok, err := prg.EvalBool(context.Background(), act)
	require.NoError(t, err)
	assert.True(t, ok)

	failing := NewActivation(testImage(), testNow).WithVariables(mapVars{"team": types.NewErr("boom")})
	_, err = prg.EvalBool(context.Background(), failing)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "boom")

	_, err = env.WithVariables(Variable{Name: "team", Type: cel.StringType})
	assert.ErrorContains(t, err, "declared twice")
	_, err = env.WithVariables(Variable{Name: "not-an-ident", Type: cel.StringType})
	assert.ErrorContains(t, err, "not an identifier")
}

func TestRuntimeErrors(t *testing.T) {
	env, err := NewEnv(WithRuntimeCostLimit(50))
	require.NoError(t, err)
	ctx := context.Background()
	act := NewActivation(testImage(), testNow)

	missing, err := env.Compile(`image.labels["owner"] == "x"`, ImageScope, cel.BoolType)
	require.NoError(t, err)
	_, err = missing.EvalBool(ctx, act)
	assert.ErrorContains(t, err, "no such key: owner")

	badSemver, err := env.Compile(`semver(image.labels.team) > semver("1.0.0")`, ImageScope, cel.BoolType)
	require.NoError(t, err)
	_, err = badSemver.EvalBool(ctx, act)
	assert.ErrorContains(t, err, `"web" is not a semantic version`)

	big := testImage()
	big.Platforms = make([]string, 1000)
	loop, err := env.Compile(`image.platforms.all(p, p.size() < 100)`, ImageScope, cel.BoolType)
	require.NoError(t, err)
	_, err = loop.EvalBool(ctx, NewActivation(big, testNow))
	assert.ErrorContains(t, err, "cost limit")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	unlimited, err := NewEnv()
	require.NoError(t, err)
	loop2, err := unlimited.Compile(`image.platforms.all(p, p.size() < 100)`, ImageScope, cel.BoolType)
	require.NoError(t, err)
	_, err = loop2.EvalBool(cancelled, NewActivation(big, testNow))
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled) || err.Error() != "", err)
	assert.Contains(t, err.Error(), "cancel")
}

func TestTrace(t *testing.T) {
	env, err := NewEnv()
	require.NoError(t, err)
	prg, err := env.Compile(`image.labels["team"] == "platform" && image.size < 100`, ImageScope, cel.BoolType)
	require.NoError(t, err)
	val, subs, err := prg.Trace(context.Background(), NewActivation(testImage(), testNow))
	require.NoError(t, err)
	assert.Equal(t, types.False, val)
	values := map[string]any{}
	for _, s := range subs {
		values[s.Expression] = s.Value
	}
	assert.Equal(t, "web", values[`image.labels["team"]`])
	assert.Equal(t, false, values[`image.labels["team"] == "platform"`])
	assert.Equal(t, int64(12345), values[`image.size`])
	assert.Equal(t, false, values[`image.labels["team"] == "platform" && image.size < 100`])
	assert.Equal(t, subs[0].Expression, `image.labels["team"] == "platform" && image.size < 100`)
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		in      Image
		want    Image
		wantErr string
	}{
		{in: Image{Reference: "nginx"}, want: Image{Registry: "docker.io", Repository: "library/nginx", Tag: "latest", Reference: "docker.io/library/nginx:latest"}},
		{in: Image{Reference: "index.docker.io/foo/bar:1"}, want: Image{Registry: "docker.io", Repository: "foo/bar", Tag: "1", Reference: "docker.io/foo/bar:1"}},
		{in: Image{Reference: "localhost:5000/a/b@sha256:" + sha}, want: Image{Registry: "localhost:5000", Repository: "a/b", Digest: "sha256:" + sha, Reference: "localhost:5000/a/b@sha256:" + sha}},
		{in: Image{Registry: "reg7.example.com", Repository: "team7/app", Tag: "v1.2.7"}, want: Image{Registry: "reg7.example.com", Repository: "team7/app", Tag: "v1.2.7", Reference: "reg7.example.com/team7/app:v1.2.7"}},
		{in: Image{Reference: "reg.example.com/a:1", Tag: "2"}, wantErr: "disagrees"},
		{in: Image{Reference: "UPPER/Case"}, wantErr: "parse image reference"},
		{in: Image{}, wantErr: "required"},
	}
	for _, tc := range tests {
		t.Run(tc.in.Reference, func(t *testing.T) {
			img := tc.in
			err := img.Normalize()
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, img)
		})
	}
}

const sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestReleaseAST(t *testing.T) {
	env, err := NewEnv()
	require.NoError(t, err)
	prg, err := env.Compile(`image.labels["team"] == "web" && image.size > 10`, ImageScope, cel.BoolType)
	require.NoError(t, err)
	before := astText(t, prg)
	prg.ReleaseAST()
	assert.Equal(t, before, astText(t, prg), "the rebuilt AST is the same expression")
	assert.Equal(t, cel.BoolType, prg.OutputType())
	ok, err := prg.EvalBool(context.Background(), NewActivation(testImage(), testNow))
	require.NoError(t, err)
	assert.True(t, ok)
	_, subs, err := prg.Trace(context.Background(), NewActivation(testImage(), testNow))
	require.NoError(t, err)
	assert.NotEmpty(t, subs, "explain works on a released program")
	tracked, err := prg.Tracked()
	require.NoError(t, err)
	ok, err = tracked.EvalBool(context.Background(), NewActivation(testImage(), testNow))
	require.NoError(t, err)
	assert.True(t, ok)
}

func astText(t *testing.T, p *Program) string {
	t.Helper()
	s, err := cel.AstToString(p.AST())
	require.NoError(t, err)
	return s
}

func TestWithinCostBoundsFor(t *testing.T) {
	huge := strings.Repeat("x", maxStringSize+1)
	img := testImage()
	img.Labels = map[string]string{"team": "web", "notes": huge}
	assert.False(t, img.WithinCostBounds())
	assert.False(t, img.WithinCostBoundsFor(AllImageParts))
	assert.True(t, img.WithinCostBoundsFor(&ImageParts{}), "labels are not read")
	assert.True(t, img.WithinCostBoundsFor(&ImageParts{LabelKeys: []string{"team", "absent"}}), "only small entries are read")
	assert.False(t, img.WithinCostBoundsFor(&ImageParts{LabelKeys: []string{"notes"}}), "a large entry is read")
	assert.False(t, img.WithinCostBoundsFor(&ImageParts{Labels: true}), "the map is read as a whole")
	assert.True(t, img.WithinCostBoundsFor(&ImageParts{Annotations: true, AnnotationKeys: []string{"notes"}}))

	img = testImage()
	img.Platforms = make([]string, maxPlatforms+1)
	assert.True(t, img.WithinCostBoundsFor(&ImageParts{Labels: true}))
	assert.False(t, img.WithinCostBoundsFor(&ImageParts{Platforms: true}))
	img = testImage()
	img.Tag = strings.Repeat("t", maxTagSize+1)
	assert.False(t, img.WithinCostBoundsFor(&ImageParts{}), "scalar fields always count")
}
