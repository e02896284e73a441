package runner

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/celpolicy/celpolicy/actions"
	"github.com/celpolicy/celpolicy/engine"
)

// image reads, decides and carries out the decision about one image.
// Verdicts are carried out first, target by target, then notifications
// (so that they follow what was done), then deletions, which are skipped
// when a copy of the image failed: a move never loses the image.
func (p *pass) image(ctx context.Context, sc scanned) Item {
	it := Item{Reference: sc.ref, Sources: sc.policies, Tasks: []TaskResult{}}
	fail := func(err error) Item {
		it.Err, it.Error = err, err.Error()
		p.o.Logger.ErrorContext(ctx, "image", "image", sc.ref, "sources", sc.policies, "error", err)
		return it
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	read := p.o.Client.Image
	if !p.referrers {
		read = p.o.Client.ImageMetadata
	}
	img, err := read(ctx, sc.ref)
	if err != nil {
		return fail(err)
	}
	it.Digest = img.Digest
	start := p.o.Now()
	dec, err := p.set.Evaluate(ctx, img, p.o.EvalOptions...)
	if err != nil {
		return fail(fmt.Errorf("evaluate %s: %w", sc.ref, err))
	}
	if p.o.OnDecision != nil {
		p.o.OnDecision(ctx, dec, p.o.Now().Sub(start))
	}
	for _, e := range dec.Errors {
		if e.Effect != engine.VerdictBlocked {
			it.Warnings = append(it.Warnings, fmt.Sprintf("policy %s %s: %s (%s)", e.Policy, e.Field, e.Message, e.Effect))
		}
	}
	base := actions.Task{Image: img, Decision: dec, DryRun: p.o.DryRun}
	targets := make([]string, 0, len(dec.Targets))
	for name := range dec.Targets {
		targets = append(targets, name)
	}
	slices.Sort(targets)
	copyFailed := false
	for _, name := range targets {
		v := dec.Targets[name]
		t := base
		t.Policy, t.Target, t.Verdict = v.Policy, name, v
		switch v.Verdict {
		case engine.VerdictReplicate:
			if p.o.Policy != "" && v.Policy != p.o.Policy {
				continue
			}
			t.Type = engine.ActionReplicate
		case engine.VerdictBlocked:
			t.Type = engine.ActionBlock
		default:
			continue
		}
		tr := p.execute(ctx, t)
		tr.Target, tr.Destination = name, v.Destination
		if tr.Err != nil && t.Type == engine.ActionReplicate {
			copyFailed = true
		}
		it.Tasks = append(it.Tasks, tr)
	}
	for _, kind := range []string{engine.ActionNotify, engine.ActionDelete} {
		for i := range dec.Actions {
			a := &dec.Actions[i]
			if a.Type != kind || p.o.Policy != "" && a.Policy != p.o.Policy {
				continue
			}
			t := base
			t.Type, t.Policy, t.Action = a.Type, a.Policy, a
			var tr TaskResult
			if kind == engine.ActionDelete && copyFailed {
				err := fmt.Errorf("not deleted: a copy of this image failed in this pass")
				tr = TaskResult{Type: t.Type, Policy: t.Policy, Result: actions.Result{Outcome: actions.Failed, DryRun: t.DryRun},
					Error: err.Error(), Err: err}
			} else {
				tr = p.execute(ctx, t)
			}
			tr.Webhook, tr.Scope = a.Webhook, a.Scope
			it.Tasks = append(it.Tasks, tr)
		}
	}
	return it
}

// needsReferrers reports whether any policy reads image.referrers (a
// conservative look at the expressions' text) or copies referrers. When
// none does, images are read without them: up to five requests fewer
// per image, most of a no-op pass.
func needsReferrers(set *engine.PolicySet) bool {
	for _, pol := range set.Policies() {
		for _, a := range pol.Actions {
			if a.Referrers {
				return true
			}
		}
		for _, e := range set.Expressions(pol.Name) {
			if e.Expr != nil && strings.Contains(e.Expr.Text, "referrers") {
				return true
			}
		}
	}
	return false
}

func (p *pass) execute(ctx context.Context, t actions.Task) TaskResult {
	res, err := p.o.Executors.Execute(ctx, t)
	tr := TaskResult{Type: t.Type, Policy: t.Policy, Result: res}
	if err != nil {
		tr.Err, tr.Error = err, err.Error()
		tr.Outcome = actions.Failed
	}
	return tr
}
