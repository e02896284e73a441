package telemetry

import (
	"fmt"
	"time"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are celpolicy's Prometheus metrics (see docs/metrics.md). Label
// values are bounded: policy names, action types and outcomes, never image
// names. Safe for concurrent use.
type Metrics struct {
	evaluations   *prometheus.CounterVec
	policyResults *prometheus.CounterVec
	evalLatency   prometheus.Histogram
	actions       *prometheus.CounterVec
	actionLatency *prometheus.HistogramVec
	bytes         prometheus.Counter
	policies      prometheus.Gauge
	reloads       *prometheus.CounterVec
	lastReload    prometheus.Gauge
	runs          *prometheus.CounterVec
	skipped       *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, fmt.Errorf("metrics registerer must not be nil")
	}
	m := &Metrics{
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "celpolicy_evaluations_total",
			Help: "Images decided, by result: allowed, blocked (at every target asked about) or error (a policy failed to evaluate).",
		}, []string{"result"}),
		policyResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "celpolicy_policy_evaluations_total",
			Help: "Policy outcomes per decision, by policy and result: matched or error.",
		}, []string{"policy", "result"}),
		evalLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "celpolicy_evaluation_duration_seconds",
			Help:    "Time to decide one image against the policy set.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10), // 1µs .. 0.26s
		}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "celpolicy_actions_total",
			Help: "Actions carried out, by type (replicate, block, notify, delete) and outcome (copied, present, skipped, blocked, notified, deleted, failed, dry-run).",
		}, []string{"type", "outcome"}),
		actionLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "celpolicy_action_duration_seconds",
			Help:    "Time to carry out one action, by type.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1ms .. 262s
		}, []string{"type"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "celpolicy_replicated_bytes_total",
			Help: "Bytes copied to destination registries.",
		}),
		policies: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "celpolicy_policies_loaded",
			Help: "Policies in the policy set in force.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "celpolicy_policy_reloads_total",
			Help: "Policy set reloads after a change on disk, by result: success or failure (the previous set stays in force).",
		}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "celpolicy_policy_last_successful_reload_timestamp_seconds",
			Help: "Unix time at which the policy set in force was loaded.",
		}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "celpolicy_scheduled_runs_total",
			Help: "Scheduled replication passes, by policy and outcome: success or failure.",
		}, []string{"policy", "outcome"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "celpolicy_scheduled_runs_skipped_total",
			Help: "Scheduled passes skipped because the previous pass of the same policy was still running.",
		}, []string{"policy"}),
	}
	for _, c := range []prometheus.Collector{m.evaluations, m.policyResults, m.evalLatency, m.actions,
		m.actionLatency, m.bytes, m.policies, m.reloads, m.lastReload, m.runs, m.skipped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	// Families with labels appear in a scrape only once they have a
	// series; start the ones whose label values are known.
	for _, r := range []string{"allowed", "blocked", "error"} {
		m.evaluations.WithLabelValues(r)
	}
	for _, r := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(r)
	}
	return m, nil
}

// ObserveDecision counts one decision and how long it took.
func (m *Metrics) ObserveDecision(d *engine.Decision, elapsed time.Duration) {
	result := "allowed"
	switch {
	case len(d.Errors) > 0:
		result = "error"
	case !d.Allowed:
		result = "blocked"
	}
	m.evaluations.WithLabelValues(result).Inc()
	m.evalLatency.Observe(elapsed.Seconds())
	for _, p := range d.Matched {
		m.policyResults.WithLabelValues(p.Policy, "matched").Inc()
	}
	for _, e := range d.Errors {
		m.policyResults.WithLabelValues(e.Policy, "error").Inc()
	}
}

// ObserveAction counts one carried-out action. bytes is what a replicate
// moved (zero otherwise).
func (m *Metrics) ObserveAction(typ, outcome string, elapsed time.Duration, bytes int64) {
	m.actions.WithLabelValues(typ, outcome).Inc()
	m.actionLatency.WithLabelValues(typ).Observe(elapsed.Seconds())
	if bytes > 0 {
		m.bytes.Add(float64(bytes))
	}
}

// ObserveLoad records the policy set in force, at start or after a reload.
func (m *Metrics) ObserveLoad(set *engine.PolicySet, at time.Time) {
	m.policies.Set(float64(len(set.Policies())))
	m.lastReload.Set(float64(at.UnixNano()) / 1e9)
}

// ObserveReload counts a reload; a successful one also updates the set's
// gauges and drops the series of removed policies.
func (m *Metrics) ObserveReload(ev engine.ReloadEvent) {
	if ev.Err != nil {
		m.reloads.WithLabelValues("failure").Inc()
		return
	}
	m.reloads.WithLabelValues("success").Inc()
	m.policies.Set(float64(ev.Policies))
	m.lastReload.Set(float64(ev.Time.UnixNano()) / 1e9)
	for _, name := range ev.Removed {
		l := prometheus.Labels{"policy": name}
		m.policyResults.DeletePartialMatch(l)
		m.runs.DeletePartialMatch(l)
		m.skipped.DeletePartialMatch(l)
	}
}

// ObserveSchedules starts the run series of scheduled policies at zero,
// so that dashboards and alerts see them before the first run or skip.
func (m *Metrics) ObserveSchedules(policies []string) {
	for _, p := range policies {
		m.runs.WithLabelValues(p, "success")
		m.runs.WithLabelValues(p, "failure")
		m.skipped.WithLabelValues(p)
	}
}

// ObserveRun counts a scheduled pass of a policy.
func (m *Metrics) ObserveRun(policy string, err error) {
	outcome := "success"
	if err != nil {
		outcome = "failure"
	}
	m.runs.WithLabelValues(policy, outcome).Inc()
}

// ObserveSkippedRun counts a scheduled pass skipped for overlap.
func (m *Metrics) ObserveSkippedRun(policy string) {
	m.skipped.WithLabelValues(policy).Inc()
}

// MetricNames lists every metric family, as docs/metrics.md documents them.
func MetricNames() []string {
	return []string{
		"celpolicy_evaluations_total",
		"celpolicy_policy_evaluations_total",
		"celpolicy_evaluation_duration_seconds",
		"celpolicy_actions_total",
		"celpolicy_action_duration_seconds",
		"celpolicy_replicated_bytes_total",
		"celpolicy_policies_loaded",
		"celpolicy_policy_reloads_total",
		"celpolicy_policy_last_successful_reload_timestamp_seconds",
		"celpolicy_scheduled_runs_total",
		"celpolicy_scheduled_runs_skipped_total",
	}
}
