package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/stretchr/testify/require"
)

// The property: for random policy sets and images, the index never
// changes a decision. Values are drawn from small sets so that policies
// match, fail and conflict often.

var (
	propRegistries   = []string{"r0.io", "r1.io", "docker.io"}
	propRepositories = []string{"team1/app", "team12/x", "team2/y", "team1", "other/team1"}
	propTags         = []string{"v1.2", "V1.3", "release-1.x", "v10", "latest"}
	propTeams        = []string{"t1", "t2", ""}
)

// propAtom returns a random bool expression over the image: indexable
// shapes, shapes the index must leave alone, and shapes that fail.
func propAtom(r *rand.Rand) string {
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	q := strconv.Quote
	switch r.IntN(24) {
	case 0:
		return "image.registry == " + q(pick(propRegistries))
	case 1:
		return q(pick(propRegistries)) + " == image.registry"
	case 2:
		return fmt.Sprintf("image.registry in [%s, %s]", q(pick(propRegistries)), q(pick(propRegistries)))
	case 3:
		return "image.repository.startsWith(" + q(pick([]string{"team1", "team1/", "team", "other/", "t"})) + ")"
	case 4:
		return "image.repository.glob(" + q(pick([]string{"team1/**", "team1/*", "team1", "team{1,2}/*", "*/team1", "team1?/*", "**"})) + ")"
	case 5:
		return "image.tag.matches(" + q(pick([]string{"^v1\\.", "^v1", "^release-1\\.", "v1", "^(?i)v1", "^v1|^release", "^v[0-9]+$", "^$"})) + ")"
	case 6:
		return "matches(image.tag, " + q(pick([]string{"^v1\\.", "^latest$"})) + ")"
	case 7:
		return "image.tag == " + q(pick(propTags))
	case 8:
		return "image.labels[\"team\"] == " + q(pick(propTeams))
	case 9:
		return "image.labels.team == " + q(pick(propTeams))
	case 10:
		return "image.labels[?\"team\"].orValue(" + q(pick(propTeams)) + ") == " + q(pick(propTeams))
	case 11:
		return "image.labels.?team.orValue(\"\").startsWith(" + q(pick([]string{"t", "t1", ""})) + ")"
	case 12:
		return "image.labels[\"team\"] in [" + q(pick(propTeams)) + ", " + q(pick(propTeams)) + "]"
	case 13:
		return fmt.Sprintf("image.size < %d", r.IntN(200))
	case 14:
		return fmt.Sprintf("image.age > duration(\"%dh\")", r.IntN(48))
	case 15:
		return "int(image.labels[?\"n\"].orValue(\"0\")) > 3" // fails on n=x
	case 16:
		return "image.annotations[\"a\"] == \"yes\""
	case 17:
		return "has(image.labels.team)"
	case 18:
		return "!(" + propAtom(r) + ")"
	case 19:
		return "(" + propAtom(r) + " ? " + propAtom(r) + " : " + propAtom(r) + ")"
	case 20:
		return "image.repository.startsWith(\"team1/\") && image.labels[\"team\"] == \"t1\""
	case 21:
		return fmt.Sprintf("now > timestamp(\"2026-11-27T%02d:00:00Z\")", 10+r.IntN(4))
	case 22:
		return "now.getHours() >= 12"
	default:
		return "true"
	}
}

// propExpr combines atoms with && and ||.
func propExpr(r *rand.Rand, depth int) string {
	if depth == 0 || r.IntN(3) == 0 {
		return propAtom(r)
	}
	op := " && "
	if r.IntN(3) == 0 {
		op = " || "
	}
	return "(" + propExpr(r, depth-1) + op + propExpr(r, depth-1) + ")"
}

