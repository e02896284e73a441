package benchmarks

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/engine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// peers are the engines measured side by side, in table order.
var peers = []struct {
	name  string
	build func(ctx context.Context, w *Workload) (Decider, error)
}{
	{"celpolicy", func(_ context.Context, w *Workload) (Decider, error) {
		set, err := Celpolicy(w)
		return CelpolicyDecider{set}, err
	}},
	{"opa", func(ctx context.Context, w *Workload) (Decider, error) { return NewOPA(ctx, w) }},
	{"expr", func(_ context.Context, w *Workload) (Decider, error) { return NewExpr(w) }},
	{"cel-loop", func(_ context.Context, w *Workload) (Decider, error) { return NewCELLoop(w) }},
}

// TestPeersAgree checks that every engine reads the workloads alike:
// the side-by-side numbers compare the same decisions.
func TestPeersAgree(t *testing.T) {
	ctx := context.Background()
	for _, w := range []*Workload{StandardOne(), Standard(100), Mixed(100), Mixed(250)} {
		for _, p := range peers {
			t.Run(fmt.Sprintf("%s/N=%d/%s", w.Name, w.N, p.name), func(t *testing.T) {
				d, err := p.build(ctx, w)
				require.NoError(t, err)
				got, err := d.Decide(ctx, w.Image)
				require.NoError(t, err)
				assert.Equal(t, w.Want, got)
			})
		}
	}
}

func TestStandardWorkloadMatchesPolicy7(t *testing.T) {
	set, err := Celpolicy(Standard(100))
	require.NoError(t, err)
	d, err := set.Evaluate(context.Background(), StandardImage())
	require.NoError(t, err)
	require.Len(t, d.Matched, 1)
	assert.Equal(t, "p00007", d.Matched[0].Policy)
	if v := d.Targets["mirror"]; assert.NotNil(t, v) {
		assert.Equal(t, "mirror.example.com/team7/app:v1.2.7", v.Destination)
	}
}

// decideCases are the workloads of the decision benchmarks.
func decideCases() []*Workload {
	var out []*Workload
	for _, n := range Sizes {
		out = append(out, Standard(n))
	}
	for _, n := range []int{100, 1000, 10000} {
		out = append(out, Mixed(n))
	}
	return out
}

// BenchmarkDecide decides one image against N policies, per engine:
// celpolicy returns a full Decision; the peers only the matched names,
// from an input converted once outside the loop.
func BenchmarkDecide(b *testing.B) {
	for _, w := range decideCases() {
		benchDecide(b, fmt.Sprintf("%s/N=%d", w.Name, w.N), w)
	}
}

// BenchmarkOnePolicy decides one image against its one matching policy:
// the floor of a decision, with its allocations.
func BenchmarkOnePolicy(b *testing.B) { benchDecide(b, "standard-one", StandardOne()) }

// built keeps what the decision benchmarks compiled: the testing package
// runs a benchmark function several times to size b.N, and compiling
// 10,000 policies each time would dominate the run. A benchmark forgets
// what it built when it is done: sets kept alive for nothing would make
// every later benchmark's garbage collector mark them, a cost that falls
// on whichever engine allocates most per decision.
var built sync.Map

// forget drops what the benchmarks under prefix built.
func forget(prefix string) {
	built.Range(func(k, _ any) bool {
		if strings.HasPrefix(k.(string), prefix+"/") {
			built.Delete(k)
		}
		return true
	})
	runtime.GC()
}

func cached[T any](b *testing.B, key string, build func() (T, error)) T {
	b.Helper()
	if v, ok := built.Load(key); ok {
		return v.(T)
	}
	v, err := build()
	require.NoError(b, err)
	built.Store(key, v)
	return v
}

