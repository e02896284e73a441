package runner_test

import (
	"context"
	"crypto/hmac"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/celpolicy/celpolicy/actions"
	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/registry/registrytest"
	"github.com/celpolicy/celpolicy/runner"
)

func refs(sum *runner.Summary) []string {
	var out []string
	for _, it := range sum.Items {
		out = append(out, it.Reference)
	}
	return out
}

func TestRunCopiesThenNothing(t *testing.T) {
	src, dst := registrytest.Memory(t), registrytest.Memory(t)
	for _, ref := range []string{"team/a:v1", "team/a:v2", "team/sub/b:v1", "other/c:v1"} {
		pushRandom(t, src+"/"+ref, 2048, 2)
	}
	set := loadSet(t, inventory(src, dst), mirrorPolicy)
	clock := &instantClock{}

	var started, seen int
	var decided atomic.Int64
	o := options(t, set, clock)
	o.OnStart = func(n int) { started = n }
	o.OnItem = func(runner.Item) { seen++ }
	o.OnDecision = func(_ context.Context, d *engine.Decision, _ time.Duration) {
		assert.Equal(t, "mirror-team", d.Targets["mirror"].Policy)
		decided.Add(1)
	}
	sum := run(t, set, o)
	assert.Equal(t, 3, started)
	assert.Equal(t, 3, seen)
	assert.Equal(t, int64(3), decided.Load())
	assert.Equal(t, []string{src + "/team/a:v1", src + "/team/a:v2", src + "/team/sub/b:v1"}, refs(sum))
	assert.Equal(t, 3, sum.Images)
	assert.Equal(t, 3, sum.Copied)
	assert.Zero(t, sum.Failed)
	assert.Positive(t, sum.Bytes)
	for _, it := range sum.Items {
		require.Len(t, it.Tasks, 1)
		assert.Equal(t, "mirror-team", it.Tasks[0].Policy)
		assert.Equal(t, []string{"mirror-team"}, it.Sources)
		assert.Equal(t, it.Digest, headDigest(t, it.Tasks[0].Destination))
	}
	assert.NotEmpty(t, headDigest(t, dst+"/mirror/team/sub/b:v1"))

	// A second pass right after copies nothing.
	again := run(t, set, options(t, set, clock))
	assert.Zero(t, again.Copied)
	assert.Equal(t, 3, again.Present)
	assert.Zero(t, again.Bytes)
	assert.Zero(t, again.Failed)
}

func TestRunDryRun(t *testing.T) {
	src, dst := registrytest.Memory(t), registrytest.Memory(t)
	pushRandom(t, src+"/team/a:v1", 1024, 1)
	set := loadSet(t, inventory(src, dst), mirrorPolicy)
	o := options(t, set, &instantClock{})
	o.DryRun = true
	sum := run(t, set, o)
	assert.True(t, sum.DryRun)
	assert.Equal(t, 1, sum.Copied)
	require.Len(t, sum.Items, 1)
	assert.True(t, sum.Items[0].Tasks[0].DryRun)
	assert.Empty(t, headDigest(t, dst+"/mirror/team/a:v1"), "a dry run copies nothing")
}

