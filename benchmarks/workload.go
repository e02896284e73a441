package benchmarks

import (
	"fmt"
	"strings"
	"time"

	"github.com/celpolicy/celpolicy/conditions"
)

// Now is the clock of every workload: decisions are reproducible and the
// age bounds of the mixed workload are stable.
var Now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// Sizes are the standard workload's policy counts (DESIGN.md).
var Sizes = []int{1, 100, 1000, 10000}

// A Workload is N policies written for every engine measured, and the
// image they decide: the same rules in CEL (celpolicy and the plain
// cel-go loop), Rego (OPA) and expr-lang.
type Workload struct {
	Name string
	N    int
	// Names, CEL and Expr hold the name and condition of policy i; Rego
	// the module with one rule body per policy (two for a disjunction).
	Names, CEL, Expr []string
	Rego             string
	// YAML is the celpolicy policy file, rendered once as Rego is: the
	// compile benchmarks measure compiling source text, not writing it.
	YAML  []byte
	Image *conditions.Image
	// Want are the names of the policies that match Image.
	Want []string
}

// PolicyName is the name of policy i in every engine.
func PolicyName(i int) string { return fmt.Sprintf("p%05d", i) }

// StandardExpr is policy i of DESIGN.md's standard workload: exactly one
// policy (i = 7) matches StandardImage.
func StandardExpr(i int) string {
	return fmt.Sprintf(`image.registry == "reg%d.example.com" && image.repository.startsWith("team%d/") `+
		`&& image.tag.matches("^v[0-9]+\\.[0-9]+\\.%d$") && image.labels["team"] == "t%d" && image.size < %d`,
		i%50, i, i, i, 1000+i)
}

// StandardImage is the image of the standard workload.
func StandardImage() *conditions.Image {
	img := &conditions.Image{
		Reference: "reg7.example.com/team7/app:v1.2.7",
		Labels:    map[string]string{"team": "t7"},
		Size:      10,
	}
	if err := img.Normalize(); err != nil {
		panic(err)
	}
	return img
}

// StandardPolicies renders n standard policies, each replicating to one
// registry, as one policy file.
func StandardPolicies(n int) []byte { return policyFile(n, PolicyName, StandardExpr) }

// Standard is DESIGN.md's standard workload of n policies.
func Standard(n int) *Workload {
	w := &Workload{Name: "standard", N: n, Image: StandardImage()}
	var rego strings.Builder
	rego.WriteString(regoHeader)
	for i := range n {
		w.Names = append(w.Names, PolicyName(i))
		w.CEL = append(w.CEL, StandardExpr(i))
		w.Expr = append(w.Expr, fmt.Sprintf(`Registry == "reg%d.example.com" && Repository startsWith "team%d/" `+
			`&& Tag matches "^v[0-9]+\\.[0-9]+\\.%d$" && Labels["team"] == "t%d" && Size < %d`,
			i%50, i, i, i, 1000+i))
		fmt.Fprintf(&rego, "\nmatch contains %q if {\n\tinput.registry == \"reg%d.example.com\"\n\tstartswith(input.repository, \"team%d/\")\n"+
			"\tregex.match(`^v[0-9]+\\.[0-9]+\\.%d$`, input.tag)\n\tinput.labels.team == \"t%d\"\n\tinput.size < %d\n}\n",
			PolicyName(i), i%50, i, i, i, 1000+i)
	}
	w.Rego = rego.String()
	w.YAML = w.Policies()
	if n > 7 {
		w.Want = []string{PolicyName(7)}
	}
	return w
}

const regoHeader = "package celpolicy\n"

