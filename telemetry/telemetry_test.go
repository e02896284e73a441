package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/engine"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func decision() (*conditions.Image, *engine.Decision) {
	img := &conditions.Image{Reference: "docker.io/acme/web:1", Digest: "sha256:abc"}
	return img, &engine.Decision{
		Image: engine.ImageRef{Reference: img.Reference, Digest: img.Digest}, Revision: "rev1", Allowed: true,
		Matched: []engine.MatchedPolicy{{Policy: "p", Priority: 1, Mode: engine.ModeEnforce}},
		Targets: map[string]*engine.Verdict{
			"eu": {Verdict: engine.VerdictReplicate, Policy: "p", Destination: "eu.example.com/acme/web:1"},
			"us": {Verdict: engine.VerdictBlocked, Policy: "q", Reason: "no scan"},
		},
		Errors: []engine.PolicyError{{Policy: "r", Field: "spec.match", Message: "no such key: team", Effect: "ignored"}},
	}
}

func TestMetricsFamilies(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	_, d := decision()
	m.ObserveDecision(d, 3*time.Microsecond)
	m.ObserveAction("replicate", "done", time.Second, 1234)
	m.ObserveReload(engine.ReloadEvent{Time: time.Unix(1700000000, 0), Policies: 3})
	m.ObserveReload(engine.ReloadEvent{Err: errors.New("bad")})
	m.ObserveRun("p", nil)
	m.ObserveSkippedRun("p")

	assert.Equal(t, 1.0, testutil.ToFloat64(m.evaluations.WithLabelValues("error")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.policyResults.WithLabelValues("p", "matched")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.policyResults.WithLabelValues("r", "error")))
	assert.Equal(t, 1234.0, testutil.ToFloat64(m.bytes))
	assert.Equal(t, 3.0, testutil.ToFloat64(m.policies))
	assert.Equal(t, 1700000000.0, testutil.ToFloat64(m.lastReload))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.reloads.WithLabelValues("failure")))

	families, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				assert.NotContains(t, l.GetValue(), "acme/web", "image names must not be label values")
			}
		}
	}
	assert.ElementsMatch(t, MetricNames(), names)

	// Removing a policy drops its series.
	m.ObserveReload(engine.ReloadEvent{Removed: []string{"p"}})
	assert.Equal(t, 0, testutil.CollectAndCount(m.runs))

	_, err = NewMetrics(reg)
	assert.ErrorContains(t, err, "register metrics", "a second registration on the same registry fails")
	_, err = NewMetrics(nil)
	assert.Error(t, err)
}

func records(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		out = append(out, rec)
	}
	return out
}

func TestAuditDecision(t *testing.T) {
	var buf bytes.Buffer
	a := NewAudit(slog.New(slog.NewJSONHandler(&buf, nil)))
	_, d := decision()
	a.Decision(context.Background(), d)
	recs := records(t, &buf)
	require.Len(t, recs, 1)
	r := recs[0]
	assert.Equal(t, "decision", r["msg"])
	assert.NotEmpty(t, r["time"])
	assert.Equal(t, "rev1", r["revision"])
	assert.Equal(t, map[string]any{"reference": "docker.io/acme/web:1", "digest": "sha256:abc"}, r["image"])
	assert.Equal(t, []any{"p"}, r["matched"])
	assert.Equal(t, map[string]any{
		"eu": map[string]any{"verdict": "replicate", "policy": "p", "destination": "eu.example.com/acme/web:1"},
		"us": map[string]any{"verdict": "blocked", "policy": "q", "reason": "no scan"},
	}, r["targets"])
	assert.Equal(t, []any{"r spec.match: no such key: team"}, r["errors"])
}

func TestAuditKeepsSecretsOut(t *testing.T) {
	var buf bytes.Buffer
	a := NewAudit(slog.New(slog.NewJSONHandler(&buf, nil)))
	const secret = "s3cr3t-token"
	hook := "https://bot:" + secret + "@hooks.example.com/notify?token=" + secret
	a.Action(context.Background(), ActionRecord{Type: "notify", Policy: "p", Image: "docker.io/a/b:1",
		Webhook: hook, Outcome: "failed",
		Err: &url.Error{Op: "Post", URL: hook, Err: errors.New("connection refused")}})
	a.Action(context.Background(), ActionRecord{Type: "replicate", Policy: "p", Image: "docker.io/a/b:1",
		Target: "eu", Destination: "eu.example.com/a/b:1", Outcome: "done", Bytes: 10, Duration: time.Second})
	out := buf.String()
	assert.NotContains(t, out, secret)
	recs := records(t, &buf)
	require.Len(t, recs, 2)
	assert.Equal(t, "https://hooks.example.com/notify", recs[0]["webhook"])
	assert.Equal(t, `Post "https://hooks.example.com/notify": connection refused`, recs[0]["error"])
	assert.Equal(t, "ERROR", recs[0]["level"])
	assert.Equal(t, "done", recs[1]["outcome"])
	assert.Equal(t, 10.0, recs[1]["bytes"])
}

func TestAuditPolicySetChange(t *testing.T) {
	var buf bytes.Buffer
	a := NewAudit(slog.New(slog.NewJSONHandler(&buf, nil)))
	a.PolicySetChange(context.Background(), engine.ReloadEvent{OldRevision: "a", NewRevision: "b",
		Added: []string{"new"}, Modified: []string{"changed"}, Policies: 2})
	a.PolicySetChange(context.Background(), engine.ReloadEvent{OldRevision: "b", NewRevision: "b",
		Err: engine.ErrorList{{Pos: engine.Position{File: "p.yaml", Line: 3, Column: 4}, Msg: "bad"}}})
	recs := records(t, &buf)
	require.Len(t, recs, 2)
	assert.Equal(t, "policy set changed", recs[0]["msg"])
	assert.Equal(t, []any{"new"}, recs[0]["added"])
	assert.Equal(t, []any{}, recs[0]["removed"])
	assert.Equal(t, []any{"changed"}, recs[0]["modified"])
	assert.Equal(t, "b", recs[0]["new_revision"])
	assert.Equal(t, []any{"p.yaml:3:4: bad"}, recs[1]["errors"])
}
