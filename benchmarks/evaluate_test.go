package benchmarks

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/celpolicy/celpolicy/engine"
)

func compileStandard(b *testing.B, n int) *engine.PolicySet {
	b.Helper()
	bundle, err := engine.Parse("standard.yaml", StandardPolicies(n))
	if err != nil {
		b.Fatal(err)
	}
	set, err := engine.Compile(bundle)
	if err != nil {
		b.Fatal(err)
	}
	return set
}

func TestStandardWorkloadMatchesPolicy7(t *testing.T) {
	bundle, err := engine.Parse("standard.yaml", StandardPolicies(100))
	if err != nil {
		t.Fatal(err)
	}
	set, err := engine.Compile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	d, err := set.Evaluate(context.Background(), StandardImage())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Matched) != 1 || d.Matched[0].Policy != "p00007" {
		t.Fatalf("matched %+v, want only p00007", d.Matched)
	}
	if v := d.Targets["mirror"]; v == nil || v.Destination != "mirror.example.com/team7/app:v1.2.7" {
		t.Fatalf("mirror verdict %+v", v)
	}
}

// BenchmarkEvaluateOnePolicy decides one image against one matching
// policy: the floor of what an embedding replicator pays per image.
func BenchmarkEvaluateOnePolicy(b *testing.B) {
	bundle, err := engine.Parse("one.yaml", []byte(`apiVersion: celpolicy.dev/v1
kind: Registry
metadata: {name: mirror}
spec: {host: mirror.example.com}
---
apiVersion: celpolicy.dev/v1
kind: Policy
metadata: {name: p7}
spec:
  match: '`+StandardExpr(7)+`'
  actions:
    - type: replicate
`))
	if err != nil {
		b.Fatal(err)
	}
	set, err := engine.Compile(bundle)
	if err != nil {
		b.Fatal(err)
	}
	img := StandardImage()
	ctx := context.Background()
	now := engine.At(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC))
	b.ReportAllocs()
	for b.Loop() {
		d, err := set.Evaluate(ctx, img, now)
		if err != nil || len(d.Matched) != 1 {
			b.Fatalf("decision %+v, %v", d, err)
		}
	}
}

// BenchmarkEvaluateStandard decides one image against N standard
// policies with the plain priority-ordered loop.
func BenchmarkEvaluateStandard(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			set := compileStandard(b, n)
			img := StandardImage()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := set.Evaluate(ctx, img); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEvaluateTrace is the price of --explain on one policy.
func BenchmarkEvaluateTrace(b *testing.B) {
	set := compileStandard(b, 8)
	img := StandardImage()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := set.Evaluate(ctx, img, engine.WithTrace()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileStandard compiles N standard policies from YAML.
func BenchmarkCompileStandard(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			src := StandardPolicies(n)
			b.ReportAllocs()
			for b.Loop() {
				bundle, err := engine.Parse("standard.yaml", src)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := engine.Compile(bundle); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