// Mixed is the mixed workload of n policies. Policy i belongs to team
// K = i/5 and matches, by i%5:
//
//	0: only a label:       image.labels["team"] == "tK"
//	1: only a repository:  image.repository.glob("teamK/**")
//	2: only a tag regex:   image.tag.matches("^release-K\\.")
//	3: registry equality plus a bound: size (K even) or age (K odd)
//	4: two of these with ||: label or tag (K even), glob or 3 (K odd)
//
// MixedImage belongs to team 7: policies 35 to 39 match it, and the 80
// other policies that name its registry (K%50 == 7, kinds 3 and 4) are
// real candidates that only their age bound rejects.
func Mixed(n int) *Workload {
	w := &Workload{Name: "mixed", N: n, Image: MixedImage()}
	var rego strings.Builder
	rego.WriteString(regoHeader)
	for i := range n {
		k := i / 5
		label := [3]string{
			fmt.Sprintf(`image.labels["team"] == "t%d"`, k),
			fmt.Sprintf(`Labels["team"] == "t%d"`, k),
			fmt.Sprintf(`input.labels.team == "t%d"`, k)}
		repo := [3]string{
			fmt.Sprintf(`image.repository.glob("team%d/**")`, k),
			fmt.Sprintf(`glob(Repository, "team%d/**")`, k),
			fmt.Sprintf(`glob.match("team%d/**", ["/"], input.repository)`, k)}
		tag := [3]string{
			fmt.Sprintf(`image.tag.matches("^release-%d\\.")`, k),
			fmt.Sprintf(`Tag matches "^release-%d\\."`, k),
			fmt.Sprintf("regex.match(`^release-%d\\.`, input.tag)", k)}
		reg := fmt.Sprintf("reg%d.example.com", k%50)
		bound := [3]string{
			fmt.Sprintf(`image.registry == %q && image.size > %d`, reg, k*1000),
			fmt.Sprintf(`Registry == %q && Size > %d`, reg, k*1000),
			fmt.Sprintf("input.registry == %q\n\tinput.size > %d", reg, k*1000)}
		if k%2 == 1 {
			bound = [3]string{
				fmt.Sprintf(`image.registry == %q && image.age > duration("%dh")`, reg, k),
				fmt.Sprintf(`Registry == %q && Age > duration("%dh")`, reg, k),
				fmt.Sprintf("input.registry == %q\n\tinput.age > %d", reg, int64(k)*int64(time.Hour))}
		}
		var bodies []string
		w.Names = append(w.Names, PolicyName(i))
		switch i % 5 {
		case 0, 1, 2, 3:
			c := [][3]string{label, repo, tag, bound}[i%5]
			w.CEL = append(w.CEL, c[0])
			w.Expr = append(w.Expr, c[1])
			bodies = []string{c[2]}
		case 4:
			a, b := label, tag
			if k%2 == 1 {
				a, b = repo, bound
			}
			w.CEL = append(w.CEL, a[0]+" || "+b[0])
			w.Expr = append(w.Expr, a[1]+" || "+b[1])
			bodies = []string{a[2], b[2]}
		}
		for _, body := range bodies {
			fmt.Fprintf(&rego, "\nmatch contains %q if {\n\t%s\n}\n", PolicyName(i), body)
		}
	}
	w.Rego = rego.String()
	w.YAML = w.Policies()
	for i := 35; i < min(n, 40); i++ {
		w.Want = append(w.Want, PolicyName(i))
	}
	return w
}

// MixedImage is the image of the mixed workload: team 7's, 7.5 hours
// old and 7,500 bytes large.
func MixedImage() *conditions.Image {
	img := &conditions.Image{
		Reference: "reg7.example.com/team7/app:release-7.3",
		Labels:    map[string]string{"team": "t7", "org": "acme"},
		Size:      7500,
		Created:   Now.Add(-7*time.Hour - 30*time.Minute),
	}
	if err := img.Normalize(); err != nil {
		panic(err)
	}
	return img
}

// Policies renders the workload's CEL conditions as one policy file of
// n policies, each replicating to one registry.
func (w *Workload) Policies() []byte {
	return policyFile(len(w.CEL), func(i int) string { return w.Names[i] }, func(i int) string { return w.CEL[i] })
}

func policyFile(n int, name, expr func(int) string) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: celpolicy.dev/v1\nkind: Registry\nmetadata: {name: mirror}\nspec: {host: mirror.example.com}\n")
	for i := range n {
		fmt.Fprintf(&b, "---\napiVersion: celpolicy.dev/v1\nkind: Policy\nmetadata: {name: %s}\nspec:\n  priority: %d\n  match: '%s'\n  actions:\n    - type: replicate\n",
			name(i), i%10, strings.ReplaceAll(expr(i), "'", "''"))
	}
	return []byte(b.String())
}

// StandardOne is the standard workload's matching policy alone (policy
// 7): the floor of what one decision costs.
func StandardOne() *Workload {
	w := Standard(8)
	var rego strings.Builder
	rego.WriteString(regoHeader)
	_, body, _ := strings.Cut(w.Rego, "match contains \"p00007\"")
	body, _, _ = strings.Cut(body, "\n}\n")
	fmt.Fprintf(&rego, "\nmatch contains \"p00007\"%s\n}\n", body)
	one := &Workload{Name: "one", N: 1, Names: w.Names[7:], CEL: w.CEL[7:], Expr: w.Expr[7:], Rego: rego.String(),
		Image: w.Image, Want: w.Names[7:]}
	one.YAML = one.Policies()
	return one
}
