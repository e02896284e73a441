package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/celpolicy/celpolicy/actions"
	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/registry"
	"github.com/celpolicy/celpolicy/runner"
)

// defaultSecretEnv is where run looks for the webhook secret by default.
const defaultSecretEnv = "CELPOLICY_WEBHOOK_SECRET"

type runFlags struct {
	policies    []string
	policy      string
	dryRun      bool
	concurrency int
	shard       string
	output      string
	now         string
	secretEnv   string
	secretFile  string
	auditLog    string
	cacheDir    string
	noCache     bool
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run --policies PATH [--dry-run] [--concurrency N] [--shard I/N] [--cache-dir DIR|--no-cache] [-o text|json]",
		Short: "Replicate once: scan the policies' sources, decide every image, carry the decisions out",
		Long: `run makes one replication pass. For the sources of every policy (or of --policy
only) it lists the repositories and tags, reads each image, decides it with the
whole policy set and carries the decision out: copies to each target a verdict
says replicate (skipping a target that already holds the digest), records each
block, posts notifications and deletes for retention.

Every line of the report names the policy that decided it. --dry-run prints
the plan, what would be copied, skipped, blocked, notified and deleted, and
changes nothing. On a terminal a progress bar follows the work; otherwise each
image is a plain line. A summary ends the report.

--shard I/N handles only the repositories that hash to shard I of N
(0 ≤ I < N), so that N processes, e.g. a Kubernetes Indexed Job, cover the
sources exactly once.

Manifests and image configs are kept by digest in --cache-dir, with the digest
each tag was last read at, so that the next run asks a known tag with one HEAD
request and reads nothing more unless the tag moved; destinations are checked
every time. Entries are checked against their digest when read; a damaged one
is ignored with a warning on stderr. The cache holds at most 10000 entries of
each kind (oldest out), typically under 100 MiB; delete it at any time.
--no-cache, or an empty --cache-dir, reads every image from its registry.

Notifications are signed (X-Celpolicy-Signature: sha256=<hex>, HMAC-SHA256 of
the body) when a secret is found: in --webhook-secret-file, or else in the
environment variable --webhook-secret-env names.

Exit code 0 when everything succeeded, 1 when anything failed (every failure
is in the report), 2 for wrong flags.`,
		Example: `  celpolicy run --policies policies/ --dry-run
  celpolicy run --policies policies/ --concurrency 8 -o json > report.json
  celpolicy run --policies policies/ --shard "$JOB_COMPLETION_INDEX/4"
  celpolicy run --policies policies/ --policy sandbox-retention`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRun(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVarP(&f.policies, "policies", "p", nil, "policy file or directory (repeatable, or comma-separated)")
	fl.StringVar(&f.policy, "policy", "", "scan only this policy's sources and carry out only its decisions")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the plan and change nothing")
	fl.IntVarP(&f.concurrency, "concurrency", "c", runner.DefaultConcurrency, "images handled at once")
	fl.StringVar(&f.shard, "shard", "", "handle only the repositories of shard I of N, as I/N")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	fl.StringVar(&f.now, "now", "", "evaluation time, RFC 3339 (default: the current time)")
	fl.StringVar(&f.secretEnv, "webhook-secret-env", defaultSecretEnv, "environment variable holding the webhook HMAC secret")
	fl.StringVar(&f.secretFile, "webhook-secret-file", "", "file holding the webhook HMAC secret (overrides the environment)")
	fl.StringVar(&f.auditLog, "audit-log", "", "append an audit record (JSON) per action to this file")
	fl.StringVar(&f.cacheDir, "cache-dir", defaultCacheDir(), "keep image manifests and configs here between runs (empty: no cache)")
	fl.BoolVar(&f.noCache, "no-cache", false, "keep no cache: read every image from its registry")
	_ = cmd.MarkFlagRequired("policies")
	return cmd
}

// runRun makes the pass: the report goes to w, warnings (a damaged cache
// entry, say) to errw.
func runRun(ctx context.Context, f runFlags, w, errw io.Writer, regOpts ...registry.Option) error {
	usage := func(format string, args ...any) error {
		return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
	}
	if f.output != "text" && f.output != "json" {
		return usage("-o must be text or json, not %q", f.output)
	}
	if f.concurrency <= 0 {
		return usage("--concurrency must be greater than zero, not %d", f.concurrency)
	}
	o := runner.Options{Policy: f.policy, DryRun: f.dryRun, Concurrency: f.concurrency}
	if f.shard != "" {
		sh, err := runner.ParseShard(f.shard)
		if err != nil {
			return usage("--shard: %v", err)
		}
		o.Shard = sh
	}
	if f.now != "" {
		now, err := time.Parse(time.RFC3339, f.now)
		if err != nil {
			return usage("--now %q: want RFC 3339, e.g. 2026-11-27T12:00:00Z", f.now)
		}
		o.EvalOptions = append(o.EvalOptions, engine.At(now))
	}
	// A pass decides many images that differ only in fields no policy
	// reads (tags of one repository, say): the memo decides those once.
	set, err := engine.Load(f.policies, engine.WithMemo(runMemoSize))
	if err != nil {
		return loadError(err)
	}
	if f.policy != "" && !hasPolicy(set, f.policy) {
		return usage("--policy: no policy is named %q", f.policy)
	}
	execOpts := []actions.Option{actions.WithVersion(version)}
	secret, err := runWebhookSecret(f)
	if err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	if secret != nil {
		execOpts = append(execOpts, actions.WithWebhookSecret(func(string) []byte { return secret }))
	}
	if f.auditLog != "" {
		file, err := os.OpenFile(f.auditLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return &exitError{code: exitFailure, err: fmt.Errorf("audit log: %w", err)}
		}
		defer file.Close()
		o.Logger = slog.New(slog.NewJSONHandler(file, nil))
		execOpts = append(execOpts, actions.WithLogger(o.Logger))
	}
	clientOpts := []registry.Option{registry.WithVersion(version),
		registry.WithLogger(slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: slog.LevelWarn})))}
	if f.cacheDir != "" && !f.noCache {
		clientOpts = append(clientOpts, registry.WithDiskCache(f.cacheDir))
	}
	client, err := runner.NewClient(set, append(clientOpts, regOpts...)...)
	if err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	o.Client = client
	if o.Executors, err = actions.Standard(client, execOpts...); err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	rep := newReport(w, f.output == "text", f.dryRun)
	o.OnStart, o.OnItem = rep.start, rep.item
	sum, err := runner.Run(ctx, set, o)
	if sum == nil {
		return &exitError{code: exitFailure, err: err}
	}
	rep.finish(sum)
	if f.output == "json" {
		if err := writeJSON(w, sum); err != nil {
			return &exitError{code: exitFailure, err: err}
		}
	}
	switch {
	case err != nil:
		return &exitError{code: exitFailure, err: fmt.Errorf("run stopped: %w (%d failed)", err, sum.Failed)}
	case sum.Failed > 0:
		return &exitError{code: exitFailure, err: fmt.Errorf("%d failed; every failure is in the report above", sum.Failed)}
	}
	return nil
}

