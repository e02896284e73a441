package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/celpolicy/celpolicy/actions"
	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/registry"
)

// DefaultConcurrency is how many images a pass handles at once when
// Options.Concurrency is zero.
const DefaultConcurrency = 4

// Options configure a pass. The zero value runs every policy's sources,
// for real, with a registry client and the standard executors built from
// the policy set's inventory.
type Options struct {
	// Policy, when set, scans only that policy's sources and carries out
	// only what it decided: its replicate, notify and delete actions.
	// Blocks are recorded whichever policy decided them, since they are
	// why a copy did not happen. Images are still decided by the whole
	// set, so priorities and combining apply as in any evaluation.
	Policy string
	// DryRun plans and changes nothing: each task says what it would do.
	DryRun bool
	// Concurrency bounds the images handled at once (and the tag
	// listings). Default DefaultConcurrency.
	Concurrency int
	// Shard restricts the pass to the repositories of one shard.
	Shard Shard
	// Client reads sources and reaches destinations. Default:
	// NewClient(set).
	Client *registry.Client
	// Executors carry out the decisions, by action type. Default:
	// actions.Standard(Client, actions.WithLogger(Logger)).
	Executors actions.Executors
	// Logger gets a record per source that cannot be listed and per
	// image that cannot be read or decided. Default: discarded.
	Logger *slog.Logger
	// EvalOptions are passed to every evaluation (engine.At, say).
	EvalOptions []engine.EvalOption
	// OnStart is told how many images the pass will handle, once the
	// sources are listed; OnItem gets each image when it is done. They
	// are never called concurrently.
	OnStart func(images int)
	OnItem  func(Item)
	// OnDecision, when set, gets each decision and how long the
	// evaluation took, before it is carried out (for metrics and audit).
	// It is called from several goroutines at once.
	OnDecision func(ctx context.Context, d *engine.Decision, elapsed time.Duration)
	// Now is the clock the duration is measured with. Default time.Now.
	Now func() time.Time
}

// ErrUnknownPolicy is returned when Options.Policy names no policy.
var ErrUnknownPolicy = errors.New("unknown policy")

// artifactTag matches the tags of referrers and signatures
// (sha256-<hex>, sha256-<hex>.sig, ...): they are copied with their image
// when a verdict asks for referrers, never handled as images.
var artifactTag = regexp.MustCompile(`^sha256-[0-9a-f]{64}(\.[A-Za-z0-9_-]+)?$`)

// Hosts is the registry client configuration the inventory of set gives:
// a Host per Registry document (the first of two with the same host
// names it).
func Hosts(set *engine.PolicySet) []registry.Host {
	var hosts []registry.Host
	seen := map[string]bool{}
	for _, r := range set.Bundle().Registries {
		if seen[r.Host] {
			continue
		}
		seen[r.Host] = true
		hosts = append(hosts, registry.Host{Name: r.Name, Host: r.Host, Insecure: r.Insecure, CAFile: r.CAFile})
	}
	return hosts
}

// Run makes one pass over the sources of set's policies: list, read,
// decide, execute. A failure of one image never stops the others; each is
// reported in the Summary. The error is for options that make no pass
// possible, or a ctx that ended (the Summary then still reports every
// image, those not handled as failed with ctx's error).
func Run(ctx context.Context, set *engine.PolicySet, opts Options) (*Summary, error) {
	r, err := newPass(set, opts)
	if err != nil {
		return nil, err
	}
	return r.run(ctx)
}

type pass struct {
	set *engine.PolicySet
	o   Options
	// referrers: images are read with their referrers.
	referrers bool
	mu        sync.Mutex // serializes OnItem
	sum       *Summary
	then      time.Time
}