// TestRunBlockNotifyDelete: one pass carries out every kind of action,
// each named after the policy that decided it; the notification arrives
// signed at a loopback webhook.
func TestRunBlockNotifyDelete(t *testing.T) {
	src, dst := registrytest.Memory(t), registrytest.Memory(t)
	pushRandom(t, src+"/team/app:prod-1", 1024, 1)
	pushRandom(t, src+"/team/app:dev-1", 1024, 1)
	pushRandom(t, src+"/team/app:old-1", 1024, 1)

	var mu sync.Mutex
	var bodies []string
	var sigs []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		sigs = append(sigs, r.Header.Get(actions.SignatureHeader))
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)

	set := loadSet(t, inventory(src, dst), fmt.Sprintf(`apiVersion: celpolicy.dev/v1
kind: Policy
metadata: {name: prod-to-mirror}
spec:
  match: image.tag.startsWith("prod-")
  actions:
    - type: replicate
      to: [mirror]
  sources:
    - registry: src
      repositories: ["team/*"]
---
apiVersion: celpolicy.dev/v1
kind: Policy
metadata: {name: dev-never-production}
spec:
  priority: 10
  match: image.tag.startsWith("dev-")
  actions:
    - type: block
      where: target.labels.?env.orValue("") == "production"
      reason: '"dev tags never reach production"'
    - type: notify
      webhook: %s/hooks
---
apiVersion: celpolicy.dev/v1
kind: Policy
metadata: {name: retention}
spec:
  match: image.tag.startsWith("old-")
  actions:
    - type: delete
  sources:
    - registry: src
      repositories: ["team/*"]
      tags: ["old-*"]
`, hook.URL))
	secret := []byte("k")
	o := options(t, set, &instantClock{}, actions.WithWebhookSecret(func(string) []byte { return secret }))

	sum := run(t, set, o)
	assert.Equal(t, 1, sum.Copied)
	assert.Equal(t, 1, sum.Blocked)
	assert.Equal(t, 1, sum.Notified)
	assert.Equal(t, 1, sum.Deleted)
	assert.Zero(t, sum.Failed)
	byRef := map[string]runner.Item{}
	for _, it := range sum.Items {
		byRef[strings.TrimPrefix(it.Reference, src+"/")] = it
	}
	dev := byRef["team/app:dev-1"]
	require.Len(t, dev.Tasks, 2)
	assert.Equal(t, "block", dev.Tasks[0].Type)
	assert.Equal(t, "dev-never-production", dev.Tasks[0].Policy)
	assert.Equal(t, "dev tags never reach production", dev.Tasks[0].Detail)
	assert.Equal(t, "notify", dev.Tasks[1].Type)
	old := byRef["team/app:old-1"]
	assert.Equal(t, []string{"prod-to-mirror", "retention"}, old.Sources)
	require.Len(t, old.Tasks, 1)
	assert.Equal(t, "retention", old.Tasks[0].Policy)
	assert.Empty(t, headDigest(t, src+"/team/app:old-1"))
	assert.Empty(t, headDigest(t, dst+"/team/app:dev-1"))

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, bodies, 1)
	assert.True(t, hmac.Equal([]byte(actions.Sign(secret, []byte(bodies[0]))), []byte(sigs[0])))
	assert.Contains(t, bodies[0], `"policy":"dev-never-production"`)
}

// TestRunOnePolicy: a scheduled run of one policy scans its sources and
// carries out only what it decided.
func TestRunOnePolicy(t *testing.T) {
	src, dst := registrytest.Memory(t), registrytest.Memory(t)
	pushRandom(t, src+"/team/app:v1", 1024, 1)
	pushRandom(t, src+"/other/app:v1", 1024, 1)
	set := loadSet(t, inventory(src, dst), mirrorPolicy, `apiVersion: celpolicy.dev/v1
kind: Policy
metadata: {name: mirror-other}
spec:
  match: image.repository.startsWith("other/")
  actions:
    - type: replicate
      to: [mirror]
  sources:
    - registry: src
      repositories: ["other/*"]
`)
	o := options(t, set, &instantClock{})
	o.Policy = "mirror-other"
	sum := run(t, set, o)
	assert.Equal(t, []string{src + "/other/app:v1"}, refs(sum))
	assert.Equal(t, 1, sum.Copied)
	assert.Equal(t, "mirror-other", sum.Policy)

	o.Policy = "nope"
	_, err := runner.Run(context.Background(), set, o)
	assert.ErrorIs(t, err, runner.ErrUnknownPolicy)
}

// TestRunUnreachableSource: a source nobody answers on is reported as a
// failure, promptly.
func TestRunUnreachableSource(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	require.NoError(t, l.Close())
	dst := registrytest.Memory(t)
	set := loadSet(t, inventory(closed, dst), mirrorPolicy)
	clock := &instantClock{}
	sum := run(t, set, options(t, set, clock))
	assert.Equal(t, 1, sum.Failed)
	require.Len(t, sum.Items, 1)
	assert.Equal(t, closed, sum.Items[0].Reference)
	assert.Equal(t, []string{"mirror-team"}, sum.Items[0].Sources)
	assert.Contains(t, sum.Items[0].Error, "source src: list repositories")
	assert.Contains(t, sum.Items[0].Error, "connection refused")
	assert.Positive(t, clock.waits.Load(), "the listing was retried")
}

func TestShardDisjointAndComplete(t *testing.T) {
	var names []string
	for i := range 2000 {
		names = append(names, fmt.Sprintf("reg.example/team%d/app", i))
	}
	for n := 1; n <= 9; n++ {
		counts := make([]int, n)
		for _, name := range names {
			owners := 0
			for i := range n {
				if (runner.Shard{I: i, N: n}).Owns(name) {
					owners++
					counts[i]++
				}
			}
			require.Equal(t, 1, owners, "%s with %d shards", name, n)
		}
		for i, c := range counts {
			assert.InDelta(t, len(names)/n, c, float64(len(names))/float64(n)*0.25, "shard %d/%d holds %d", i, n, c)
		}
	}
}

