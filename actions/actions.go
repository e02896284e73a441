package actions

import (
	"context"
	"fmt"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/registry"
)

// Task is one thing a decision asks for about one image.
type Task struct {
	// Type is the action type: engine.ActionReplicate, ActionBlock,
	// ActionNotify or ActionDelete.
	Type string
	// Policy is the policy that decided it.
	Policy string
	// Image is the source image as the policies saw it; its Digest pins
	// what is copied or deleted, whatever its tag points at by then.
	Image *conditions.Image
	// Decision is the whole decision about the image.
	Decision *engine.Decision
	// Target and Verdict are set for replicate and block: the inventory
	// name and its verdict.
	Target  string
	Verdict *engine.Verdict
	// Action is set for notify and delete.
	Action *engine.PlannedAction
	// DryRun asks for what would be done; nothing is changed.
	DryRun bool
}

// Outcome is what came of a task.
type Outcome string

// Outcomes. In a dry run they say what would happen.
const (
	Copied   Outcome = "copied"
	Present  Outcome = "present" // the destination already holds the digest
	Skipped  Outcome = "skipped" // nothing to do, e.g. no platform of the filter
	Blocked  Outcome = "blocked"
	Notified Outcome = "notified"
	Deleted  Outcome = "deleted"
	Failed   Outcome = "failed"
)

// Result says what an executor did, or in a dry run would do.
type Result struct {
	Outcome Outcome `json:"outcome"`
	DryRun  bool    `json:"dryRun,omitempty"`
	// Detail explains: the digest copied, the block reason, the webhook's
	// answer, what was deleted.
	Detail string `json:"detail,omitempty"`
	// Bytes uploaded: blobs and manifests sent, not those already there
	// or mounted.
	Bytes int64 `json:"bytes,omitempty"`
	// Attempts made, when more than one was needed.
	Attempts int `json:"attempts,omitempty"`
}

// Executor carries out one kind of action. Execute returns an error when
// the task failed; the Result then says what was done before it failed.
// Executors must be safe for concurrent use.
type Executor interface {
	Execute(ctx context.Context, t Task) (Result, error)
}

// ExecutorFunc adapts a function to the Executor interface.
type ExecutorFunc func(ctx context.Context, t Task) (Result, error)

// Execute calls f.
func (f ExecutorFunc) Execute(ctx context.Context, t Task) (Result, error) { return f(ctx, t) }

// Executors maps an action type to the executor that carries it out.
// The caller builds it; there is no global registry.
type Executors map[string]Executor

// Execute runs the task on the executor registered for its type.
func (e Executors) Execute(ctx context.Context, t Task) (Result, error) {
	ex, ok := e[t.Type]
	if !ok || ex == nil {
		return Result{Outcome: Failed}, fmt.Errorf("no executor for action type %q", t.Type)
	}
	res, err := ex.Execute(ctx, t)
	if err != nil {
		res.Outcome = Failed
	}
	return res, err
}

// Standard returns a new map with the four standard executors, configured
// by opts. client reaches the registries (replicate and delete); the
// caller may replace any entry.
func Standard(client *registry.Client, opts ...Option) (Executors, error) {
	rep, err := NewReplicator(client, opts...)
	if err != nil {
		return nil, err
	}
	blk, err := NewBlocker(opts...)
	if err != nil {
		return nil, err
	}
	ntf, err := NewNotifier(opts...)
	if err != nil {
		return nil, err
	}
	del, err := NewDeleter(client, opts...)
	if err != nil {
		return nil, err
	}
	return Executors{
		engine.ActionReplicate: rep,
		engine.ActionBlock:     blk,
		engine.ActionNotify:    ntf,
		engine.ActionDelete:    del,
	}, nil
}