// defaultCacheDir is celpolicy's directory in the user's cache directory
// ($XDG_CACHE_HOME, else ~/.cache, on Linux); none when there is no such
// directory.
func defaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "celpolicy")
}

// runMemoSize bounds the decisions a run remembers.
const runMemoSize = 10000

func hasPolicy(set *engine.PolicySet, name string) bool {
	for _, p := range set.Policies() {
		if p.Name == name {
			return true
		}
	}
	return false
}

// runWebhookSecret reads the secret from the file, or else the environment.
func runWebhookSecret(f runFlags) ([]byte, error) {
	if f.secretFile != "" {
		b, err := os.ReadFile(f.secretFile)
		if err != nil {
			return nil, fmt.Errorf("webhook secret: %w", err)
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return nil, fmt.Errorf("webhook secret file %s is empty", f.secretFile)
		}
		return []byte(s), nil
	}
	if f.secretEnv != "" {
		if s := os.Getenv(f.secretEnv); s != "" {
			return []byte(s), nil
		}
	}
	return nil, nil
}

// report prints the pass as it goes: a line per task (text output), a
// progress bar when w is a terminal, and the summary.
type report struct {
	mu     sync.Mutex
	w      io.Writer
	lines  bool
	dryRun bool
	bar    *progressBar
}

