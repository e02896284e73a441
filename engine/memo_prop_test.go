package engine

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMemoNeverChangesADecision evaluates random sets with and without a
// memo on images that repeat, differ only in fields no policy reads, and
// at times on both sides of the policies' time literals.
func TestMemoNeverChangesADecision(t *testing.T) {
	sets := 100
	if testing.Short() {
		sets = 40
	}
	ctx := context.Background()
	nows := []time.Time{evalNow, evalNow.Add(30 * time.Minute), evalNow.Add(-2 * time.Hour), evalNow.Add(time.Nanosecond),
		time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 13, 59, 0, 0, time.UTC)}
	hits := 0
	for seed := range sets {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		var docs []string
		for i := range 1 + r.IntN(10) {
			docs = append(docs, propPolicy(r, i))
		}
		src := inventoryYAML + strings.Join(docs, "\n")
		b, err := Parse("prop.yaml", []byte(src))
		require.NoError(t, err, src)
		memoized, err := Compile(b, WithMemo(8))
		require.NoError(t, err, src)
		plain, err := Compile(b, WithoutIndex())
		require.NoError(t, err)
		pool := make([]*conditions.Image, 5)
		for i := range pool {
			pool[i] = propImage(r)
		}
		type eval struct {
			img    *conditions.Image
			now    time.Time
			target string
		}
		var evals []eval
		for range 40 {
			img := pool[r.IntN(len(pool))]
			if r.IntN(3) == 0 {
				// The same image but for fields a policy may not read.
				c := *img
				c.Layers = []conditions.Layer{{Digest: "sha256:1", Size: int64(r.IntN(3))}}
				c.Platforms = []string{"linux/amd64"}
				if r.IntN(2) == 0 {
					c.Annotations = map[string]string{"other": "x"}
				}
				if r.IntN(3) == 0 {
					// Same reference, other labels or size: a policy may
					// read those.
					c.Labels = map[string]string{"team": propTeams[r.IntN(len(propTeams))]}
					c.Size = int64(r.IntN(200))
				}
				img = &c
			}
			target := ""
			if r.IntN(5) == 0 {
				target = "dev"
			}
			evals = append(evals, eval{img, nows[r.IntN(len(nows))], target})
		}
		var wg sync.WaitGroup
		got := make([][2]string, len(evals))
		for i, e := range evals {
			wg.Go(func() {
				for j, set := range []*PolicySet{memoized, plain} {
					opts := []EvalOption{At(e.now)}
					if e.target != "" {
						opts = append(opts, ForTarget(e.target))
					}
					d, err := set.Evaluate(ctx, e.img, opts...)
					require.NoError(t, err)
					got[i][j] = decisionJSON(t, d)
				}
			})
		}
		wg.Wait()
		for i, g := range got {
			if g[0] != g[1] {
				img, _ := json.Marshal(evals[i].img)
				t.Fatalf("seed %d: memoized and plain decisions differ\nimage: %s at %s\nmemo:  %s\nplain: %s\npolicies:\n%s",
					seed, img, evals[i].now, g[0], g[1], src)
			}
		}
		hits += len(evals) - memoized.memo.cache.Len()
	}
	require.Positive(t, hits, "the memo never answered")
}

func TestMemo(t *testing.T) {
	ctx := context.Background()
	docs := []string{
		policy("by-team", "  match: 'image.labels[\"team\"] == \"web\" && image.age > duration(\"24h\")'\n"+replicateAll),
	}
	b, err := Parse("test.yaml", []byte(inventoryYAML+strings.Join(docs, "\n")))
	require.NoError(t, err)
	set, err := Compile(b, WithMemo(16))
	require.NoError(t, err)

	img := webImage() // team=web, created 48h before evalNow
	first, err := set.Evaluate(ctx, img, At(evalNow))
	require.NoError(t, err)
	again, err := set.Evaluate(ctx, img, At(evalNow.Add(time.Hour)))
	require.NoError(t, err)
	assert.Same(t, first, again, "an hour later the image is still older than 24h")

	other := *img
	other.Annotations = map[string]string{"unread": "x"}
	other.Labels = map[string]string{"team": "web", "unread": "y"}
	d, err := set.Evaluate(ctx, &other, At(evalNow))
	require.NoError(t, err)
	assert.Same(t, first, d, "fields no policy reads are not in the key")

	younger, err := set.Evaluate(ctx, img, At(evalNow.Add(-30*time.Hour)))
	require.NoError(t, err)
	assert.NotSame(t, first, younger)
	assert.Empty(t, younger.Matched, "18h old: too young")

	traced, err := set.Evaluate(ctx, img, At(evalNow), WithTrace())
	require.NoError(t, err)
	assert.NotSame(t, first, traced, "a trace bypasses the memo")
	assert.NotEmpty(t, traced.Trace)

	_, err = Compile(b, WithMemo(-1))
	assert.Error(t, err)
	plain, err := Compile(b)
	require.NoError(t, err)
	assert.Nil(t, plain.memo, "no memo by default")
}

func TestPolicyReads(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		fields fieldSet
		keys   []string
		ages   []time.Duration
		clock  bool
	}{
		{"label keys", `  match: 'image.labels["team"] == "x" && image.labels.?env.orValue("") == "" && "a" in image.annotations'`,
			0, []string{"annotations[a]", "labels[env]", "labels[team]"}, nil, false},
		{"whole map", `  match: 'image.labels.exists(k, k == "x")'`, readLabels, nil, nil, false},
		{"age literal", `  match: 'image.age > duration("24h") && duration("1h") >= image.age'`, readAge, nil, []time.Duration{time.Hour, 24 * time.Hour}, false},
		{"age otherwise", `  match: 'image.age + duration("1h") > duration("24h")'`, readAge, nil, nil, true},
		{"now otherwise", `  match: 'now.getHours() > 3'`, 0, nil, nil, true},
		{"size and tag", "  match: 'image.size > 3'\n  actions:\n    - type: replicate\n      tag: 'image.tag + \"-\" + image.digest'\n", readSize | readOther, nil, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body + "\n"
			if !strings.Contains(body, "actions:") {
				body += replicateAll
			}
			set := compileSet(t, Priority, policy("p", body))
			r := set.policies[0].reads
			var keys []string
			for _, k := range r.keys {
				keys = append(keys, k.field+"["+k.key+"]")
			}
			assert.Equal(t, tc.fields, r.fields)
			assert.Equal(t, tc.keys, keys)
			assert.Equal(t, tc.ages, r.ages)
			assert.Equal(t, tc.clock, r.clock)
		})
	}
}
