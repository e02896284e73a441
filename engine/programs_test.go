package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTemplatePoliciesShareEnvironments compiles policies generated from
// one template with a variable: they must share one environment with the
// variable declared, so that their match expressions share shapes, and
// decide as before.
func TestTemplatePoliciesShareEnvironments(t *testing.T) {
	var docs []string
	for i := range 20 {
		docs = append(docs, fmt.Sprintf(`apiVersion: celpolicy.dev/v1
kind: Policy
metadata: {name: p%02d}
spec:
  variables:
    - name: team
      expression: image.labels[?"team"].orValue("")
  match: variables.team == "t%d" && image.size < %d
  actions:
    - type: notify
      webhook: https://hooks.example.com/images`, i, i, 1000+i))
	}
	b, err := Parse("template.yaml", []byte(strings.Join(docs, "\n---\n")))
	require.NoError(t, err)
	env, err := conditions.NewEnv()
	require.NoError(t, err)
	s := &PolicySet{byName: map[string]int{}, env: env}
	shared := &programCache{shapes: conditions.NewShapes()}
	for _, p := range b.Policies {
		var errs ErrorList
		require.NotNil(t, s.compilePolicy(env, p, &errs, shared), "%v", errs)
	}
	// Programs by environment: the variable's in env, once; the 20
	// matches in one other.
	programs := map[*conditions.Env]int{}
	shared.m.Range(func(k, _ any) bool {
		programs[k.(programKey).env]++
		return true
	})
	assert.Len(t, programs, 2)
	assert.Equal(t, 1, programs[env])

	set, err := Compile(b)
	require.NoError(t, err)
	img := &conditions.Image{Reference: "docker.io/library/nginx:1", Labels: map[string]string{"team": "t7"}, Size: 10}
	require.NoError(t, img.Normalize())
	d, err := set.Evaluate(context.Background(), img)
	require.NoError(t, err)
	require.Len(t, d.Matched, 1)
	assert.Equal(t, "p07", d.Matched[0].Policy)
}
