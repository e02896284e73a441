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
// must find everything there and copy nothing. It reports seconds per tool and the
// ratios. A missed target (no-op run under 5% of the first, celpolicy no
// slower than skopeo) is logged, and fails the benchmark with
// CELPOLICY_BENCH_STRICT=1: on two cores shared with other work the
// timings are too noisy to fail CI on. It is skipped when skopeo or
// docker-registry is missing.
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
		b.StartTimer()

		start := time.Now()
		first, err := runner.Run(ctx, set, runner.Options{})
		celpolicy := time.Since(start)
		if err != nil || first.Failed > 0 || first.Copied != replRepos*replTags {
			b.Fatalf("celpolicy run: copied %d, failed %d, %v", first.Copied, first.Failed, err)
		}

		// The no-op run, as a new process would make it (a new client, no
		// cache); the best of three, since on two shared cores a run of
		// half a second is easily disturbed.
		noop := time.Duration(1 << 62)
		for range 3 {
			start = time.Now()
			second, err := runner.Run(ctx, set, runner.Options{})
			noop = min(noop, time.Since(start))
			if err != nil || second.Copied != 0 || second.Present != replRepos*replTags {
				b.Fatalf("second celpolicy run: copied %d, present %d, %v", second.Copied, second.Present, err)
			}
		}

		start = time.Now()
		skopeoSync(b, skopeo, src, skopeoDst)
		sk := time.Since(start)

		b.ReportMetric(celpolicy.Seconds(), "celpolicy-s")
		b.ReportMetric(sk.Seconds(), "skopeo-s")
		b.ReportMetric(noop.Seconds(), "noop-s")
		b.ReportMetric(noop.Seconds()/celpolicy.Seconds()*100, "noop-%")
		b.ReportMetric(celpolicy.Seconds()/sk.Seconds(), "celpolicy/skopeo")
		b.Logf("%d images, %.0f MiB: celpolicy %s, skopeo sync %s, celpolicy no-op %s (%.1f%% of the first)",
			replRepos*replTags, float64(first.Bytes)/(1<<20), celpolicy.Round(time.Millisecond), sk.Round(time.Millisecond),
			noop.Round(time.Millisecond), noop.Seconds()/celpolicy.Seconds()*100)
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