func newPass(set *engine.PolicySet, o Options) (*pass, error) {
	if set == nil {
		return nil, errors.New("runner: no policy set")
	}
	if err := o.Shard.validate(); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	if o.Concurrency < 0 {
		return nil, fmt.Errorf("runner: concurrency must not be negative, got %d", o.Concurrency)
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Policy != "" && !slices.ContainsFunc(set.Policies(), func(p *engine.Policy) bool { return p.Name == o.Policy }) {
		return nil, fmt.Errorf("runner: %w %q", ErrUnknownPolicy, o.Policy)
	}
	if o.Client == nil {
		c, err := NewClient(set)
		if err != nil {
			return nil, fmt.Errorf("runner: %w", err)
		}
		o.Client = c
	}
	if o.Executors == nil {
		ex, err := actions.Standard(o.Client, actions.WithLogger(o.Logger))
		if err != nil {
			return nil, fmt.Errorf("runner: %w", err)
		}
		o.Executors = ex
	}
	return &pass{set: set, o: o, referrers: needsReferrers(set), sum: &Summary{Policy: o.Policy, DryRun: o.DryRun, Shard: o.Shard.String(), Items: []Item{}}}, nil
}

func (p *pass) run(ctx context.Context) (*Summary, error) {
	p.then = p.o.Now()
	refs, failures := p.list(ctx)
	if p.o.OnStart != nil {
		p.o.OnStart(len(refs))
	}
	for _, f := range failures {
		p.done(f)
	}
	items := make([]Item, len(refs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(p.o.Concurrency, len(refs)) {
		wg.Go(func() {
			for i := range next {
				items[i] = p.image(ctx, refs[i])
				p.done(items[i])
			}
		})
	}
	for i := range refs {
		next <- i
	}
	close(next)
	wg.Wait()
	// Report in a stable order: sources that failed, then images by name.
	p.sum.Items = append(append(p.sum.Items, failures...), items...)
	p.sum.Images = len(refs)
	p.sum.Duration = p.o.Now().Sub(p.then)
	p.sum.Seconds = p.sum.Duration.Seconds()
	return p.sum, ctx.Err()
}

// done counts an item and tells the observer.
func (p *pass) done(it Item) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sum.add(it)
	if p.o.OnItem != nil {
		p.o.OnItem(it)
	}
}

// scanned is an image the sources name, with the policies that name it.
type scanned struct {
	ref      string
	policies []string
}

// source is one policy's source, resolved against the inventory.
type source struct {
	policy string
	host   string
	name   string // inventory name
	repos  []string
	tags   []string
}

func (p *pass) sources() []source {
	hosts := map[string]string{}
	for _, r := range p.set.Bundle().Registries {
		hosts[r.Name] = r.Host
	}
	var out []source
	for _, pol := range p.set.Policies() {
		if p.o.Policy != "" && pol.Name != p.o.Policy {
			continue
		}
		for _, s := range pol.Sources {
			out = append(out, source{policy: pol.Name, host: hosts[s.Registry.Value], name: s.Registry.Value,
				repos: s.Repositories, tags: s.Tags})
		}
	}
	return out
}

// list returns the images of the sources in this shard, sorted, and an
// Item per source or repository that could not be listed.
func (p *pass) list(ctx context.Context) ([]scanned, []Item) {
	var failures []Item
	// Repositories, each with the sources that name it.
	byRepo := map[string][]source{}
	for _, s := range p.sources() {
		repos, err := p.o.Client.Repositories(ctx, s.host, s.repos)
		if err != nil {
			p.o.Logger.ErrorContext(ctx, "list repositories", "registry", s.name, "policy", s.policy, "error", err)
			failures = append(failures, Item{Reference: s.host, Sources: []string{s.policy}, Tasks: []TaskResult{},
				Error: fmt.Sprintf("source %s: %v", s.name, err), Err: err})
			continue
		}
		for _, r := range repos {
			full := s.host + "/" + r
			if p.o.Shard.Owns(full) {
				byRepo[full] = append(byRepo[full], s)
			}
		}
	}
	repos := make([]string, 0, len(byRepo))
	for r := range byRepo {
		repos = append(repos, r)
	}
	slices.Sort(repos)
	var mu sync.Mutex
	images := map[string]*scanned{}
	next := make(chan string)
	var wg sync.WaitGroup
	for range min(p.o.Concurrency, len(repos)) {
		wg.Go(func() {
			for repo := range next {
				tags, err := p.o.Client.Tags(ctx, repo)
				mu.Lock()
				if err != nil {
					p.o.Logger.ErrorContext(ctx, "list tags", "repository", repo, "error", err)
					failures = append(failures, Item{Reference: repo, Sources: policiesOf(byRepo[repo]), Tasks: []TaskResult{},
						Error: err.Error(), Err: err})
				}
				for _, tag := range tags {
					if artifactTag.MatchString(tag) {
						continue
					}
					for _, s := range byRepo[repo] {
						if !tagWanted(tag, s.tags) {
							continue
						}
						ref := repo + ":" + tag
						sc := images[ref]
						if sc == nil {
							sc = &scanned{ref: ref}
							images[ref] = sc
						}
						if !slices.Contains(sc.policies, s.policy) {
							sc.policies = append(sc.policies, s.policy)
						}
					}
				}
				mu.Unlock()
			}
		})
	}
	for _, r := range repos {
		next <- r
	}
	close(next)
	wg.Wait()
	out := make([]scanned, 0, len(images))
	for _, sc := range images {
		slices.Sort(sc.policies)
		out = append(out, *sc)
	}
	slices.SortFunc(out, func(a, b scanned) int { return cmp.Compare(a.ref, b.ref) })
	slices.SortFunc(failures, func(a, b Item) int { return cmp.Compare(a.Reference, b.Reference) })
	return out, failures
}

func policiesOf(ss []source) []string {
	var out []string
	for _, s := range ss {
		if !slices.Contains(out, s.policy) {
			out = append(out, s.policy)
		}
	}
	slices.Sort(out)
	return out
}

// tagWanted: no patterns take every tag.
func tagWanted(tag string, patterns []string) bool {
	if len(patterns) == 0 {
		return true
	}
	return slices.ContainsFunc(patterns, func(p string) bool {
		ok, _ := doublestar.Match(p, tag)
		return ok
	})
}
