package benchmarks

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/registry/registrytest"
	"github.com/celpolicy/celpolicy/runner"
)

// The replication workload of issue 6: 20 repositories × 5 tags of random
// images of about 5 MiB each (two layers of 2.5 MiB of random bytes).
const (
	replRepos     = 20
	replTags      = 5
	replLayerSize = 5 << 20 / 2
	replLayers    = 2

	// strictEnv set to "1" makes a missed target a failure.
	strictEnv = "CELPOLICY_BENCH_STRICT"
)

// BenchmarkReplication copies the workload between local distribution
// registries (Debian's docker-registry) with celpolicy run's library
// entry point and with Debian's `skopeo sync`, side by side, each into a
// registry of its own; then runs celpolicy again (best of three), which
// must find everything there and copy nothing. Each celpolicy pass is
// made as `celpolicy run` makes it, as a process of its own would: a new
// client with its own connections, and the disk cache of manifests and
// configs that run keeps between processes (--cache-dir), empty for the
// first pass. The no-op pass without that cache (--no-cache) is reported
// too. It reports seconds per tool and the ratios. A missed target (no-op
// run under 5% of the first, celpolicy no slower than skopeo) is logged,
// and fails the benchmark with CELPOLICY_BENCH_STRICT=1: on two cores
// shared with other work the timings are too noisy to fail CI on. It is
// skipped when skopeo or docker-registry is missing.
func BenchmarkReplication(b *testing.B) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		b.Skip("skopeo not found: `apt-get install skopeo` to run the replication benchmark")
	}
	if _, err := exec.LookPath(registrytest.DefaultBinary); err != nil && os.Getenv(registrytest.BinaryEnv) == "" {
		b.Skip("docker-registry not found: `apt-get install docker-registry` to run the replication benchmark")
	}
	src := registrytest.Start(b)
	fillSource(b, src)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		celDst, skopeoDst := registrytest.Start(b), registrytest.Start(b)
		set := replicationSet(b, src, celDst)
		cacheDir := b.TempDir()
		b.StartTimer()

		start := time.Now()
		first := runPass(ctx, b, set, cacheDir)
		celpolicy := time.Since(start)
		if first.Failed > 0 || first.Copied != replRepos*replTags {
			b.Fatalf("celpolicy run: copied %d, failed %d", first.Copied, first.Failed)
		}

		// The no-op runs, the best of three each, since on two shared
		// cores a run of half a second is easily disturbed.
		noop := bestNoop(ctx, b, set, cacheDir)
		noCache := bestNoop(ctx, b, set, "")

		start = time.Now()
		skopeoSync(b, skopeo, src, skopeoDst)
		sk := time.Since(start)

		b.ReportMetric(celpolicy.Seconds(), "celpolicy-s")
		b.ReportMetric(sk.Seconds(), "skopeo-s")
		b.ReportMetric(noop.Seconds(), "noop-s")
		b.ReportMetric(noop.Seconds()/celpolicy.Seconds()*100, "noop-%")
		b.ReportMetric(noCache.Seconds(), "noop-nocache-s")
		b.ReportMetric(celpolicy.Seconds()/sk.Seconds(), "celpolicy/skopeo")
		b.Logf("%d images, %.0f MiB: celpolicy %s, skopeo sync %s, celpolicy no-op %s (%.1f%% of the first), without the disk cache %s (%.1f%%)",
			replRepos*replTags, float64(first.Bytes)/(1<<20), celpolicy.Round(time.Millisecond), sk.Round(time.Millisecond),
			noop.Round(time.Millisecond), noop.Seconds()/celpolicy.Seconds()*100,
			noCache.Round(time.Millisecond), noCache.Seconds()/celpolicy.Seconds()*100)
		miss := b.Logf
		if os.Getenv(strictEnv) == "1" {
			miss = b.Errorf
		}
		if noop >= celpolicy/20 {
			miss("target missed: the no-op run took %s, not under 5%% of the first (%s)", noop, celpolicy)
		}
		if celpolicy > sk {
			miss("target missed: celpolicy took longer than skopeo sync (%s > %s)", celpolicy, sk)
		}
	}
}