func propPolicy(r *rand.Rand, i int) string {
	var b strings.Builder
	q := strconv.Quote
	fmt.Fprintf(&b, "  priority: %d\n", r.IntN(3))
	if r.IntN(4) == 0 {
		b.WriteString("  mode: audit\n")
	}
	if r.IntN(6) == 0 {
		b.WriteString("  fallback: true\n")
	}
	if r.IntN(2) == 0 {
		b.WriteString("  failurePolicy: ignore\n")
	}
	useVar := r.IntN(4) == 0
	if useVar {
		fmt.Fprintf(&b, "  variables:\n    - name: v\n      expression: %s\n", q(propExpr(r, 2)))
	}
	ref := func(e string) string {
		if useVar && r.IntN(2) == 0 {
			return "variables.v && " + e
		}
		return e
	}
	if r.IntN(3) == 0 {
		b.WriteString("  conditions:\n")
		for _, kind := range []string{"all", "any", "none"} {
			n := r.IntN(3)
			if kind == "all" && n == 0 {
				n = 1
			}
			if kind != "all" && r.IntN(2) == 0 {
				continue
			}
			fmt.Fprintf(&b, "    %s:\n", kind)
			for range n {
				fmt.Fprintf(&b, "      - expression: %s\n", q(ref(propExpr(r, 1))))
			}
			if n == 0 {
				fmt.Fprintf(&b, "      - expression: %s\n", q(propAtom(r)))
			}
		}
	} else {
		fmt.Fprintf(&b, "  match: %s\n", q(ref(propExpr(r, 3))))
	}
	b.WriteString("  actions:\n")
	for range 1 + r.IntN(2) {
		switch r.IntN(4) {
		case 0:
			b.WriteString("    - type: block\n")
		case 1:
			b.WriteString("    - type: block\n      where: target.labels.env == \"production\"\n      reason: '\"no \" + image.tag'\n")
		case 2:
			b.WriteString("    - type: notify\n      webhook: https://hooks.example.com/x\n")
		default:
			b.WriteString("    - type: replicate\n      to: [eu-prod]\n      repository: '\"m/\" + image.repository'\n")
		}
	}
	return policy(fmt.Sprintf("p%02d", i), b.String())
}

func propImage(r *rand.Rand) *conditions.Image {
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	img := &conditions.Image{Registry: pick(propRegistries), Repository: pick(propRepositories), Tag: pick(propTags),
		Size: int64(r.IntN(200)), Labels: map[string]string{}}
	if r.IntN(4) > 0 {
		img.Created = evalNow.Add(-time.Duration(r.IntN(48*60)) * time.Minute)
	}
	if r.IntN(4) > 0 {
		img.Labels["team"] = pick(propTeams)
	}
	switch r.IntN(3) {
	case 0:
		img.Labels["n"] = "5"
	case 1:
		img.Labels["n"] = "x"
	}
	if r.IntN(2) == 0 {
		img.Annotations = map[string]string{"a": pick([]string{"yes", "no"})}
	}
	// Not normalized: Docker Hub would add library/ to the repository.
	img.Reference = img.Registry + "/" + img.Repository + ":" + img.Tag
	return img
}

func decisionJSON(t *testing.T, d *Decision) string {
	t.Helper()
	out, err := json.Marshal(d)
	require.NoError(t, err)
	return string(out)
}

// TestIndexNeverChangesADecision compares indexed and plain evaluation of
// random policy sets on random images, for every combining algorithm,
// from several goroutines at once (run it with -race).
func TestIndexNeverChangesADecision(t *testing.T) {
	sets, images := 150, 25
	if testing.Short() {
		sets = 60
	}
	ctx := context.Background()
	combinings := []Combining{Priority, DenyOverrides, FirstMatch}
	skipped := 0
	for seed := range sets {
		r := rand.New(rand.NewPCG(uint64(seed), 4))
		var docs []string
		for i := range minIndexed + r.IntN(12) {
			docs = append(docs, propPolicy(r, i))
		}
		src := inventoryYAML + strings.Join(docs, "\n")
		b, err := Parse("prop.yaml", []byte(src))
		require.NoError(t, err, src)
		c := combinings[seed%len(combinings)]
		indexed, err := Compile(b, WithCombining(c))
		require.NoError(t, err, src)
		plain, err := Compile(b, WithCombining(c), WithoutIndex())
		require.NoError(t, err)
		imgs := make([]*conditions.Image, images)
		for i := range imgs {
			imgs[i] = propImage(r)
		}
		var wg sync.WaitGroup
		results := make([][2]string, len(imgs))
		for i, img := range imgs {
			wg.Go(func() {
				var got [2]string
				for j, set := range []*PolicySet{indexed, plain} {
					d, err := set.Evaluate(ctx, img, At(evalNow))
					if err != nil {
						got[j] = "error: " + err.Error()
						continue
					}
					got[j] = decisionJSON(t, d)
				}
				results[i] = got
			})
		}
		wg.Wait()
		for i, got := range results {
			if got[0] != got[1] {
				img, _ := json.Marshal(imgs[i])
				t.Fatalf("seed %d, %s: indexed and plain decisions differ\nimage: %s\nindexed: %s\nplain:   %s\npolicies:\n%s",
					seed, c, img, got[0], got[1], src)
			}
		}
		if indexed.index == nil || len(indexed.index.always) == len(indexed.policies) {
			skipped++
		}
	}
	// The property is only worth something if the index leaves policies
	// out: most sets must have indexed policies.
	require.Less(t, skipped, sets/2, "too few random sets had an indexed policy")
}
