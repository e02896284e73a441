package engine_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/engine"
)

// A replicator loads the policies once, then asks for a decision per image.
func Example() {
	set, err := engine.Load([]string{"../examples/policies"})
	if err != nil {
		log.Fatal(err) // an engine.ErrorList: one file:line:col line per problem
	}
	img := &conditions.Image{
		Reference: "docker.io/acme/payments:2.4.1",
		Labels:    map[string]string{"compliance-required": "true", "scan.status": "passed", "scan.date": "2026-11-25"},
	}
	if err := img.Normalize(); err != nil {
		log.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	dec, err := set.Evaluate(context.Background(), img, engine.At(now))
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range set.Targets() {
		if v := dec.Targets[t.Name]; v != nil {
			fmt.Println(t.Name, v.Verdict, v.Destination)
		}
	}
	// Output:
	// eu-dr replicate dr.eu.example.com/acme/payments:2.4.1
	// eu-prod replicate registry.eu.example.com/acme/payments:2.4.1
}

// Policies can also come from memory; every problem carries its position.
func ExampleParse() {
	src := []byte(`apiVersion: celpolicy.dev/v1
kind: Policy
metadata:
  name: no-latest
spec:
  match: image.tag == "latest"
  actions:
    - type: block
      reason: '"the latest tag is not replicated: pin a version"'
`)
	bundle, err := engine.Parse("inline.yaml", src)
	if err != nil {
		log.Fatal(err)
	}
	set, err := engine.Compile(bundle)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(set.Policies()), "policy, revision", len(set.Revision()), "hex digits")

	_, err = engine.Parse("bad.yaml", []byte("apiVersion: celpolicy.dev/v1\nkind: Policy\nmetadata: {name: p}\nspec:\n  priority: high\n"))
	fmt.Println(err)
	// Output:
	// 1 policy, revision 16 hex digits
	// bad.yaml:4:1: spec.actions: missing required field "actions"
	// bad.yaml:4:1: spec: missing required field "match" (or "conditions"); to match every image write match: "true"
	// bad.yaml:5:13: spec.priority: expected an integer, got "high"
}

// Tracing explains why a policy did not match.
func ExampleWithTrace() {
	bundle, err := engine.Parse("inline.yaml", []byte(`apiVersion: celpolicy.dev/v1
kind: Policy
metadata:
  name: platform-only
spec:
  match: image.labels[?"team"].orValue("") == "platform"
  actions:
    - type: block
`))
	if err != nil {
		log.Fatal(err)
	}
	set, err := engine.Compile(bundle)
	if err != nil {
		log.Fatal(err)
	}
	img := &conditions.Image{Reference: "docker.io/acme/web:1", Labels: map[string]string{"team": "web"}}
	if err := img.Normalize(); err != nil {
		log.Fatal(err)
	}
	dec, err := set.Evaluate(context.Background(), img, engine.WithTrace())
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range dec.Trace[0].Conditions {
		fmt.Println(c.Expression, "→", c.Result)
		for _, v := range c.Values[1:] {
			fmt.Printf("  %s = %v\n", v.Expression, v.Value)
		}
	}
	// Output:
	// image.labels[?"team"].orValue("") == "platform" → false
	//   image.labels[?"team"].orValue("") = web
	//   image.labels[?"team"] = web
	//   image.labels = map[team:web]
}
