package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/registry"
	"github.com/spf13/cobra"
)

type evalFlags struct {
	policies    []string
	imageFile   string
	imageRef    string
	insecure    bool
	target      string
	now         string
	output      string
	explain     bool
	combining   string
	failBlocked bool
}

func newEvalCmd() *cobra.Command {
	var f evalFlags
	cmd := &cobra.Command{
		Use:   "eval --policies PATH (--image-file FILE|- | --image REF)",
		Short: "Decide what to do with one image: a verdict per target registry, with reasons",
		Long: `eval loads the policies, evaluates them in priority order against one image and
prints the decision: per target registry replicate (with the destination) or
blocked (with the reason), the notify and delete actions, conflicts between
policies and evaluation errors.

The image is a JSON file (or - for standard input) with the fields policies see:
  {"reference": "docker.io/library/nginx:1.25", "labels": {"team": "web"},
   "created": "2026-01-02T03:04:05Z", "size": 1234, "platforms": ["linux/amd64"]}
"reference" stands for registry, repository, tag and digest. With --image REF
the same metadata is read from the image's registry (as celpolicy inspect shows
it); credentials come from the docker config, and a Registry document whose
host matches gives the insecure and caFile settings and the image's source.

-o json prints the stable schema documented in README.md; --explain adds the
trace: per policy, per condition and variable, its result and the values of
its sub-expressions.

Exit code 0 when the image was evaluated (whatever the verdicts), 1 when the
policies or the image are invalid, 3 with --fail-blocked when the image is
blocked at every target (or at --target).`,
		Example: `  celpolicy eval --policies examples/policies --image-file examples/images/compliance.json
  celpolicy eval --policies examples/policies --image-file examples/images/dev-tag.json --target eu-prod --explain
  cat image.json | celpolicy eval --policies policies/ --image-file - -o json --now 2026-11-27T00:00:00Z
  celpolicy eval --policies policies/ --image ghcr.io/acme/app:1.4.0 --explain`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEval(cmd.Context(), f, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVarP(&f.policies, "policies", "p", nil, "policy file or directory (repeatable, or comma-separated)")
	fl.StringVarP(&f.imageFile, "image-file", "i", "", "image JSON file, or - for standard input")
	fl.StringVar(&f.imageRef, "image", "", "read the image from its registry (tag or digest reference)")
	fl.BoolVar(&f.insecure, "insecure", false, "with --image: allow plain HTTP to the image's registry")
	fl.StringVarP(&f.target, "target", "t", "", "decide for this inventory registry only")
	fl.StringVar(&f.now, "now", "", "evaluation time, RFC 3339 (default: the current time)")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	fl.BoolVar(&f.explain, "explain", false, "add the trace: why each policy did or did not match")
	fl.StringVar(&f.combining, "combining", string(engine.Priority), "combining algorithm: priority, deny-overrides or first-match")
	fl.BoolVar(&f.failBlocked, "fail-blocked", false, "exit 3 when the image is blocked at every target (or at --target)")
	_ = cmd.MarkFlagRequired("policies")
	cmd.MarkFlagsOneRequired("image-file", "image")
	cmd.MarkFlagsMutuallyExclusive("image-file", "image")
	return cmd
}

func runEval(ctx context.Context, f evalFlags, stdin io.Reader, w io.Writer, regOpts ...registry.Option) error {
	set, dec, err := decide(ctx, f, stdin, regOpts...)
	if err != nil {
		return err
	}
	if f.output == "json" {
		err = writeJSON(w, dec)
	} else {
		err = writeDecision(w, set, dec, f.target)
	}
	if err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	if f.failBlocked && !dec.Allowed {
		return &exitError{code: exitDisallow}
	}
	return nil
}

// decide checks the flags, loads the policies, reads the image and
// evaluates it: what eval and explain share.
func decide(ctx context.Context, f evalFlags, stdin io.Reader, regOpts ...registry.Option) (*engine.PolicySet, *engine.Decision, error) {
	usage := func(format string, args ...any) error {
		return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
	}
	if f.output != "text" && f.output != "json" {
		return nil, nil, usage("-o must be text or json, not %q", f.output)
	}
	combining, err := engine.ParseCombining(f.combining)
	if err != nil {
		return nil, nil, usage("--combining: %v", err)
	}
	var opts []engine.EvalOption
	if f.now != "" {
		now, err := time.Parse(time.RFC3339, f.now)
		if err != nil {
			return nil, nil, usage("--now %q: want RFC 3339, e.g. 2026-11-27T12:00:00Z", f.now)
		}
		opts = append(opts, engine.At(now))
	}
	if f.target != "" {
		opts = append(opts, engine.ForTarget(f.target))
	}
	if f.explain {
		opts = append(opts, engine.WithTrace())
	}
	set, err := engine.Load(f.policies, engine.WithCombining(combining))
	if err != nil {
		return nil, nil, loadError(err)
	}
	var img *conditions.Image
	if f.imageRef != "" {
		img, err = readImage(ctx, set, f.imageRef, f.insecure, regOpts...)
	} else {
		img, err = readImageFile(f.imageFile, stdin)
	}
	if err != nil {
		return nil, nil, &exitError{code: exitFailure, err: err}
	}
	dec, err := set.Evaluate(ctx, img, opts...)
	if err != nil {
		var ut *engine.UnknownTargetError
		if errors.As(err, &ut) {
			return nil, nil, usage("--target: %v", err)
		}
		return nil, nil, &exitError{code: exitFailure, err: err}
	}
	return set, dec, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// loadError prints every policy problem, one per line, and fails.
func loadError(err error) error {
	var list engine.ErrorList
	if errors.As(err, &list) {
		return &exitError{code: exitFailure, err: fmt.Errorf("invalid policies:\n%v", list)}
	}
	return &exitError{code: exitFailure, err: err}
}

func readImageFile(name string, stdin io.Reader) (*conditions.Image, error) {
	var data []byte
	var err error
	if name == "-" {
		name = "<stdin>"
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("read image: %w", err)
	}
	return conditions.DecodeImageJSON(name, data)
}

// readImage reads ref from its registry, configured by the inventory.
func readImage(ctx context.Context, set *engine.PolicySet, ref string, insecure bool, opts ...registry.Option) (*conditions.Image, error) {
	refHost, _, _, _, err := conditions.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	var hosts []registry.Host
	seen := map[string]bool{}
	for _, r := range set.Bundle().Registries {
		if seen[r.Host] {
			continue // two inventory names for one registry: the first names the source
		}
		seen[r.Host] = true
		hosts = append(hosts, registry.Host{Name: r.Name, Host: r.Host, Insecure: r.Insecure || insecure && r.Host == refHost, CAFile: r.CAFile})
	}
	if insecure && !seen[refHost] {
		hosts = append(hosts, registry.Host{Host: refHost, Insecure: true})
	}
	client, err := registry.New(append([]registry.Option{registry.WithVersion(version), registry.WithHosts(hosts...)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return client.Image(ctx, ref)
}