func TestParseShard(t *testing.T) {
	tests := []struct {
		in      string
		want    runner.Shard
		wantErr string
	}{
		{in: "0/4", want: runner.Shard{I: 0, N: 4}},
		{in: "3/4", want: runner.Shard{I: 3, N: 4}},
		{in: "4/4", wantErr: "0 ≤ I < N"},
		{in: "-1/4", wantErr: "0 ≤ I < N"},
		{in: "1", wantErr: "want I/N"},
		{in: "a/b", wantErr: "whole numbers"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := runner.ParseShard(tc.in)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.in, got.String())
		})
	}
}

// TestRunShards: three shards of a pass handle every image exactly once.
func TestRunShards(t *testing.T) {
	src, dst := registrytest.Memory(t), registrytest.Memory(t)
	var all []string
	for i := range 12 {
		ref := fmt.Sprintf("%s/team/app%02d:v1", src, i)
		pushRandom(t, ref, 256, 1)
		all = append(all, ref)
	}
	set := loadSet(t, inventory(src, dst), mirrorPolicy)
	var union []string
	for i := range 3 {
		o := options(t, set, &instantClock{})
		o.Shard = runner.Shard{I: i, N: 3}
		o.DryRun = true
		sum := run(t, set, o)
		assert.Equal(t, fmt.Sprintf("%d/3", i), sum.Shard)
		for _, r := range refs(sum) {
			assert.NotContains(t, union, r, "handled by two shards")
			union = append(union, r)
		}
	}
	slices.Sort(union)
	assert.Equal(t, all, union)
}

// TestRunFaults puts a proxy in front of the mirror that answers 500 and
// 429 and drops connections, before and after forwarding. Every fault is
// one a retry gets past, except on one repository where every request
// fails: that image is reported failed, every other one is copied, and
// none is lost.
func TestRunFaults(t *testing.T) {
	src, dst := registrytest.Memory(t), registrytest.Memory(t)
	const images = 8
	for i := range images - 1 {
		pushRandom(t, fmt.Sprintf("%s/team/app%d:v1", src, i), 4096, 3)
	}
	pushRandom(t, src+"/team/broken:v1", 1024, 1)
	first := firstTimeFaults()
	proxy := newFaultProxy(t, dst, func(r *http.Request) fault {
		if strings.HasPrefix(r.URL.Path, "/v2/mirror/team/broken/") {
			return fail500
		}
		return first(r)
	})
	set := loadSet(t, inventory(src, proxy.host), mirrorPolicy)
	clock := &instantClock{}
	sum := run(t, set, options(t, set, clock))

	assert.Positive(t, proxy.faults.Load())
	assert.Positive(t, clock.waits.Load())
	assert.Equal(t, images, sum.Images)
	require.Len(t, sum.Items, images, "no image may be lost")
	assert.Equal(t, images-1, sum.Copied)
	assert.Equal(t, 1, sum.Failed)
	for _, it := range sum.Items {
		require.Len(t, it.Tasks, 1, it.Reference)
		task := it.Tasks[0]
		if strings.Contains(it.Reference, "broken") {
			assert.Equal(t, actions.Failed, task.Outcome)
			assert.Contains(t, task.Error, "500")
			continue
		}
		assert.Equal(t, actions.Copied, task.Outcome, "%s: %s", it.Reference, task.Error)
		assert.Equal(t, it.Digest, headDigest(t, dst+"/mirror/"+strings.TrimPrefix(it.Reference, src+"/")))
	}
}

// TestRunCancelled: a pass whose context ends reports every image it
// did not handle as failed, and returns the context's error.
func TestRunCancelled(t *testing.T) {
	src, dst := registrytest.Memory(t), registrytest.Memory(t)
	for i := range 6 {
		pushRandom(t, fmt.Sprintf("%s/team/app%d:v1", src, i), 256, 1)
	}
	set := loadSet(t, inventory(src, dst), mirrorPolicy)
	ctx, cancel := context.WithCancel(context.Background())
	o := options(t, set, &instantClock{})
	o.Concurrency = 1
	o.OnItem = func(runner.Item) { cancel() } // after the first image
	sum, err := runner.Run(ctx, set, o)
	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, sum.Items, 6, "no image may be lost")
	assert.Equal(t, 1, sum.Copied)
	assert.Equal(t, 5, sum.Failed)
	for _, it := range sum.Items[1:] {
		assert.ErrorIs(t, it.Err, context.Canceled, it.Reference)
	}
}
