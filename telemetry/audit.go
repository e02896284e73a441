package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/internal/redact"
)

// Audit writes one structured record per decision, per action outcome
// and per policy-set change. Records never carry credentials: URLs lose
// their user information and query, and webhook secrets are never given
// to it. Safe for concurrent use when the logger's handler is (slog's
// built-in handlers are).
type Audit struct {
	log *slog.Logger
}

// NewAudit writes records to l. serve uses a JSON handler.
func NewAudit(l *slog.Logger) *Audit { return &Audit{log: l} }

// Decision records what was decided about an image, and why.
func (a *Audit) Decision(ctx context.Context, d *engine.Decision) {
	matched := make([]string, len(d.Matched))
	for i, m := range d.Matched {
		matched[i] = m.Policy
	}
	names := make([]string, 0, len(d.Targets))
	for name := range d.Targets {
		names = append(names, name)
	}
	slices.Sort(names)
	targets := make([]any, 0, len(names))
	for _, name := range names {
		v := d.Targets[name]
		attrs := []any{slog.String("verdict", v.Verdict), slog.String("policy", v.Policy)}
		if v.Destination != "" {
			attrs = append(attrs, slog.String("destination", v.Destination))
		}
		if v.Reason != "" {
			attrs = append(attrs, slog.String("reason", v.Reason))
		}
		targets = append(targets, slog.Group(name, attrs...))
	}
	attrs := []any{
		slog.String("revision", d.Revision),
		slog.Group("image", slog.String("reference", d.Image.Reference), slog.String("digest", d.Image.Digest)),
		slog.Bool("allowed", d.Allowed),
		slog.Any("matched", matched),
		slog.Group("targets", targets...),
	}
	if len(d.Errors) > 0 {
		errs := make([]string, len(d.Errors))
		for i, e := range d.Errors {
			errs[i] = e.Policy + " " + e.Field + ": " + e.Message
		}
		attrs = append(attrs, slog.Any("errors", errs))
	}
	if len(d.Conflicts) > 0 {
		attrs = append(attrs, slog.Int("conflicts", len(d.Conflicts)))
	}
	a.log.InfoContext(ctx, "decision", attrs...)
}

// ActionRecord is the outcome of one carried-out action.
type ActionRecord struct {
	Type        string // replicate, block, notify, delete
	Policy      string
	Revision    string
	Image       string // reference
	Digest      string
	Target      string // inventory name, for replicate and block
	Destination string // replicate
	// Webhook of a notify; its user information and query are removed.
	Webhook  string
	Reason   string // block
	Outcome  string // the executor's outcome (copied, present, ...), or dry-run
	Err      error
	Bytes    int64
	Duration time.Duration
}

// Action records the outcome of one action.
func (a *Audit) Action(ctx context.Context, r ActionRecord) {
	attrs := []any{
		slog.String("type", r.Type), slog.String("policy", r.Policy), slog.String("revision", r.Revision),
		slog.Group("image", slog.String("reference", r.Image), slog.String("digest", r.Digest)),
		slog.String("outcome", r.Outcome),
	}
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("target", r.Target)
	add("destination", r.Destination)
	add("webhook", redact.URL(r.Webhook))
	add("reason", r.Reason)
	if r.Bytes > 0 {
		attrs = append(attrs, slog.Int64("bytes", r.Bytes))
	}
	if r.Duration > 0 {
		attrs = append(attrs, slog.String("duration", r.Duration.String()))
	}
	level := slog.LevelInfo
	if r.Err != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("error", redact.Error(r.Err, r.Webhook)))
	}
	a.log.Log(ctx, level, "action", attrs...)
}

// PolicySetChange records a reload: what changed, or why it failed.
func (a *Audit) PolicySetChange(ctx context.Context, ev engine.ReloadEvent) {
	attrs := []any{
		slog.String("old_revision", ev.OldRevision), slog.String("new_revision", ev.NewRevision),
		slog.Any("added", nonNil(ev.Added)), slog.Any("removed", nonNil(ev.Removed)),
		slog.Any("modified", nonNil(ev.Modified)), slog.Int("policies", ev.Policies),
	}
	if ev.Err != nil {
		var list engine.ErrorList
		msgs := []string{ev.Err.Error()}
		if errors.As(ev.Err, &list) {
			msgs = msgs[:0]
			for _, e := range list {
				msgs = append(msgs, e.Error())
			}
		}
		attrs = append(attrs, slog.Any("errors", msgs))
		a.log.ErrorContext(ctx, "policy set change rejected", attrs...)
		return
	}
	a.log.InfoContext(ctx, "policy set changed", attrs...)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
