package runner

import (
	"time"

	"github.com/celpolicy/celpolicy/actions"
)

// Summary is what a pass did, image by image. Nothing is left out: every
// image listed is in Items, with its tasks or the error that stopped it,
// and so is every source that could not be listed.
type Summary struct {
	Policy string `json:"policy,omitempty"`
	DryRun bool   `json:"dryRun"`
	Shard  string `json:"shard,omitempty"`
	// Images read and decided, or that failed to be.
	Images int `json:"images"`
	// Tasks by outcome; Failed adds images and sources that failed before
	// any task.
	Copied   int `json:"copied"`
	Present  int `json:"present"`
	Skipped  int `json:"skipped"`
	Blocked  int `json:"blocked"`
	Notified int `json:"notified"`
	Deleted  int `json:"deleted"`
	Failed   int `json:"failed"`
	// Bytes uploaded.
	Bytes    int64         `json:"bytes"`
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"seconds"`
	Items    []Item        `json:"items"`
}

// Item is one image of the pass, or a source that could not be listed.
type Item struct {
	// Reference is the image, or the registry or repository that could
	// not be listed.
	Reference string `json:"reference"`
	Digest    string `json:"digest,omitempty"`
	// Sources are the policies whose sources listed it.
	Sources []string     `json:"sources"`
	Tasks   []TaskResult `json:"tasks"`
	// Warnings are policy evaluation errors that failurePolicy ignore
	// turned into "no match".
	Warnings []string `json:"warnings,omitempty"`
	// Error stopped the image before any task: listing, reading or
	// evaluating it.
	Error string `json:"error,omitempty"`
	Err   error  `json:"-"`
}

// Failed reports whether the image, or any of its tasks, failed.
func (it *Item) Failed() bool {
	if it.Err != nil {
		return true
	}
	for _, t := range it.Tasks {
		if t.Err != nil {
			return true
		}
	}
	return false
}

// TaskResult is one executed task.
type TaskResult struct {
	Type   string `json:"type"`
	Policy string `json:"policy"`
	// Target and Destination of replicate and block.
	Target      string `json:"target,omitempty"`
	Destination string `json:"destination,omitempty"`
	// Webhook of notify; Scope of delete.
	Webhook string `json:"webhook,omitempty"`
	Scope   string `json:"scope,omitempty"`
	actions.Result
	Error string `json:"error,omitempty"`
	Err   error  `json:"-"`
}

// add counts an item's outcomes; Run fills Items at the end, in order.
func (s *Summary) add(it Item) {
	if it.Err != nil {
		s.Failed++
	}
	for _, t := range it.Tasks {
		s.Bytes += t.Bytes
		if t.Err != nil {
			s.Failed++
			continue
		}
		switch t.Outcome {
		case actions.Copied:
			s.Copied++
		case actions.Present:
			s.Present++
		case actions.Skipped:
			s.Skipped++
		case actions.Blocked:
			s.Blocked++
		case actions.Notified:
			s.Notified++
		case actions.Deleted:
			s.Deleted++
		case actions.Failed:
			s.Failed++
		}
	}
}
