package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/fsnotify/fsnotify"
)

// Engine keeps a PolicySet in step with policy files: it loads them,
// watches them, and swaps in a recompiled set when they change. A change
// that does not load (syntax, type, cost limit, validation) keeps the
// last good set. Evaluations in flight finish on the set they started
// with; nobody locks around evaluation.
type Engine struct {
	paths   []string
	o       engineOptions
	current atomic.Pointer[PolicySet]
	reload  sync.Mutex // one reload at a time
}

type engineOptions struct {
	compile  []Option
	logger   *slog.Logger
	debounce time.Duration
	poll     time.Duration
	hooks    []func(ReloadEvent)
	now      func() time.Time
}

// EngineOption configures an Engine.
type EngineOption func(*engineOptions) error

// WithCompileOptions passes options to every compile (combining, clock,
// environment). Default: none.
func WithCompileOptions(opts ...Option) EngineOption {
	return func(o *engineOptions) error { o.compile = append(o.compile, opts...); return nil }
}

// WithLogger sets where reload results are logged. Default: discard.
func WithLogger(l *slog.Logger) EngineOption {
	return func(o *engineOptions) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		o.logger = l
		return nil
	}
}

// WithDebounce sets how long Watch waits for a burst of writes to end
// before it reloads. Default: 200ms.
func WithDebounce(d time.Duration) EngineOption {
	return func(o *engineOptions) error {
		if d < 0 {
			return errors.New("debounce must not be negative")
		}
		o.debounce = d
		return nil
	}
}

// WithPolling makes Watch compare the files' sizes and modification
// times every interval instead of waiting for file-system events, for
// file systems that have none (NFS, some container volumes). Default: 0,
// events; Watch falls back to polling every 2s when events are unavailable.
func WithPolling(interval time.Duration) EngineOption {
	return func(o *engineOptions) error {
		if interval < 0 {
			return errors.New("polling interval must not be negative")
		}
		o.poll = interval
		return nil
	}
}

// OnReload registers a function called after every reload attempt that
// found a change, successful or not. Hooks run on the reloading
// goroutine and must not block.
func OnReload(hook func(ReloadEvent)) EngineOption {
	return func(o *engineOptions) error {
		if hook == nil {
			return errors.New("reload hook must not be nil")
		}
		o.hooks = append(o.hooks, hook)
		return nil
	}
}

// ReloadEvent says what a reload did.
type ReloadEvent struct {
	Time time.Time
	// Err is nil when the new set is in force; otherwise an ErrorList (or
	// a read error) and the old set stays.
	Err         error
	OldRevision string
	NewRevision string
	Added       []string
	Removed     []string
	Modified    []string
	// Policies is the number of policies in force after the reload.
	Policies int
}

