package service

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/celpolicy/celpolicy/actions"
	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/runner"
	"github.com/celpolicy/celpolicy/telemetry"
)

// PassConfig is what the standard pass needs besides the policy set.
type PassConfig struct {
	Concurrency int
	Logger      *slog.Logger
	// Registry options for the client (cache sizes, version); the hosts
	// come from the policy set's inventory.
	Registry []registry.Option
	// Actions options for the executors (webhook secret, version).
	Actions []actions.Option
}

// NewPass returns the pass serve runs on schedule: runner.Run restricted
// to the policy, with every action and decision counted and audited. The
// registry client is kept while the inventory stays the same, so its
// caches outlive a pass.
func NewPass(pc PassConfig) Pass {
	var mu sync.Mutex
	var client *registry.Client
	var hosts []registry.Host
	clientFor := func(set *engine.PolicySet) (*registry.Client, error) {
		mu.Lock()
		defer mu.Unlock()
		h := runner.Hosts(set)
		if client != nil && slices.Equal(h, hosts) {
			return client, nil
		}
		c, err := runner.NewClient(set, pc.Registry...)
		if err != nil {
			return nil, err
		}
		client, hosts = c, h
		return c, nil
	}
	return func(ctx context.Context, set *engine.PolicySet, policy string, tel Telemetry) error {
		c, err := clientFor(set)
		if err != nil {
			return err
		}
		execs, err := actions.Standard(c, append(slices.Clone(pc.Actions), actions.WithLogger(pc.Logger))...)
		if err != nil {
			return err
		}
		for typ, ex := range execs {
			execs[typ] = observed{next: ex, typ: typ, tel: tel}
		}
		sum, err := runner.Run(ctx, set, runner.Options{
			Policy: policy, Concurrency: pc.Concurrency, Client: c, Executors: execs, Logger: pc.Logger,
			OnDecision: func(ctx context.Context, d *engine.Decision, elapsed time.Duration) {
				tel.Metrics.ObserveDecision(d, elapsed)
				tel.Audit.Decision(ctx, d)
			},
		})
		if err != nil {
			return err
		}
		pc.Logger.InfoContext(ctx, "pass finished", "policy", policy, "images", sum.Images, "copied", sum.Copied,
			"present", sum.Present, "blocked", sum.Blocked, "notified", sum.Notified, "deleted", sum.Deleted,
			"failed", sum.Failed, "bytes", sum.Bytes, "seconds", sum.Seconds)
		if sum.Failed > 0 {
			return fmt.Errorf("%d of %d images failed", sum.Failed, sum.Images)
		}
		return nil
	}
}

// observed counts and audits what an executor does.
type observed struct {
	next actions.Executor
	typ  string
	tel  Telemetry
}

func (o observed) Execute(ctx context.Context, t actions.Task) (actions.Result, error) {
	start := time.Now()
	res, err := o.next.Execute(ctx, t)
	elapsed := time.Since(start)
	outcome := string(res.Outcome)
	if res.DryRun {
		outcome = "dry-run"
	}
	o.tel.Metrics.ObserveAction(o.typ, outcome, elapsed, res.Bytes)
	rec := telemetry.ActionRecord{Type: o.typ, Policy: t.Policy, Revision: t.Decision.Revision,
		Image: t.Image.Reference, Digest: t.Image.Digest, Target: t.Target, Outcome: outcome,
		Err: err, Bytes: res.Bytes, Duration: elapsed}
	if t.Verdict != nil {
		rec.Destination, rec.Reason = t.Verdict.Destination, t.Verdict.Reason
	}
	if t.Action != nil {
		rec.Webhook = t.Action.Webhook
	}
	o.tel.Audit.Action(ctx, rec)
	return res, err
}
