// Package telemetry records what celpolicy does: Prometheus metrics and
// structured audit records of decisions, actions, policy reloads and
// scheduled runs.
//
// Nothing here is global: metrics register on the prometheus.Registerer
// given to NewMetrics, audit records go to the *slog.Logger given to
// NewAudit.
//
//	m, _ := telemetry.NewMetrics(prometheus.NewRegistry())
//	a := telemetry.NewAudit(slog.New(slog.NewJSONHandler(os.Stdout, nil)))
//	start := time.Now()
//	dec, _ := set.Evaluate(ctx, img)
//	m.ObserveDecision(dec, time.Since(start))
//	a.Decision(ctx, dec)
package telemetry