// runPass makes one celpolicy pass as a new `celpolicy run` process
// would: a new client, its own connections, the disk cache in cacheDir
// ("" for none).
func runPass(ctx context.Context, b *testing.B, set *engine.PolicySet, cacheDir string) *runner.Summary {
	b.Helper()
	var opts []registry.Option
	if cacheDir != "" {
		opts = append(opts, registry.WithDiskCache(cacheDir))
	}
	client, err := runner.NewClient(set, opts...)
	if err != nil {
		b.Fatal(err)
	}
	sum, err := runner.Run(ctx, set, runner.Options{Client: client})
	if err != nil {
		b.Fatalf("celpolicy run: %v", err)
	}
	return sum
}

// bestNoop is the shortest of three no-op passes, each checked to have
// found every image at the destination and copied nothing.
func bestNoop(ctx context.Context, b *testing.B, set *engine.PolicySet, cacheDir string) time.Duration {
	b.Helper()
	best := time.Duration(1 << 62)
	for range 3 {
		start := time.Now()
		sum := runPass(ctx, b, set, cacheDir)
		best = min(best, time.Since(start))
		if sum.Copied != 0 || sum.Present != replRepos*replTags || sum.Failed > 0 {
			b.Fatalf("no-op celpolicy run: copied %d, present %d, failed %d", sum.Copied, sum.Present, sum.Failed)
		}
	}
	return best
}

// fillSource pushes the workload, four images at a time.
func fillSource(b *testing.B, src string) {
	b.Helper()
	var wg sync.WaitGroup
	work := make(chan string)
	for range 4 {
		wg.Go(func() {
			for ref := range work {
				registrytest.PushRandom(b, ref, replLayerSize, replLayers)
			}
		})
	}
	for r := range replRepos {
		for t := range replTags {
			work <- fmt.Sprintf("%s/bench/repo%02d:v%d", src, r, t)
		}
	}
	close(work)
	wg.Wait()
}

// replicationSet mirrors bench/** from src to dst under the same names.
func replicationSet(b *testing.B, src, dst string) *engine.PolicySet {
	b.Helper()
	dir := b.TempDir()
	doc := fmt.Sprintf(`apiVersion: celpolicy.dev/v1
kind: Registry
metadata: {name: src}
spec: {host: "%s", insecure: true}
---
apiVersion: celpolicy.dev/v1
kind: Registry
metadata: {name: mirror}
spec: {host: "%s", insecure: true}
---
apiVersion: celpolicy.dev/v1
kind: Policy
metadata: {name: mirror-bench}
spec:
  match: image.source == "src"
  actions:
    - type: replicate
      to: [mirror]
  sources:
    - registry: src
      repositories: ["bench/**"]
`, src, dst)
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(doc), 0o644); err != nil {
		b.Fatal(err)
	}
	set, err := engine.Load([]string{dir})
	if err != nil {
		b.Fatal(err)
	}
	return set
}

// skopeoSync copies every tag of the workload's repositories with one
// `skopeo sync` from a YAML source list.
func skopeoSync(b *testing.B, skopeo, src, dst string) {
	b.Helper()
	dir := b.TempDir()
	var list strings.Builder
	fmt.Fprintf(&list, "%s:\n  tls-verify: false\n  images:\n", src)
	for r := range replRepos {
		fmt.Fprintf(&list, "    bench/repo%02d: []\n", r)
	}
	files := map[string]string{
		"sync.yaml":   list.String(),
		"policy.json": `{"default": [{"type": "insecureAcceptAnything"}]}`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	cmd := exec.Command(skopeo, "--policy", filepath.Join(dir, "policy.json"), "sync",
		"--src", "yaml", "--dest", "docker", "--dest-tls-verify=false",
		filepath.Join(dir, "sync.yaml"), dst)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("skopeo sync: %v\n%s", err, out)
	}
}