func benchDecide(b *testing.B, prefix string, w *Workload) {
	ctx := context.Background()
	defer forget(prefix)
	for _, c := range []struct {
		name string
		opts []engine.Option
	}{{"celpolicy", nil}, {"celpolicy-memo", []engine.Option{engine.WithMemo(1024)}}, {"celpolicy-noindex", []engine.Option{engine.WithoutIndex()}}} {
		b.Run(prefix+"/"+c.name, func(b *testing.B) {
			set := cached(b, prefix+"/"+c.name, func() (*engine.PolicySet, error) { return Celpolicy(w, c.opts...) })
			at := engine.At(Now)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := set.Evaluate(ctx, w.Image, at); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run(prefix+"/opa", func(b *testing.B) {
		o := cached(b, prefix+"/opa", func() (*OPA, error) { return NewOPA(ctx, w) })
		in, err := OPAInput(w.Image)
		require.NoError(b, err)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := o.Eval(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(prefix+"/expr", func(b *testing.B) {
		e := cached(b, prefix+"/expr", func() (*Expr, error) { return NewExpr(w) })
		in := ExprInput(w.Image)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Eval(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(prefix+"/cel-loop", func(b *testing.B) {
		l := cached(b, prefix+"/cel-loop", func() (*CELLoop, error) { return NewCELLoop(w) })
		b.ReportAllocs()
		for b.Loop() {
			// A new activation per decision, as the engine binds one.
			l.Eval(ctx, conditions.NewActivation(w.Image, Now))
		}
	})
}

// BenchmarkDecideParallel decides from every core at once (GOMAXPROCS
// goroutines) against N = 10,000 policies. RunParallel does not reset the
// timer as b.Loop does, so compiling is taken out of it by hand.
func BenchmarkDecideParallel(b *testing.B) {
	ctx := context.Background()
	for _, w := range []*Workload{Standard(10000), Mixed(10000)} {
		prefix := fmt.Sprintf("%s/N=%d", w.Name, w.N)
		b.Run(prefix+"/celpolicy", func(b *testing.B) {
			set := cached(b, "parallel/"+prefix+"/celpolicy", func() (*engine.PolicySet, error) { return Celpolicy(w) })
			b.ReportAllocs()
			b.ResetTimer() // the set may have been compiled just now
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := set.Evaluate(ctx, w.Image, engine.At(Now)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(prefix+"/opa", func(b *testing.B) {
			o := cached(b, "parallel/"+prefix+"/opa", func() (*OPA, error) { return NewOPA(ctx, w) })
			in, err := OPAInput(w.Image)
			require.NoError(b, err)
			b.ReportAllocs()
			b.ResetTimer() // the set may have been compiled just now
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := o.Eval(ctx, in); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(prefix+"/expr", func(b *testing.B) {
			e := cached(b, "parallel/"+prefix+"/expr", func() (*Expr, error) { return NewExpr(w) })
			in := ExprInput(w.Image)
			b.ReportAllocs()
			b.ResetTimer() // the set may have been compiled just now
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := e.Eval(in); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		forget("parallel/" + prefix)
	}
}

// BenchmarkCompile compiles N policies from source, per engine:
// celpolicy parses YAML and compiles; OPA parses, compiles and prepares
// the Rego query.
func BenchmarkCompile(b *testing.B) {
	ctx := context.Background()
	for _, w := range []*Workload{Standard(100), Standard(1000), Standard(10000), Mixed(10000)} {
		for _, p := range peers {
			b.Run(fmt.Sprintf("%s/N=%d/%s", w.Name, w.N, p.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := p.build(ctx, w); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkRecompile compiles N = 10,000 standard policies again after
// one of them changed, WithPrevious the set before the change: its size
// bound (the index is kept), or its repository prefix (the index is
// rebuilt); from the parsed bundle, and from the YAML text.
func BenchmarkRecompile(b *testing.B) {
	w := Standard(10000)
	prev := cached(b, "recompile/prev", func() (*engine.PolicySet, error) { return Celpolicy(w) })
	for _, c := range []struct{ name, old, new string }{
		{"bound", "image.size < 6000", "image.size < 6001"},
		{"prefix", `startsWith("team5000/")`, `startsWith("team5000b/")`},
	} {
		changed := Standard(10000)
		changed.CEL[5000] = strings.Replace(changed.CEL[5000], c.old, c.new, 1)
		src := changed.Policies()
		bundle, err := engine.Parse("standard.yaml", src)
		require.NoError(b, err)
		b.Run("standard/N=10000/"+c.name+"/compile", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := engine.Compile(bundle, engine.WithPrevious(prev)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("standard/N=10000/"+c.name+"/parse+compile", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bundle, err := engine.Parse("standard.yaml", src)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := engine.Compile(bundle, engine.WithPrevious(prev)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHeld reports, as heap-bytes, the heap a compiled set of N
// standard policies keeps alive: live heap after a GC with the set,
// minus live heap before it was built (the source text excluded).
func BenchmarkHeld(b *testing.B) {
	ctx := context.Background()
	w := Standard(10000)
	for _, p := range peers {
		b.Run(fmt.Sprintf("%s/N=%d/%s", w.Name, w.N, p.name), func(b *testing.B) {
			var held int64
			for b.Loop() {
				var err error
				held, err = heldBy(func() (any, error) { return p.build(ctx, w) })
				require.NoError(b, err)
			}
			b.ReportMetric(float64(held), "heap-bytes")
		})
	}
}

func heldBy(build func() (any, error)) (int64, error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v, err := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc), err
}

// BenchmarkEvaluateTrace is the price of --explain on eight policies.
func BenchmarkEvaluateTrace(b *testing.B) {
	set, err := Celpolicy(Standard(8))
	require.NoError(b, err)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := set.Evaluate(ctx, StandardImage(), engine.At(Now), engine.WithTrace()); err != nil {
			b.Fatal(err)
		}
	}
}