// NewEngine loads paths once. It fails when they do not load: there is no
// last good set to keep yet.
func NewEngine(paths []string, opts ...EngineOption) (*Engine, error) {
	o := engineOptions{logger: slog.New(slog.DiscardHandler), debounce: 200 * time.Millisecond, now: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if len(paths) == 0 {
		return nil, errors.New("no policy paths given")
	}
	e := &Engine{paths: slices.Clone(paths), o: o}
	set, err := Load(e.paths, o.compile...)
	if err != nil {
		return nil, err
	}
	e.current.Store(set)
	return e, nil
}

// PolicySet returns the set in force.
func (e *Engine) PolicySet() *PolicySet { return e.current.Load() }

// Evaluate decides img with the set in force.
func (e *Engine) Evaluate(ctx context.Context, img *conditions.Image, opts ...EvalOption) (*Decision, error) {
	return e.current.Load().Evaluate(ctx, img, opts...)
}

// Reload loads the files now. It returns the event, whose Err says
// whether the new set is in force. When nothing changed (same revision)
// it returns a zero event.
func (e *Engine) Reload(ctx context.Context) ReloadEvent {
	e.reload.Lock()
	defer e.reload.Unlock()
	old := e.current.Load()
	ev := ReloadEvent{Time: e.o.now(), OldRevision: old.Revision(), Policies: len(old.policies)}
	if err := ctx.Err(); err != nil {
		return ReloadEvent{}
	}
	b, perr := ParseFiles(e.paths...)
	if perr == nil && b.Revision == old.Revision() && b.Revision != "" {
		return ReloadEvent{}
	}
	var set *PolicySet
	err := perr
	if err == nil {
		// Unchanged policies keep their compiled programs.
		set, err = Compile(b, append(slices.Clone(e.o.compile), WithPrevious(old))...)
	}
	if err != nil {
		ev.Err = err
		ev.NewRevision = old.Revision()
		e.o.logger.Error("policy reload failed; the previous policy set stays in force",
			"revision", old.Revision(), "errors", errorLines(err))
	} else {
		ev.NewRevision = set.Revision()
		ev.Added, ev.Removed, ev.Modified = diffPolicies(old, set)
		ev.Policies = len(set.policies)
		e.current.Store(set)
		e.o.logger.Info("policy set reloaded", "old_revision", ev.OldRevision, "new_revision", ev.NewRevision,
			"added", ev.Added, "removed", ev.Removed, "modified", ev.Modified)
	}
	for _, h := range e.o.hooks {
		h(ev)
	}
	return ev
}

func errorLines(err error) []string {
	var list ErrorList
	if errors.As(err, &list) {
		out := make([]string, len(list))
		for i, e := range list {
			out[i] = e.Error()
		}
		return out
	}
	return []string{err.Error()}
}

// Watch reloads whenever the files change, until ctx is done. Bursts of
// writes are debounced into one reload.
func (e *Engine) Watch(ctx context.Context) error {
	if e.o.poll > 0 {
		return e.pollLoop(ctx, e.o.poll)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		e.o.logger.Warn("file events unavailable; polling policy files", "error", err.Error(), "interval", "2s")
		return e.pollLoop(ctx, 2*time.Second)
	}
	defer w.Close()
	if err := e.watchPaths(w); err != nil {
		e.o.logger.Warn("cannot watch policy files; polling them", "error", err.Error(), "interval", "2s")
		return e.pollLoop(ctx, 2*time.Second)
	}
	// A change made between the load and the watch would otherwise wait
	// for the next one.
	e.Reload(ctx)
	var timer *time.Timer
	fire := make(chan struct{}, 1)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Op.Has(fsnotify.Create) {
				if info, err := os.Stat(ev.Name); err == nil && info.IsDir() {
					_ = e.addTree(w, ev.Name) // a new directory of policies
				}
			}
			if timer == nil {
				timer = time.AfterFunc(e.o.debounce, func() {
					select {
					case fire <- struct{}{}:
					default:
					}
				})
			} else {
				timer.Reset(e.o.debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			e.o.logger.Warn("policy watcher error", "error", err.Error())
		case <-fire:
			e.Reload(ctx)
		}
	}
}

// watchPaths watches directories recursively and, for files, their
// directory: editors replace files by renaming, which drops a watch on
// the file itself.
func (e *Engine) watchPaths(w *fsnotify.Watcher) error {
	for _, p := range e.paths {
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		if info.IsDir() {
			if err := e.addTree(w, p); err != nil {
				return err
			}
			continue
		}
		if err := w.Add(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) addTree(w *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return w.Add(path)
		}
		return nil
	})
}

func (e *Engine) pollLoop(ctx context.Context, interval time.Duration) error {
	last := e.fingerprint()
	e.Reload(ctx)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if fp := e.fingerprint(); fp != last {
				last = fp
				e.Reload(ctx)
			}
		}
	}
}

// fingerprint summarizes names, sizes and modification times of the
// policy files: cheap to compute, and it changes when they do.
func (e *Engine) fingerprint() string {
	h := sha256.New()
	for _, p := range e.paths {
		_ = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				fmt.Fprintf(h, "%s\x00error\x00", path)
				return nil
			}
			if d.IsDir() || (path != p && !IsPolicyFile(path)) {
				return nil
			}
			if info, err := d.Info(); err == nil {
				fmt.Fprintf(h, "%s\x00%d\x00%d\x00", path, info.Size(), info.ModTime().UnixNano())
			}
			return nil
		})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// diffPolicies names the policies a reload added, removed and modified.
func diffPolicies(old, cur *PolicySet) (added, removed, modified []string) {
	before := map[string][32]byte{}
	for _, p := range old.policies {
		before[p.Name] = policyHash(p.Policy, "")
	}
	after := map[string]bool{}
	for _, p := range cur.policies {
		after[p.Name] = true
		d, ok := before[p.Name]
		switch {
		case !ok:
			added = append(added, p.Name)
		case d != policyHash(p.Policy, ""):
			modified = append(modified, p.Name)
		}
	}
	for name := range before {
		if !after[name] {
			removed = append(removed, name)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	slices.Sort(modified)
	return added, removed, modified
}