func newReport(w io.Writer, lines, dryRun bool) *report {
	r := &report{w: w, lines: lines, dryRun: dryRun}
	if lines && isTerminal(w) {
		r.bar = &progressBar{w: w}
	}
	return r
}

func (r *report) start(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bar != nil {
		r.bar.total = n
		r.bar.draw()
	}
}

func (r *report) item(it runner.Item) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bar != nil {
		r.bar.clear()
	}
	if r.lines {
		for _, l := range itemLines(it) {
			fmt.Fprintln(r.w, l)
		}
	}
	if r.bar != nil {
		r.bar.done++
		if it.Failed() {
			r.bar.failed++
		}
		for _, t := range it.Tasks {
			r.bar.bytes += t.Bytes
		}
		r.bar.draw()
	}
}

func (r *report) finish(s *runner.Summary) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bar != nil {
		r.bar.clear()
	}
	if !r.lines {
		return
	}
	head := "summary"
	if s.DryRun {
		head = "plan (dry run, nothing changed)"
	}
	if s.Shard != "" {
		head += ", shard " + s.Shard
	}
	fmt.Fprintf(r.w, "%s: %d images: %d copied, %d already present, %d skipped, %d blocked, %d notified, %d deleted, %d failed; %s moved in %s\n",
		head, s.Images, s.Copied, s.Present, s.Skipped, s.Blocked, s.Notified, s.Deleted, s.Failed,
		humanBytes(s.Bytes), s.Duration.Round(time.Millisecond))
}

// itemLines renders an image's tasks, one line each, every line ending
// with the policy that decided it.
func itemLines(it runner.Item) []string {
	if it.Err != nil {
		return []string{fmt.Sprintf("%-12s %s: %s  [source of policy %s]", "FAILED", it.Reference, it.Error, strings.Join(it.Sources, ", "))}
	}
	var out []string
	for _, w := range it.Warnings {
		out = append(out, fmt.Sprintf("%-12s %s: %s  [source of policy %s]", "warning", it.Reference, w, strings.Join(it.Sources, ", ")))
	}
	for _, t := range it.Tasks {
		var what string
		switch t.Type {
		case engine.ActionReplicate:
			what = fmt.Sprintf("%s → %s (%s)", it.Reference, t.Target, t.Destination)
		case engine.ActionBlock:
			what = fmt.Sprintf("%s at %s", it.Reference, t.Target)
		case engine.ActionNotify:
			what = fmt.Sprintf("%s → %s", it.Reference, t.Webhook)
		case engine.ActionDelete:
			scope := t.Scope
			if scope == "" {
				scope = actions.ScopeTag
			}
			what = fmt.Sprintf("%s %s", scope, it.Reference)
		default:
			what = it.Reference
		}
		detail := t.Detail
		if t.Error != "" {
			detail = t.Error
		}
		if t.Bytes > 0 {
			detail += ", " + humanBytes(t.Bytes)
		}
		if t.Attempts > 1 {
			detail += fmt.Sprintf(", %d attempts", t.Attempts)
		}
		if detail != "" {
			detail = ": " + detail
		}
		out = append(out, fmt.Sprintf("%-12s %s%s  [policy %s]", verb(t), what, detail, t.Policy))
	}
	return out
}

func verb(t runner.TaskResult) string {
	if t.Err != nil || t.Outcome == actions.Failed {
		return "FAILED"
	}
	if !t.DryRun {
		return string(t.Outcome)
	}
	switch t.Outcome {
	case actions.Copied:
		return "would copy"
	case actions.Notified:
		return "would notify"
	case actions.Deleted:
		return "would delete"
	case actions.Skipped:
		return "would skip"
	}
	return string(t.Outcome)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// progressBar is one line redrawn in place. Written by hand: it is a
// counter and a bar, which a progress library would bring four modules
// for.
type progressBar struct {
	w                   io.Writer
	total, done, failed int
	bytes               int64
}

const barWidth = 30

func (b *progressBar) draw() {
	filled := 0
	if b.total > 0 {
		filled = barWidth * b.done / b.total
	}
	fmt.Fprintf(b.w, "\r\033[K[%s%s] %d/%d images, %d failed, %s",
		strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled), b.done, b.total, b.failed, humanBytes(b.bytes))
}

func (b *progressBar) clear() { fmt.Fprint(b.w, "\r\033[K") }
